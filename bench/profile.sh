#!/usr/bin/env bash
# Where does a server's CPU time go under redis-benchmark load?
#
# Usage: bench/profile.sh [--no-build] [--server damselfly|redis] [--shards N]
#                         [--case TEST:PIPELINE:REQUESTS]... [--keep DIR]
#
# Default cases: set:1:200000 and get:16:3000000 (50 clients, -r 100000 -d 16,
# keyspace pre-filled so GETs hit). For each case a fresh server is started,
# then two identical runs are measured:
#
#   1. `perf stat` over the whole run: CPU time, context switches and system
#      calls of the server, divided by the number of requests;
#   2. `perf record -e cpu-clock --call-graph dwarf`: each sample is assigned
#      to the first category found walking its stack from the leaf (syscall
#      kind, keyspace lookup, parsing, allocation, channels, ...).
#
# Needs perf (apt-get install linux-perf) with software events; hardware
# counters are not required. The categories only have damselfly symbols;
# for redis-server (stripped in Debian) the user-space part shows as "other".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1
SERVER=damselfly
SHARDS=""
CASES=()
KEEP=""
CLIENTS=50

while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --server) SERVER="${2:?}"; shift ;;
        --shards) SHARDS="${2:?}"; shift ;;
        --case) CASES+=("${2:?}"); shift ;;
        --keep) KEEP="${2:?}"; shift ;;
        -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "profile.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ ${#CASES[@]} -gt 0 ] || CASES=(set:1:200000 get:16:3000000)

command -v perf >/dev/null || { echo "profile.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }
if ! perf stat -e task-clock true >/dev/null 2>&1; then
    echo "profile.sh: perf cannot count software events here" >&2
    exit 1
fi

DAMSELFLY="${CARGO_TARGET_DIR:-$ROOT/target}/release/damselfly"
if [ "$SERVER" = damselfly ] && [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release -p damselfly) >&2
fi

WORK="$(mktemp -d)"
PID=""
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && cp "$WORK"/*.data "$WORK"/*.stat "$KEEP"/ 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c '
import random, socket
while True:
    p = random.randint(20000, 60000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()'
}

start() {
    PORT="$(free_port)"
    if [ "$SERVER" = damselfly ]; then
        local extra=()
        if [ -n "$SHARDS" ]; then extra=(--shards "$SHARDS"); fi
        "$DAMSELFLY" --port "$PORT" --bind 127.0.0.1 --loglevel warn --save "" --dir "$WORK" "${extra[@]}" >"$WORK/server.log" 2>&1 &
    else
        redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --logfile "$WORK/server.log" >/dev/null 2>&1 &
    fi
    PID=$!
    for _ in $(seq 1 200); do
        [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.05
    done
    echo "profile.sh: server did not start" >&2
    exit 1
}

stop() {
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
}

bench() { # test pipeline requests
    redis-benchmark -p "$PORT" -c "$CLIENTS" -n "$3" -r 100000 -d 16 -P "$2" -t "$1" --csv 2>/dev/null |
        awk -F'","' 'NR > 1 { print $2; exit }'
}

# Runs `perf ARGS -p PID` for exactly the duration of one benchmark run.
measured() { # perf-args... -- test pipeline requests
    local args=()
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    shift
    perf "${args[@]}" -p "$PID" >/dev/null 2>&1 &
    local ppid=$!
    sleep 0.5
    local rps
    rps="$(bench "$@")"
    kill -INT "$ppid" 2>/dev/null || true
    wait "$ppid" 2>/dev/null || true
    echo "$rps"
}

SYSCALLS=(sendto recvfrom read write epoll_wait epoll_ctl futex writev)
STAT_EVENTS="task-clock,context-switches"
for s in "${SYSCALLS[@]}"; do STAT_EVENTS="$STAT_EVENTS,syscalls:sys_enter_$s"; done

CLASSIFY="$WORK/classify.py"
cat >"$CLASSIFY" <<'EOF'
import re, sys
from collections import Counter

# (category, pattern), in priority order: a sample belongs to the first
# category with a pattern matching any frame of its stack (so time inside an
# allocation called by the parser counts as allocation, and the broad
# categories at the end only take what is left).
RULES = [
    ("kernel: send() of replies (incl. loopback TCP delivery)", r"^(__sys_sendto|__x64_sys_sendto)$"),
    ("kernel: recv() of requests", r"^(__sys_recvfrom|__x64_sys_recvfrom)$"),
    ("kernel: write()/read() (damselfly: eventfd; redis: sockets)", r"^(ksys_write|ksys_read|__x64_sys_write|__x64_sys_read)$"),
    ("kernel: epoll_wait, sleep and wake-up", r"^(do_epoll_wait|__x64_sys_epoll_wait)$"),
    ("kernel: preempted on syscall exit (CPU contention)", r"^exit_to_user_mode_loop$"),
    ("kernel: other syscalls, syscall entry/exit", r"^do_syscall_64$"),
    ("allocation (mimalloc)", r"^(_?mi_|mimalloc::|<mimalloc::|<damselfly::alloc::Counting|__rustc::__rust_(alloc|dealloc|realloc))"),
    ("key slot CRC16", r"^damselfly::slot::"),
    ("key hashing (foldhash)", r"^(foldhash::|core::hash::BuildHasher::hash_one)"),
    ("keyspace lookup (slot table, probe, slab entry)", r"^damselfly::store::db::Db::(lookup|find)$"),
    ("keyspace insert/update", r"^damselfly::store::"),
    ("RESP parsing", r"^damselfly::resp::parse::"),
    ("command table lookup", r"^damselfly::commands::lookup$"),
    ("clock (now_ms)", r"^(damselfly::util::now_ms|__vdso_clock_gettime|__GI___clock_gettime)"),
    ("cross-shard channels and task wake-ups", r"^(tokio::sync::|<tokio::sync::|mio::sys::unix::waker::|tokio::runtime::task::waker::|tokio::task::local::Shared::schedule|tokio::util::wake::|damselfly::shard::Engine::send)"),
    ("command handlers and reply encoding", r"^damselfly::(commands::|resp::)"),
    ("pipeline dispatch (execute, run_segment, exec_batch)", r"^damselfly::(server::conn::(Conn::|exec_)|shard::)"),
    ("connection loop (serve, buffers)", r"^(damselfly::server::conn::serve|bytes::|<bytes::)"),
    ("tokio runtime", r"^(tokio::|<tokio::|mio::|<mio::)"),
]
RULES = [(name, re.compile(p)) for name, p in RULES]

def classify(frames):
    for name, rx in RULES:
        if any(rx.search(f) for f, _ in frames):
            return name
    if frames and frames[0][1]:
        return "kernel: other (interrupts, scheduler)"
    return "other"

counts = Counter()
total = 0
frames = []
def flush():
    global total, frames
    if frames:
        counts[classify(frames)] += 1
        total += 1
    frames = []

for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.strip() or not line.startswith((" ", "\t")):
        flush()
        continue
    parts = line.strip().split(None, 1)
    if len(parts) < 2:
        continue
    sym = parts[1]
    kernel = "[kernel" in sym
    sym = re.sub(r" \([^()]*\)$", "", sym)  # trailing "(dso)"
    sym = sym.replace(" (inlined)", "")
    sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
    frames.append((sym, kernel))
flush()

us_per_op = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
print(f"| {'where':<60} | {'% of CPU':>8} | {'us/op':>6} |")
print(f"|{'-' * 62}|{'-' * 9}:|{'-' * 7}:|")
for name, c in counts.most_common():
    pct = 100.0 * c / total
    print(f"| {name:<60} | {pct:7.1f}% | {us_per_op * pct / 100:6.2f} |")
print(f"\n{total} samples")
EOF

label="$SERVER${SHARDS:+ --shards $SHARDS}"
for c in "${CASES[@]}"; do
    IFS=: read -r test pipe n <<<"$c"
    start
    # Fill the keyspace so that GETs hit, and warm up.
    bench set 16 400000 >/dev/null
    echo
    echo "## $label: $(echo "$test" | tr a-z A-Z) -P $pipe ($n requests, $CLIENTS clients, -r 100000 -d 16)"
    echo
    rps="$(measured stat -e "$STAT_EVENTS" -x, -o "$WORK/$test$pipe.stat" -- "$test" "$pipe" "$n")"
    echo "perf stat run: $rps ops/s"
    echo
    python3 - "$WORK/$test$pipe.stat" "$n" "${SYSCALLS[@]}" <<'EOF'
import sys
path, n, syscalls = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
vals = {}
for line in open(path):
    parts = line.strip().split(",")
    if len(parts) < 3 or line.startswith("#"):
        continue
    try:
        vals[parts[2]] = float(parts[0])
    except ValueError:
        pass
rows = [("CPU time, us", vals.get("task-clock", 0.0) * 1000 / n), ("context switches", vals.get("context-switches", 0) / n)]
for s in syscalls:
    v = vals.get(f"syscalls:sys_enter_{s}", 0)
    if v:
        rows.append((f"{s}()", v / n))
print("| server, per request | |")
print("|---|---:|")
for k, v in rows:
    print(f"| {k} | {v:.3f} |")
EOF
    us="$(awk -F, -v n="$n" '$3 == "task-clock" { printf "%.3f", $1 * 1000 / n }' "$WORK/$test$pipe.stat")"
    rps="$(measured record -F 999 -e cpu-clock --call-graph dwarf,16384 -o "$WORK/$test$pipe.data" -- "$test" "$pipe" "$n")"
    echo
    echo "perf record run: $rps ops/s; CPU time split (us/op from the perf stat run):"
    echo
    perf script -i "$WORK/$test$pipe.data" -F ip,sym,dso 2>/dev/null | python3 "$CLASSIFY" "$us"
    stop
done
