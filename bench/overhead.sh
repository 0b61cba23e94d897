#!/usr/bin/env bash
# What the observability and security features cost: damselfly as it
# starts (base) against the same binary with
#   observed: the Prometheus endpoint scraped every second, the latency
#             monitor at 1 ms and the slow log as configured by default;
#   tracking: a RESP3 client tracking every key (CLIENT TRACKING ON BCAST)
#             that reads its invalidations (one per write);
#   acl:      redis-benchmark logged in as a user with 10 key patterns
#             (the last one matching its keys) instead of the default user.
# SET and GET at pipeline depth 1 and 16, redis-benchmark -c 50 -r 100000,
# medians of REPEATS runs, base and variant alternating on one server
# process (each variant switched on for its run and off after it).
#
# Usage: bench/overhead.sh [--no-build] [--repeats N] [--requests N]
#                          [--variants "observed tracking acl"] [--tests "set get"]
# Needs redis-benchmark, redis-cli, curl and python3. Output: a table on
# stdout (ops/s and server CPU per request, and the variant's ops/s as a
# share of base's).

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1
REPEATS=3
REQUESTS=400000
VARIANTS="observed tracking acl"
TESTS="set get"
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --repeats) REPEATS="$2"; shift ;;
        --requests) REQUESTS="$2"; shift ;;
        --variants) VARIANTS="$2"; shift ;;
        --tests) TESTS="$2"; shift ;;
        *) echo "overhead.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
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

# One run: "ops/s server_cpu_us_per_request".
bench_once() { # port pid test pipeline [auth args...]
    local port=$1 pid=$2 test=$3 pipe=$4; shift 4
    local t0 t1 rps
    t0="$(cpu_ticks "$pid")"
    rps="$(redis-benchmark -h 127.0.0.1 -p "$port" "$@" -c 50 -n "$REQUESTS" -r 100000 -d 16 -P "$pipe" -t "$test" --csv 2>/dev/null | awk -F'","' 'NR > 1 && NF > 1 { print $2; exit }')"
    t1="$(cpu_ticks "$pid")"
    python3 -c "import sys; print(f'{float(sys.argv[1]):.0f} {(int(sys.argv[3])-int(sys.argv[2]))/int(sys.argv[4])*1e6/int(sys.argv[5]):.2f}')" "$rps" "$t0" "$t1" "$HZ" "$REQUESTS"
}

start() { # name extra args...: sets PORT and PID
    local name=$1; shift
    PORT="$(free_port)"
    mkdir -p "$WORK/$name"
    "$BIN" --port "$PORT" --bind 127.0.0.1 --save "" --dir "$WORK/$name" --loglevel warn "$@" >"$WORK/$name.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    wait_ready "$PORT"
}

# One server for every variant, switched on and off around its runs:
# separate processes of the same binary differ by more than the variants
# cost (their memory layout and scheduling; up to 15% at -P 16 here).
MPORT="$(free_port)"
start base --metrics-port "$MPORT"; BPORT=$PORT; BPID=$PID
redis-cli -p "$BPORT" ACL SETUSER bench on '>pw' '~a1*' '~b2*' '~c3*' '~d4*' '~e5*' '~f6*' '~g7*' '~h8*' '~i9*' '~key:*' '+@all' >/dev/null
HELPER=""
variant_on() { # variant
    case "$1" in
        observed)
            redis-cli -p "$BPORT" CONFIG SET latency-monitor-threshold 1 >/dev/null
            ( while true; do curl -s "http://127.0.0.1:$MPORT/metrics" >/dev/null || true; sleep 1; done ) &
            HELPER=$! ;;
        tracking)
            python3 - "$BPORT" <<'PY' &
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"HELLO 3\r\nCLIENT TRACKING ON BCAST\r\n")
while s.recv(1 << 16):
    pass
PY
            HELPER=$!
            for _ in $(seq 1 100); do redis-cli -p "$BPORT" CLIENT LIST | grep -q 'flags=t' && break; sleep 0.05; done ;;
    esac
}
variant_off() { # variant
    if [ -n "$HELPER" ]; then kill "$HELPER" 2>/dev/null || true; wait "$HELPER" 2>/dev/null || true; HELPER=""; fi
    case "$1" in
        observed) redis-cli -p "$BPORT" CONFIG SET latency-monitor-threshold 0 >/dev/null ;;
        tracking) for _ in $(seq 1 100); do redis-cli -p "$BPORT" CLIENT LIST | grep -q 'flags=t' || break; sleep 0.05; done ;;
    esac
}

printf '| test | base ops/s | base CPU/req | variant | variant ops/s | variant CPU/req | share of base |\n|---|---:|---:|---|---:|---:|---:|\n'
for test in $TESTS; do
    for pipe in 1 16; do
        for variant in $VARIANTS; do
            b=(); v=(); bc=(); vc=()
            for _ in $(seq 1 "$REPEATS"); do
                read -r r c < <(bench_once "$BPORT" "$BPID" "$test" "$pipe"); b+=("$r"); bc+=("$c")
                variant_on "$variant"
                if [ "$variant" = acl ]; then
                    read -r r c < <(bench_once "$BPORT" "$BPID" "$test" "$pipe" --user bench -a pw)
                else
                    read -r r c < <(bench_once "$BPORT" "$BPID" "$test" "$pipe")
                fi
                variant_off "$variant"
                v+=("$r"); vc+=("$c")
            done
            python3 - "$test" "$pipe" "$variant" "${b[*]}" "${bc[*]}" "${v[*]}" "${vc[*]}" <<'PY'
import statistics, sys
t, p, var, b, bc, v, vc = sys.argv[1:]
m = lambda s: statistics.median(float(x) for x in s.split())
print(f"| {t.upper()} -P {p} | {m(b):.0f} | {m(bc):.2f} µs | {var} | {m(v):.0f} | {m(vc):.2f} µs | {m(v) / m(b):.3f} |")
PY
        done
    done
done
