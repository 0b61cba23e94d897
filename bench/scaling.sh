#!/usr/bin/env bash
# How damselfly scales with its shard threads: for N = 1 .. number of cores
# (or --max N), `--shards N` against redis-server (and redis-server with
# `--io-threads` when the machine has more than 2 cores), each row run with
# redis-benchmark -c 50 -r 100000 -d 16 and `--threads` client threads.
# Prints ops/s and server CPU per request (user + system time of all the
# server's threads from /proc/PID/stat over the run, divided by the
# requests), medians of REPEATS runs with the servers alternating, and for
# each damselfly row its CPU per request and ops/s relative to --shards 1.
#
# Usage: bench/scaling.sh [--no-build] [--repeats N] [--requests N]
#                         [--tests set,get,incr,hset] [--pipelines 1,16]
#                         [--max N] [--client-threads N]
# Needs redis-server, redis-benchmark, redis-cli and python3.
# On a small machine the client shares the cores with the server: the
# figures then show what each extra thread costs, not what it buys.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1
REPEATS=3
REQUESTS=400000
TESTS=set,get,incr,hset
PIPES=1,16
CORES="$(nproc)"
MAX="$CORES"
CTHREADS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --repeats) REPEATS="$2"; shift ;;
        --requests) REQUESTS="$2"; shift ;;
        --tests) TESTS="$2"; shift ;;
        --pipelines) PIPES="$2"; shift ;;
        --max) MAX="$2"; shift ;;
        --client-threads) CTHREADS="$2"; shift ;;
        *) echo "scaling.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# Enough client threads to keep N server threads busy, but no more than the
# cores leave (redis-benchmark's threads compete with the server's).
[ -n "$CTHREADS" ] || CTHREADS=$(( CORES > 4 ? CORES / 2 : 1 ))
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "$BUILD" = 1 ]; then (cd "$ROOT" && cargo build --release -p damselfly >&2); fi
BIN="$TARGET_DIR/release/damselfly"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 1 200); do [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0; sleep 0.05; done; echo "no PONG on $1" >&2; exit 1; }
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
HZ="$(getconf CLK_TCK)"

# One run: "ops/s server_cpu_us_per_request". Pipelined rows send 5 times
# the requests: CPU time is counted in clock ticks (10 ms), and a short
# run would round it too coarsely.
bench_once() { # port pid test pipeline
    local port=$1 pid=$2 test=$3 pipe=$4
    local t0 t1 rps n=$REQUESTS
    [ "$pipe" -gt 1 ] && n=$((REQUESTS * 5))
    t0="$(cpu_ticks "$pid")"
    rps="$(redis-benchmark -h 127.0.0.1 -p "$port" --threads "$CTHREADS" -c 50 -n "$n" -r 100000 -d 16 -P "$pipe" -t "$test" --csv 2>/dev/null | awk -F'","' 'NR > 1 && NF > 1 { print $2; exit }')"
    t1="$(cpu_ticks "$pid")"
    python3 -c "import sys; print(f'{float(sys.argv[1]):.0f} {(int(sys.argv[3])-int(sys.argv[2]))/int(sys.argv[4])*1e6/int(sys.argv[5]):.2f}')" "$rps" "$t0" "$t1" "$HZ" "$n"
}

# Servers: name, port, pid.
NAMES=(); PORTS=(); SPIDS=()
start() { # name command...
    local name=$1; shift
    local port; port="$(free_port)"
    mkdir -p "$WORK/$name"
    "$@" --port "$port" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!"); NAMES+=("$name"); PORTS+=("$port"); SPIDS+=("$!")
    wait_ready "$port"
}
for n in $(seq 1 "$MAX"); do
    start "shards-$n" "$BIN" --bind 127.0.0.1 --save "" --dir "$WORK/shards-$n" --loglevel warn --shards "$n"
done
start redis redis-server --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK/redis"
if [ "$CORES" -gt 2 ]; then
    start "redis-io-$((CORES / 2))" redis-server --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK/redis-io" \
        --io-threads "$((CORES / 2))" --io-threads-do-reads yes
fi

echo "# $(date -u +%FT%TZ), $CORES cores, redis-benchmark --threads $CTHREADS -c 50 -r 100000 -d 16 -n $REQUESTS (x5 pipelined), medians of $REPEATS"
printf '| test | server | ops/s | CPU/req | CPU vs 1 shard | ops/s vs 1 shard |\n|---|---|---:|---:|---:|---:|\n'
for test in ${TESTS//,/ }; do
    for pipe in ${PIPES//,/ }; do
        declare -A R=() C=()
        for i in $(seq 1 "$REPEATS"); do
            # Alternate the order of the servers from one round to the next.
            idx=$(seq 0 $(( ${#NAMES[@]} - 1 )))
            [ $((i % 2)) = 0 ] && idx=$(echo "$idx" | tac)
            for k in $idx; do
                read -r r c < <(bench_once "${PORTS[$k]}" "${SPIDS[$k]}" "$test" "$pipe")
                R[$k]+="$r "; C[$k]+="$c "
            done
        done
        for k in $(seq 0 $(( ${#NAMES[@]} - 1 ))); do
            python3 - "$test" "$pipe" "${NAMES[$k]}" "${R[$k]}" "${C[$k]}" "${R[0]}" "${C[0]}" <<'PY'
import statistics, sys
t, p, name, r, c, r1, c1 = sys.argv[1:]
m = lambda s: statistics.median(float(x) for x in s.split())
rel = name.startswith("shards-")
spread = lambda s: f"{min(float(x) for x in s.split()):.2f}-{max(float(x) for x in s.split()):.2f}"
cpu = f"{m(c):.2f} µs ({spread(c)})"
vs = f"{m(c) / m(c1):.2f}x | {m(r) / m(r1):.2f}x" if rel else "- | -"
print(f"| {t.upper()} -P {p} | {name} | {m(r):.0f} | {cpu} | {vs} |")
PY
        done
        unset R C
    done
done
