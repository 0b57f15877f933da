//! [`backend_suite!`](crate::backend_suite): a suite written once as
//! generic async functions, instantiated as one `#[tokio::test]` per
//! backend and case.
//!
//! Every per-backend suite of this crate uses it (the conformance suite
//! through [`conformance_suite!`](crate::conformance_suite)), so a case is
//! named the same way everywhere: `<backend>::<case>`
//! (`redis::update_never_resurrects`, `memory::otp_login_flow`), which is
//! what `cargo test memory::` filters on.
//! A component case gets `&mut` its backend (a fixture owning its servers,
//! which [`outage`](crate::conformance::Backend::outage) and
//! [`recover`](crate::conformance::Backend::recover) change); a case taking
//! `&impl Backend` or `impl Backend` accepts that too. An app case gets
//! the [`Driver`](crate::test_app::Driver) to start the app with.

/// One `#[tokio::test]` per backend and case: a module per backend, named
/// after it, holding a test per case, named after it, that builds the
/// backend and runs `super::<case>` with it.
///
/// * `components: case, …`: the component suites' backends, each store
///   checking that every script's keys share one Redis Cluster slot (the
///   memory backend also refuses keys a script was not given), so every
///   run proves the scripts cluster-safe: `redis` (a `redis-server` per
///   test), `memory`, and `cluster` (the shared Redis Cluster of the test
///   binary, three primaries and three replicas, each case under a
///   namespace of its own). Each case gets `&mut` its backend.
/// * `app: case, …`: the example app's drivers, `redis` and `memory`; each
///   case gets its [`Driver`](crate::test_app::Driver).
/// * `name: backend, …; case, …`: backends of your own (async
///   expressions), each case getting `&mut` its backend.
///
/// Tests run on a two-thread runtime unless the list starts with the
/// `#[tokio::test(…)]` attribute to use instead.
///
/// ```no_run
/// use kv_module_tests::conformance::Backend;
///
/// async fn stores_open(b: &impl Backend) {
///     let _store = b.store("cache", 0, "app").await;
/// }
///
/// // `redis::stores_open`, `memory::stores_open`, `cluster::stores_open`.
/// kv_module_tests::backend_suite! {
///     #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
///     components: stores_open,
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! backend_suite {
    (components: $($case:ident),+ $(,)?) => {
        $crate::backend_suite!(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            components: $($case),+);
    };
    (#[tokio::test $rt:tt] components: $($case:ident),+ $(,)?) => {
        $crate::backend_suite!(#[tokio::test $rt]
            redis: $crate::slot_checking_store::SlotCheckedBackend::new(
                $crate::backends::RedisBackend::start().await,
            ),
            memory: $crate::slot_checking_store::SlotCheckedBackend::new(
                $crate::backends::MemoryBackend::new(),
            ),
            cluster: $crate::slot_checking_store::SlotCheckedBackend::new(
                $crate::backends::ClusterBackend::shared(),
            );
            $($case),+);
    };
    (app: $($case:ident),+ $(,)?) => {
        $crate::backend_suite!(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            app: $($case),+);
    };
    (#[tokio::test $rt:tt] app: $($case:ident),+ $(,)?) => {
        $crate::backend_suite!(@modules $rt [] [$($case),+];
            redis ($crate::test_app::Driver::Redis), memory ($crate::test_app::Driver::Memory));
    };
    ($($backend:ident: $make:expr),+; $($case:ident),+ $(,)?) => {
        $crate::backend_suite!(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $($backend: $make),+; $($case),+);
    };
    (#[tokio::test $rt:tt] $($backend:ident: $make:expr),+; $($case:ident),+ $(,)?) => {
        $crate::backend_suite!(@modules $rt [&mut] [$($case),+]; $($backend ($make)),+);
    };
    // The case list travels as one token tree: it repeats inside each
    // backend's module.
    (@modules $rt:tt $pass:tt $cases:tt; $($backend:ident $make:tt),+) => {
        $(
            mod $backend {
                $crate::backend_suite!(@cases $rt [super::] $pass $make $cases);
            }
        )+
    };
    (@cases $rt:tt $path:tt $pass:tt $make:tt [$($case:ident),+ $(,)?]) => {
        $( $crate::backend_suite!(@case $rt $path $pass $make $case); )+
    };
    (@case ($($rt:tt)*) [$($path:tt)*] [$($pass:tt)*] ($make:expr) $case:ident) => {
        #[tokio::test($($rt)*)]
        async fn $case() {
            #[allow(unused_mut)]
            let mut backend = $make;
            $($path)* $case($($pass)* backend).await;
        }
    };
}
