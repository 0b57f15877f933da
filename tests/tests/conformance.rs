//! The one conformance suite of the `KvStore` contract, run on every
//! backend and topology: a Redis server (one per test, with `KEYS`
//! disabled), the in-memory backend, a Redis Cluster (3 primaries, 3
//! replicas, shared by the tests of this binary), the primary of a
//! Sentinel set (shared likewise), and a Redis server that requires mutual
//! TLS (one per test); then a server, the Sentinel set, mutual TLS and
//! the cluster again with a near cache on every store, which must not change the
//! contract (on one server in both modes of `CLIENT TRACKING`: broadcast,
//! the default for a store with a prefix, and tracking, the cluster's).

mod redis {
    use kv_module_tests::backends::RedisBackend;
    kv_module_tests::conformance_suite!(RedisBackend::start().await);
}

mod memory {
    use kv_module_tests::backends::MemoryBackend;
    kv_module_tests::conformance_suite!(MemoryBackend::new());
}

mod cluster {
    use kv_module_tests::backends::ClusterBackend;
    kv_module_tests::conformance_suite!(ClusterBackend::shared());
}

mod sentinel {
    use kv_module_tests::backends::SentinelBackend;
    kv_module_tests::conformance_suite!(SentinelBackend::shared());
}

mod tls {
    use kv_module_tests::backends::TlsBackend;
    kv_module_tests::conformance_suite!(TlsBackend::start().await);
}

mod near_cache {
    use kv_module_tests::backends::NearCacheBackend;
    kv_module_tests::conformance_suite!(NearCacheBackend::start().await);
}

mod near_cache_tracking {
    use kv_module::NearCacheMode;
    use kv_module_tests::backends::NearCacheBackend;
    kv_module_tests::conformance_suite!(NearCacheBackend::start_in(NearCacheMode::Tracking).await);
}

mod near_cache_sentinel {
    use kv_module_tests::backends::SentinelBackend;
    kv_module_tests::conformance_suite!(SentinelBackend::shared().with_near_cache());
}

mod near_cache_tls {
    use kv_module_tests::backends::TlsBackend;
    kv_module_tests::conformance_suite!(TlsBackend::start().await.with_near_cache());
}

mod near_cache_cluster {
    use kv_module_tests::backends::ClusterBackend;
    kv_module_tests::conformance_suite!(ClusterBackend::shared().with_near_cache());
}
