//! The one conformance suite of the `KvStore` contract, run on the Redis
//! backend (a `redis-server` per test, with `KEYS` disabled) and on the
//! in-memory backend.

mod redis {
    use kv_module_tests::backends::RedisBackend;
    kv_module_tests::conformance_suite!(RedisBackend::start().await);
}

mod memory {
    use kv_module_tests::backends::MemoryBackend;
    kv_module_tests::conformance_suite!(MemoryBackend::new());
}
