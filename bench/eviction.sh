#!/usr/bin/env bash
# Compares damselfly's eviction with redis-server's at the same maxmemory: a
# cache workload (GET, SET on miss) over a Zipfian key distribution whose key
# space is about ten times what fits. Per policy and server: hit ratio,
# throughput while evicting, the server's CPU per GET over the client run
# (steadier than ops/s, which the Python clients bound), peak RSS,
# used_memory and evicted_keys at the end.
#
# Usage: bench/eviction.sh [--quick] [--no-build] [--binary PATH]
#                          [--maxmemory BYTES] [--value N] [--keys N]
#                          [--ops N] [--procs N] [--depth N] [--skew S]
#                          [--policies "allkeys-lru allkeys-lfu ..."]
#
#   --quick       a small run (16 MB, 200k ops) to check the script works
#   --no-build    use the existing release binary
#   --binary PATH a damselfly binary to use instead of the release build
#   --maxmemory   bytes for both servers (default 64 MB)
#   --value       value size in bytes (default 1000)
#   --keys        key space (default: 10x what fits, from a fill of the server)
#   --ops         measured GETs (default 2000000), after as many for warm-up
#   --procs       client processes (default 2); --depth GETs per round (16)
#   --skew        Zipf exponent (default 0.99)
#   --policies    default "allkeys-lru allkeys-lfu allkeys-random allkeys-tinylfu"
#                 (allkeys-tinylfu is damselfly's own: redis-server is not run
#                 for it)
#
# Both servers run on random free loopback ports, one at a time, and are
# stopped on exit. The fixed start-up overhead of each (used_memory and RSS
# before any key) is printed with the results, so "RSS <= maxmemory + 10% +
# overhead" can be checked. Progress goes to stderr, the table to stdout.
# Run it on a quiet machine: the client shares the cores with the server.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

BUILD=1
BINARY=""
MAXMEMORY=$((64 * 1024 * 1024))
VALUE=1000
KEYS=""
OPS=2000000
PROCS=2
DEPTH=16
SKEW=0.99
POLICIES="allkeys-lru allkeys-lfu allkeys-random allkeys-tinylfu"

usage() { sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) MAXMEMORY=$((16 * 1024 * 1024)); OPS=200000 ;;
        --no-build) BUILD=0 ;;
        --binary) BINARY="${2:?--binary needs a path}"; BUILD=0; shift ;;
        --maxmemory) MAXMEMORY="${2:?}"; shift ;;
        --value) VALUE="${2:?}"; shift ;;
        --keys) KEYS="${2:?}"; shift ;;
        --ops) OPS="${2:?}"; shift ;;
        --procs) PROCS="${2:?}"; shift ;;
        --depth) DEPTH="${2:?}"; shift ;;
        --skew) SKEW="${2:?}"; shift ;;
        --policies) POLICIES="${2:?}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "eviction.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

log() { echo "[eviction] $*" >&2; }
die() { echo "eviction.sh: $*" >&2; exit 1; }

command -v redis-server >/dev/null || die "redis-server is required (apt-get install redis-server)"
command -v redis-cli >/dev/null || die "redis-cli is required (apt-get install redis-tools)"
command -v python3 >/dev/null || die "python3 is required"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DAMSELFLY="${BINARY:-$TARGET_DIR/release/damselfly}"
if [ "$BUILD" = 1 ]; then
    log "building the release binary"
    (cd "$ROOT" && cargo build --release -p damselfly) >&2
fi
[ -x "$DAMSELFLY" ] || die "$DAMSELFLY not found (build it or drop --no-build)"

WORK="$(mktemp -d)"
PID=""
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

PORT=""
start() { # name
    PORT="$(free_port)"
    # No snapshots, in a directory of their own: a file left by one run
    # would be loaded by the next (each server reads the other's).
    mkdir -p "$WORK/$1"
    case "$1" in
        damselfly) "$DAMSELFLY" --port "$PORT" --bind 127.0.0.1 --loglevel warn \
            --save '' --dir "$WORK/$1" >"$WORK/$1.log" 2>&1 & ;;
        redis) redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$WORK/$1" --daemonize no --logfile "$WORK/$1.log" >/dev/null 2>&1 & ;;
    esac
    PID=$!
    local i
    for i in $(seq 1 200); do
        kill -0 "$PID" 2>/dev/null || die "$1 exited during start-up: $(tail -5 "$WORK/$1.log")"
        [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.05
    done
    die "$1 did not answer PING"
}

stop() {
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
}

info() { # field
    redis-cli -p "$PORT" info everything | tr -d '\r' | sed -n "s/^$1://p"
}

vmrss() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$PID/status"; }

# The server's user + system CPU so far, in clock ticks (the command name
# in /proc/PID/stat has no spaces for either server).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }

# How many values fit: fill redis-server under noeviction until it refuses.
if [ -z "$KEYS" ]; then
    start redis
    redis-cli -p "$PORT" config set maxmemory "$MAXMEMORY" >/dev/null
    python3 - "$PORT" "$VALUE" >"$WORK/fit" <<'EOF'
import socket, sys
port, size = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
v = b"v" * size
n = 0
buf = b""
while True:
    batch = b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\nc:%d\r\n$%d\r\n%s\r\n" % (len(b"c:%d" % i), i, size, v) for i in range(n, n + 100))
    s.sendall(batch)
    got = 0
    oom = False
    while got < 100:
        chunk = s.recv(1 << 16)
        buf += chunk
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            got += 1
            oom |= line.startswith(b"-OOM")
    if oom:
        break
    n += 100
print(n)
EOF
    stop
    FIT="$(cat "$WORK/fit")"
    KEYS=$((FIT * 10))
    log "about $FIT values of $VALUE bytes fit in $MAXMEMORY bytes; key space $KEYS"
fi

printf '| policy | server | hit ratio | ops/s | server CPU per GET | peak RSS MB | used_memory MB | evicted_keys | start-up used / RSS MB |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for policy in $POLICIES; do
    servers="redis damselfly"
    [ "$policy" = allkeys-tinylfu ] && servers="damselfly"
    for server in $servers; do
        start "$server"
        base_used="$(info used_memory)"
        base_rss="$(vmrss)"
        redis-cli -p "$PORT" config set maxmemory "$MAXMEMORY" >/dev/null
        [ "$(redis-cli -p "$PORT" config set maxmemory-policy "$policy")" = OK ] || die "$server refused maxmemory-policy $policy"
        log "$policy on $server"
        cpu0="$(cpu_ticks)"
        python3 "$ROOT/bench/eviction_client.py" run "127.0.0.1:$PORT" "$PID" --keys "$KEYS" --value "$VALUE" \
            --ops "$OPS" --warmup "$OPS" --procs "$PROCS" --depth "$DEPTH" --skew "$SKEW" >"$WORK/result.json"
        cpu1="$(cpu_ticks)"
        used="$(info used_memory)"
        evicted="$(info evicted_keys)"
        python3 - "$WORK/result.json" "$policy" "$server" "$used" "$evicted" "$base_used" "$base_rss" "$((cpu1 - cpu0))" "$(getconf CLK_TCK)" "$((OPS * 2))" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
policy, server, used, evicted, base_used, base_rss, ticks, hz, gets = sys.argv[2:]
mb = lambda b: int(b) / (1 << 20)
# The server's CPU over the whole client run (warm-up included), per GET
# sent (the SETs of its misses included): steadier than ops/s, which the
# Python clients bound.
cpu = int(ticks) / int(hz) * 1e6 / int(gets)
print(f"| {policy} | {server} | {r['hit_ratio']:.4f} | {r['ops_per_sec']:.0f} | {cpu:.2f} µs | {mb(r['peak_rss']):.1f} | {mb(used):.1f} | {evicted} | {mb(base_used):.1f} / {mb(base_rss):.1f} |")
EOF
        stop
    done
done
