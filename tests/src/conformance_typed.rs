//! The typed (JSON) helpers of the data types ([`KvHashesExt`],
//! [`KvSetsExt`], [`KvSortedSetsExt`], [`KvListsExt`],
//! [`KvTransactionsExt`]) in the conformance suite: round trips, decode
//! errors naming store and key, and a typed `update` that leaves an
//! undecodable value alone. Cases are listed in
//! [`conformance_suite!`](crate::conformance_suite).

use std::time::Duration;

use kv_module::store::{End, Order, ScanCursor};
use kv_module::{KvError, KvHashesExt, KvListsExt, KvSetsExt, KvSortedSetsExt, KvTransactionsExt};
use serde::{Deserialize, Serialize};

use crate::conformance::Backend;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Job {
    id: u32,
    kind: String,
}

fn job(id: u32) -> Job {
    Job {
        id,
        kind: "resize".into(),
    }
}

/// JSON values round trip through every data type's typed helpers.
pub async fn typed_helpers_round_trip(b: &impl Backend) {
    let s = b.store("typed_types", 0, "app").await;
    let h = s.hashes();
    assert!(h.set_json("h", "job", &job(1)).await.unwrap());
    assert_eq!(h.get_json::<Job>("h", "job").await.unwrap(), Some(job(1)));
    assert_eq!(h.get_json::<Job>("h", "none").await.unwrap(), None);
    h.set_many_json("h", &[("a", 1), ("b", 2)], None)
        .await
        .unwrap();
    assert_eq!(
        h.get_many_json::<i32>("h", &["b", "x", "a"]).await.unwrap(),
        vec![Some(2), None, Some(1)]
    );
    let err = h.get_all_json::<i32>("h").await.unwrap_err();
    assert!(matches!(err, KvError::Decode { .. }), "{err:?}");
    assert_eq!((err.store(), err.key()), ("typed_types", Some("h")));

    let sets = s.sets();
    assert_eq!(
        sets.add_json("s", &[job(1), job(2), job(1)]).await.unwrap(),
        2
    );
    assert!(sets.is_member_json("s", &job(2)).await.unwrap());
    let mut members: Vec<Job> = sets.members_json("s").await.unwrap();
    members.sort_by_key(|j| j.id);
    assert_eq!(members, vec![job(1), job(2)]);
    let (page, next) = sets
        .scan_json::<Job>("s", &ScanCursor::start(), 100)
        .await
        .unwrap();
    assert_eq!(page.len(), 2, "a small set in one page");
    assert!(next.is_none());
    assert_eq!(sets.remove_json("s", &[job(1)]).await.unwrap(), 1);

    let z = s.sorted_sets();
    z.add_json("z", &[(2.0, job(2)), (1.0, job(1))])
        .await
        .unwrap();
    assert_eq!(z.score_json("z", &job(2)).await.unwrap(), Some(2.0));
    assert_eq!(z.incr_by_json("z", &job(1), 5.0).await.unwrap(), 6.0);
    assert_eq!(z.remove_json("z", &[job(1)]).await.unwrap(), 1);
    z.add_json("z", &[(1.0, job(1))]).await.unwrap();
    assert_eq!(
        z.range_by_rank_json::<Job>("z", 0, -1, Order::Descending)
            .await
            .unwrap(),
        vec![(job(2), 2.0), (job(1), 1.0)]
    );

    let l = s.lists();
    l.push_json("q", End::Back, &[job(1), job(2), job(3)])
        .await
        .unwrap();
    assert_eq!(l.range_json::<Job>("q", 0, 0).await.unwrap(), vec![job(1)]);
    assert_eq!(
        l.pop_json::<Job>("q", End::Back, 1).await.unwrap(),
        vec![job(3)]
    );
    assert_eq!(
        l.blocking_pop_json::<Job>(&["q"], End::Front, Duration::from_secs(1))
            .await
            .unwrap(),
        Some(("q".to_string(), job(1)))
    );
}

/// A typed `update` reads, changes and writes a JSON value; one that does
/// not decode is an error that leaves the value as it was.
pub async fn typed_update_changes_json_values(b: &impl Backend) {
    let s = b.store("typed_update", 0, "app").await;
    let tx = s.transactions();
    let next = tx
        .update_json("cart", None, |items: Option<Vec<String>>| {
            let mut items = items.unwrap_or_default();
            items.push("book".into());
            Some(items)
        })
        .await
        .unwrap();
    assert_eq!(next, Some(vec!["book".to_string()]));
    let next = tx
        .update_json("cart", None, |items: Option<Vec<String>>| {
            let mut items = items.unwrap_or_default();
            items.push("pen".into());
            Some(items)
        })
        .await
        .unwrap();
    assert_eq!(next, Some(vec!["book".to_string(), "pen".to_string()]));
    assert_eq!(
        tx.update_json("cart", None, |_: Option<Vec<String>>| None)
            .await
            .unwrap(),
        None
    );
    assert!(!s.exists("cart").await.unwrap());
    s.set_bytes("bad", b"not json", kv_module::Ttl::Never)
        .await
        .unwrap();
    let err = tx
        .update_json("bad", None, |n: Option<u32>| n.map(|n| n + 1))
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::Decode { .. }), "{err:?}");
    assert_eq!(err.key(), Some("bad"));
    assert_eq!(
        s.get_bytes("bad").await.unwrap().as_deref(),
        Some(&b"not json"[..])
    );
}
