//! The sorted-set section of the conformance suite
//! ([`KvSortedSets`](kv_module::KvSortedSets)): Redis's orders (ties by
//! member bytes), rank and score ranges with every kind of bound, limits,
//! infinities, NaN refused, `WRONGTYPE`. Cases are listed in
//! [`conformance_suite!`](crate::conformance_suite).

use std::ops::Bound::{Excluded, Included, Unbounded};

use kv_module::store::{Limit, Order};
use kv_module::{KvError, KvStoreExt, Ttl};

use crate::conformance::Backend;

fn scored(items: &[(&str, f64)]) -> Vec<(Vec<u8>, f64)> {
    items
        .iter()
        .map(|(m, s)| (m.as_bytes().to_vec(), *s))
        .collect()
}

/// Adds, scores, counts and removals reply as Redis's; a missing key reads
/// as empty and a sorted set vanishes with its last member.
pub async fn sorted_sets_follow_redis(b: &impl Backend) {
    let s = b.store("zsets", 0, "app").await;
    let z = s.sorted_sets();
    assert_eq!(z.count("z").await.unwrap(), 0);
    assert_eq!(z.score("z", b"a").await.unwrap(), None);
    assert!(
        z.range_by_rank("z", 0, -1, Order::Ascending)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(z.remove("z", &[b"a"]).await.unwrap(), 0);
    assert_eq!(
        z.remove_by_score("z", Unbounded, Unbounded).await.unwrap(),
        0
    );
    assert!(!s.exists("z").await.unwrap());

    let added = z
        .add("z", &[(2.0, b"b"), (1.0, b"a"), (2.0, b"a"), (-1.5, b"n")])
        .await
        .unwrap();
    assert_eq!(
        added, 3,
        "a member listed twice counts once, last score wins"
    );
    assert_eq!(z.add("z", &[(3.0, b"b"), (0.0, b"c")]).await.unwrap(), 1);
    assert_eq!(z.add("z", &[]).await.unwrap(), 0);
    assert_eq!(z.score("z", b"a").await.unwrap(), Some(2.0));
    assert_eq!(z.score("z", b"b").await.unwrap(), Some(3.0));
    assert_eq!(z.count("z").await.unwrap(), 4);
    assert_eq!(z.incr_by("z", b"c", 2.5).await.unwrap(), 2.5);
    assert_eq!(z.incr_by("z", b"new", -4.0).await.unwrap(), -4.0);
    assert_eq!(z.remove("z", &[b"new", b"zz", b"new"]).await.unwrap(), 1);
    assert_eq!(
        z.range_by_rank("z", 0, -1, Order::Ascending).await.unwrap(),
        scored(&[("n", -1.5), ("a", 2.0), ("c", 2.5), ("b", 3.0)])
    );
    assert_eq!(z.remove("z", &[]).await.unwrap(), 0);
    assert_eq!(z.remove("z", &[b"n", b"a", b"b", b"c"]).await.unwrap(), 4);
    assert!(
        !s.exists("z").await.unwrap(),
        "an empty sorted set vanishes"
    );

    // Infinite scores are scores; NaN is refused before anything is sent.
    z.add(
        "inf",
        &[(f64::INFINITY, b"top"), (f64::NEG_INFINITY, b"bottom")],
    )
    .await
    .unwrap();
    assert_eq!(z.score("inf", b"top").await.unwrap(), Some(f64::INFINITY));
    assert_eq!(
        z.range_by_rank("inf", 0, 0, Order::Ascending)
            .await
            .unwrap(),
        scored(&[("bottom", f64::NEG_INFINITY)])
    );
    for err in [
        z.add("inf", &[(1.0, b"ok"), (f64::NAN, b"nan")])
            .await
            .unwrap_err(),
        z.incr_by("inf", b"top", f64::NAN).await.unwrap_err(),
        z.incr_by("inf", b"top", f64::NEG_INFINITY)
            .await
            .unwrap_err(),
        z.count_by_score("inf", Included(f64::NAN), Unbounded)
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, KvError::InvalidArgument { .. }), "{err:?}");
        assert_eq!((err.store(), err.key()), ("zsets", Some("inf")));
    }
    assert_eq!(z.count("inf").await.unwrap(), 2, "nothing written");
    assert_eq!(z.score("inf", b"top").await.unwrap(), Some(f64::INFINITY));
}

/// Rank and score ranges in both orders, with inclusive, exclusive and
/// open bounds, limits, and ties ordered by member bytes.
pub async fn sorted_set_ranges_follow_redis(b: &impl Backend) {
    let s = b.store("zranges", 0, "app").await;
    let z = s.sorted_sets();
    z.add(
        "z",
        &[
            (1.0, b"a"),
            (2.0, b"b2"),
            (2.0, b"b1"),
            (2.0, b"b3"),
            (3.0, b"c"),
            (4.5, b"d"),
        ],
    )
    .await
    .unwrap();
    use Order::{Ascending as Asc, Descending as Desc};
    let rank = |start, stop, order| z.range_by_rank("z", start, stop, order);
    assert_eq!(
        rank(0, 2, Asc).await.unwrap(),
        scored(&[("a", 1.0), ("b1", 2.0), ("b2", 2.0)])
    );
    assert_eq!(
        rank(0, 2, Desc).await.unwrap(),
        scored(&[("d", 4.5), ("c", 3.0), ("b3", 2.0)])
    );
    assert_eq!(
        rank(-2, -1, Asc).await.unwrap(),
        scored(&[("c", 3.0), ("d", 4.5)])
    );
    assert_eq!(rank(-100, 0, Desc).await.unwrap(), scored(&[("d", 4.5)]));
    assert_eq!(rank(4, 100, Asc).await.unwrap().len(), 2);
    assert!(rank(3, 1, Asc).await.unwrap().is_empty());
    assert!(rank(6, 10, Asc).await.unwrap().is_empty());

    let by_score = |min, max, order, limit| z.range_by_score("z", min, max, order, limit);
    assert_eq!(
        by_score(Included(2.0), Included(3.0), Asc, None)
            .await
            .unwrap(),
        scored(&[("b1", 2.0), ("b2", 2.0), ("b3", 2.0), ("c", 3.0)])
    );
    assert_eq!(
        by_score(Excluded(2.0), Unbounded, Asc, None).await.unwrap(),
        scored(&[("c", 3.0), ("d", 4.5)])
    );
    assert_eq!(
        by_score(Unbounded, Excluded(2.0), Desc, None)
            .await
            .unwrap(),
        scored(&[("a", 1.0)])
    );
    assert_eq!(
        by_score(
            Included(2.0),
            Included(4.5),
            Desc,
            Some(Limit {
                offset: 1,
                count: 2
            })
        )
        .await
        .unwrap(),
        scored(&[("c", 3.0), ("b3", 2.0)])
    );
    assert_eq!(
        by_score(
            Unbounded,
            Unbounded,
            Asc,
            Some(Limit {
                offset: 5,
                count: 10
            })
        )
        .await
        .unwrap(),
        scored(&[("d", 4.5)])
    );
    assert_eq!(
        by_score(Unbounded, Unbounded, Asc, Some(Limit::first(0)))
            .await
            .unwrap(),
        scored(&[])
    );
    assert_eq!(
        by_score(Unbounded, Unbounded, Asc, Some(Limit::first(u64::MAX)))
            .await
            .unwrap()
            .len(),
        6
    );
    assert!(
        by_score(Included(3.0), Included(2.0), Asc, None)
            .await
            .unwrap()
            .is_empty(),
        "min above max"
    );
    assert!(
        by_score(Excluded(2.0), Excluded(2.0), Desc, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        by_score(Excluded(f64::INFINITY), Unbounded, Asc, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        by_score(Included(-0.0), Included(1.0), Asc, None)
            .await
            .unwrap(),
        scored(&[("a", 1.0)])
    );

    assert_eq!(
        z.count_by_score("z", Included(2.0), Excluded(4.5))
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        z.count_by_score("z", Unbounded, Unbounded).await.unwrap(),
        6
    );
    assert_eq!(
        z.remove_by_score("z", Excluded(1.0), Included(2.0))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        z.range_by_rank("z", 0, -1, Asc).await.unwrap(),
        scored(&[("a", 1.0), ("c", 3.0), ("d", 4.5)])
    );
    assert_eq!(
        z.remove_by_score("z", Unbounded, Unbounded).await.unwrap(),
        3
    );
    assert!(!s.exists("z").await.unwrap());
}

/// A sorted-set key used as another type, or another type's key used as
/// a sorted set, is `WrongType` naming the store and the key.
pub async fn sorted_sets_and_other_types_are_different(b: &impl Backend) {
    let s = b.store("zset_types", 0, "app").await;
    s.set("text", "v", Ttl::Never).await.unwrap();
    s.sets().add("set", &[b"m"]).await.unwrap();
    s.sorted_sets().add("zset", &[(1.0, b"m")]).await.unwrap();
    let z = s.sorted_sets();
    for key in ["text", "set"] {
        let errors = [
            z.add(key, &[(1.0, b"m")]).await.unwrap_err(),
            z.remove(key, &[b"m"]).await.unwrap_err(),
            z.score(key, b"m").await.unwrap_err(),
            z.incr_by(key, b"m", 1.0).await.unwrap_err(),
            z.count(key).await.unwrap_err(),
            z.count_by_score(key, Unbounded, Unbounded)
                .await
                .unwrap_err(),
            z.range_by_rank(key, 0, -1, Order::Ascending)
                .await
                .unwrap_err(),
            z.range_by_score(key, Unbounded, Unbounded, Order::Ascending, None)
                .await
                .unwrap_err(),
            z.remove_by_score(key, Unbounded, Unbounded)
                .await
                .unwrap_err(),
        ];
        for err in errors {
            assert!(matches!(err, KvError::WrongType { .. }), "{key}: {err:?}");
            assert_eq!((err.store(), err.key()), ("zset_types", Some(key)));
        }
    }
    for err in [
        s.get_bytes("zset").await.unwrap_err(),
        s.sets().members("zset").await.unwrap_err(),
        s.hashes().len("zset").await.unwrap_err(),
    ] {
        assert!(matches!(err, KvError::WrongType { .. }), "{err:?}");
    }
    assert_eq!(s.sorted_sets().count("zset").await.unwrap(), 1);
}
