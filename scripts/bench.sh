#!/bin/sh
# Runs the benchmarks of docs/BENCHMARKS.md.
#
#   scripts/bench.sh          # the example app over HTTP against a bare axum handler
#   scripts/bench.sh all      # every bench of kv-module-tests, app_http included
#   scripts/bench.sh NAME     # one bench (store, sessions, rate_limit, ...)
#
# BENCH_SECS and BENCH_ROUNDS set a run's length and the rounds (see each
# bench's header). The HTTP bench needs wrk: installed with apt-get when
# missing (as root, or through sudo). It runs the release binaries
# `example-app` and `bare_axum`, built here first.
set -eu

cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk is missing: installing it with apt-get" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update && apt-get install -y wrk
    else
        sudo apt-get update && sudo apt-get install -y wrk
    fi
fi

cargo build --release -p example-app -p kv-module-tests --bins

case "${1:-app_http}" in
    all) cargo bench -p kv-module-tests ;;
    *) cargo bench -p kv-module-tests --bench "${1:-app_http}" ;;
esac
