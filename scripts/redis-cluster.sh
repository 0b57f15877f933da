#!/usr/bin/env bash
# A local Redis Cluster for development: three primaries and three replicas
# on 127.0.0.1, ports BASE..BASE+5 (default 7000..7005; each node's cluster
# bus is on port + 10000), daemonized, without persistence, with their
# pid files, logs and nodes.conf under ${TMPDIR:-/tmp}/kv-module-redis-cluster-BASE.
#
#   scripts/redis-cluster.sh start [base-port]   # prints REDIS_NODES=... on stdout
#   scripts/redis-cluster.sh stop  [base-port]   # shuts the nodes down, removes the directory
#
#   export "$(scripts/redis-cluster.sh start)"   # then run the app against it
#
# Environment: REDIS_SERVER_BIN, REDIS_CLI_BIN (default: on PATH),
# CLUSTER_NODE_TIMEOUT (ms, default 5000: how long a node may be silent
# before its replica takes over).
set -euo pipefail

readonly NODES=6
readonly USER_REDIS_PORT=6379
readonly SERVER_BIN=${REDIS_SERVER_BIN:-redis-server}
readonly CLI_BIN=${REDIS_CLI_BIN:-redis-cli}
readonly NODE_TIMEOUT=${CLUSTER_NODE_TIMEOUT:-5000}
# Seconds to wait for the nodes to answer, the cluster to form, or the nodes to exit.
readonly DEADLINE=30

usage() {
    echo "usage: $0 start|stop [base-port]" >&2
    exit 2
}

log() {
    echo "redis-cluster: $*" >&2
}

die() {
    log "$*"
    exit 1
}

command=${1:-}
base=${2:-7000}
[[ $command == start || $command == stop ]] || usage
[[ $base =~ ^[0-9]+$ ]] || usage
# The bus port of the last node must be a valid port too.
((base >= 1024 && base + NODES - 1 + 10000 <= 65535)) ||
    die "base port $base: the ports $base..$((base + NODES - 1)) and their bus ports (+10000) must lie in 1024..65535"
((USER_REDIS_PORT < base || USER_REDIS_PORT > base + NODES - 1)) ||
    die "base port $base: the range would include $USER_REDIS_PORT, the usual port of your own Redis"

readonly dir="${TMPDIR:-/tmp}/kv-module-redis-cluster-$base"
ports=()
for ((i = 0; i < NODES; i++)); do
    ports+=($((base + i)))
done

# Seconds since the epoch with a fraction is not portable; count polls instead.
readonly POLLS=$((DEADLINE * 10))

# Whether something accepts connections on port $1 (bash's /dev/tcp: no
# reply needed, so a listener that is not Redis cannot hang the check).
listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

answers() {
    [[ $("$CLI_BIN" -h 127.0.0.1 -p "$1" PING 2>/dev/null) == PONG ]]
}

cluster_ok() {
    "$CLI_BIN" -h 127.0.0.1 -p "$1" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok'
}

# Runs the check "$@" until it succeeds, or dies after DEADLINE seconds.
wait_for() {
    local what=$1
    shift
    for ((poll = 0; poll < POLLS; poll++)); do
        if "$@"; then
            return 0
        fi
        sleep 0.1
    done
    die "$what: not within ${DEADLINE}s (logs under $dir; clean up with: $0 stop $base)"
}

start() {
    if [[ -e $dir ]]; then
        die "$dir exists: a cluster on base port $base is running or was not stopped; run: $0 stop $base"
    fi
    command -v "$SERVER_BIN" >/dev/null || die "$SERVER_BIN not found (apt-get install redis-server)"
    command -v "$CLI_BIN" >/dev/null || die "$CLI_BIN not found (apt-get install redis-tools)"
    for port in "${ports[@]}" "${ports[@]/%/+10000}"; do
        port=$((port))
        if listening "$port"; then
            die "port $port is in use (a node or cluster bus port); choose another base port"
        fi
    done

    mkdir -p "$dir"
    for port in "${ports[@]}"; do
        local node="$dir/$port"
        mkdir -p "$node"
        "$SERVER_BIN" \
            --port "$port" --bind 127.0.0.1 \
            --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-node-timeout "$NODE_TIMEOUT" \
            --save '' --appendonly no --repl-diskless-sync-delay 0 \
            --dir "$node" --logfile "$node/redis.log" \
            --daemonize yes --pidfile "$node/redis.pid"
    done
    for port in "${ports[@]}"; do
        wait_for "node $port to answer" answers "$port"
    done

    local addrs=()
    for port in "${ports[@]}"; do
        addrs+=("127.0.0.1:$port")
    done
    "$CLI_BIN" --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
        >"$dir/create.log" 2>&1 ||
        die "redis-cli --cluster create failed; see $dir/create.log"
    for port in "${ports[@]}"; do
        wait_for "node $port to report cluster_state:ok" cluster_ok "$port"
    done

    log "cluster up: ${addrs[*]} (data under $dir; stop with: $0 stop $base)"
    local IFS=,
    echo "REDIS_NODES=${addrs[*]}"
}

pid_alive() {
    kill -0 "$1" 2>/dev/null
}

pid_gone() {
    ! pid_alive "$1"
}

# Whether pid $1 is our redis-server on port $2, not a process that reused
# the pid of a node that died (trusted as is where `ps` is missing).
is_our_node() {
    pid_alive "$1" || return 1
    command -v ps >/dev/null || return 0
    ps -p "$1" -o args= | grep -q -- ":$2"
}

stop() {
    if [[ ! -d $dir ]]; then
        log "no cluster on base port $base ($dir does not exist)"
        return 0
    fi
    local pids=()
    for port in "${ports[@]}"; do
        local pidfile="$dir/$port/redis.pid"
        if [[ -f $pidfile ]]; then
            local pid
            pid=$(<"$pidfile")
            if is_our_node "$pid" "$port"; then
                kill -TERM "$pid"
                pids+=("$pid")
            fi
        fi
    done
    for pid in "${pids[@]}"; do
        for ((poll = 0; poll < POLLS; poll++)); do
            pid_gone "$pid" && break
            sleep 0.1
        done
        if pid_alive "$pid"; then
            log "pid $pid did not exit on SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -rf -- "$dir"
    log "cluster on ports ${ports[0]}..${ports[-1]} stopped, $dir removed"
}

"$command"
