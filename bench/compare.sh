#!/usr/bin/env bash
# Compares damselfly with redis-server on this machine: throughput with
# redis-benchmark (SET, GET, INCR, HSET, MSET at pipeline depth 1 and 16;
# SET and GET over TLS too, each server's tls-port with a client
# certificate, redis-benchmark --tls) and memory after loading the same keys
# into a fresh instance of each.
#
# Usage: bench/compare.sh [--quick] [--no-build] [--shards N] [--repeats N]
#                         [--seconds S] [--keys N] [--clients N]
#
#   --quick       short runs (about 0.5 s each, one repetition, 200k keys)
#   --no-build    use the existing target/release/damselfly
#   --shards N    passed to damselfly (default: its own, one per core)
#   --repeats N   runs per row and server; the median is reported (default 3)
#   --seconds S   target duration of one redis-benchmark run (default 3)
#   --keys N      keys loaded for the memory comparison (default 1000000)
#   --clients N   redis-benchmark connections (default 50)
#   --no-tls      leave out the TLS rows
#
# Both servers listen on random free loopback ports and are stopped on exit.
# Per-run figures are kept in bench/out/ (ignored by git). Progress goes to
# stderr, the result tables to stdout.
#
# Only redis-benchmark, redis-cli, python3's standard library and (for the
# TLS rows) the openssl tool are needed (redis-server and redis-tools are
# installed with apt-get if missing).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ARGS="$*"
QUICK=0
BUILD=1
SHARDS=""
REPEATS=""
SECONDS_PER_RUN=""
KEYS=""
CLIENTS=50
TLS=1

usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --no-build) BUILD=0 ;;
        --shards) SHARDS="${2:?--shards needs a number}"; shift ;;
        --shards=*) SHARDS="${1#*=}" ;;
        --repeats) REPEATS="${2:?--repeats needs a number}"; shift ;;
        --repeats=*) REPEATS="${1#*=}" ;;
        --seconds) SECONDS_PER_RUN="${2:?--seconds needs a number}"; shift ;;
        --seconds=*) SECONDS_PER_RUN="${1#*=}" ;;
        --keys) KEYS="${2:?--keys needs a number}"; shift ;;
        --keys=*) KEYS="${1#*=}" ;;
        --clients) CLIENTS="${2:?--clients needs a number}"; shift ;;
        --clients=*) CLIENTS="${1#*=}" ;;
        --no-tls) TLS=0 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    : "${REPEATS:=1}" "${SECONDS_PER_RUN:=0.5}" "${KEYS:=200000}"
else
    : "${REPEATS:=3}" "${SECONDS_PER_RUN:=3}" "${KEYS:=1000000}"
fi

log() { echo "[compare] $*" >&2; }
die() { echo "compare.sh: $*" >&2; exit 1; }

# --- tools -----------------------------------------------------------------

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null || ! command -v redis-cli >/dev/null; then
    log "installing redis-server and redis-tools"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y redis-server redis-tools >&2
fi
command -v python3 >/dev/null || die "python3 is required"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DAMSELFLY="$TARGET_DIR/release/damselfly"
if [ "$BUILD" = 1 ]; then
    log "building the release binary"
    (cd "$ROOT" && cargo build --release -p damselfly) >&2
fi
[ -x "$DAMSELFLY" ] || die "$DAMSELFLY not found (build it or drop --no-build)"

OUT="$ROOT/bench/out"
mkdir -p "$OUT"
STAMP="$(date +%Y%m%d-%H%M%S)"
RAW="$OUT/$STAMP.csv"
WORK="$(mktemp -d)"
echo "row,server,run,requests,ops_per_sec,server_cpu_us_per_op,client_cpu_us_per_op" >"$RAW"

# --- servers -----------------------------------------------------------------

DPID=""
RPID=""
DPORT=""
RPORT=""
DTLS=""
RTLS=""
# Set while the TLS rows run: redis-benchmark goes to the TLS ports.
ON_TLS=0

cleanup() {
    local p
    for p in "$DPID" "$RPID"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 - <<'EOF'
import random, socket
for _ in range(200):
    port = random.randint(20000, 60000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port")
EOF
}

wait_ready() { # port pid name
    local i
    for i in $(seq 1 200); do
        if ! kill -0 "$2" 2>/dev/null; then
            die "$3 exited during start-up (log: $WORK/$3.log): $(tail -5 "$WORK/$3.log" 2>/dev/null)"
        fi
        if [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]; then
            return 0
        fi
        sleep 0.05
    done
    die "$3 did not answer PING on port $1"
}

# A throw-away CA, and a server and a client certificate it signed.
make_certs() {
    command -v openssl >/dev/null || die "the TLS rows need the openssl tool (or pass --no-tls)"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes) n
    (
        cd "$WORK"
        openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 2 -subj "/CN=bench ca" 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' >ext.cnf
        for n in server client; do
            openssl req "${ec[@]}" -keyout "$n.key" -out "$n.csr" -subj "/CN=$n" 2>/dev/null
            openssl x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$n.crt" -days 2 -extfile ext.cnf 2>/dev/null
        done
    )
}

tls_server_args() { # port
    echo --tls-port "$1" --tls-cert-file "$WORK/server.crt" --tls-key-file "$WORK/server.key" --tls-ca-cert-file "$WORK/ca.crt"
}

start_damselfly() {
    DPORT="$(free_port)"
    local extra=()
    if [ -n "$SHARDS" ]; then extra=(--shards "$SHARDS"); fi
    if [ "$TLS" = 1 ]; then
        DTLS="$(free_port)"
        # shellcheck disable=SC2207
        extra+=($(tls_server_args "$DTLS"))
    fi
    "$DAMSELFLY" --port "$DPORT" --bind 127.0.0.1 --loglevel warn --save "" --dir "$WORK" "${extra[@]}" >"$WORK/damselfly.log" 2>&1 &
    DPID=$!
    wait_ready "$DPORT" "$DPID" damselfly
}

start_redis() {
    RPORT="$(free_port)"
    local extra=()
    if [ "$TLS" = 1 ]; then
        RTLS="$(free_port)"
        # shellcheck disable=SC2207
        extra=($(tls_server_args "$RTLS"))
    fi
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --logfile "$WORK/redis.log" "${extra[@]}" >/dev/null 2>&1 &
    RPID=$!
    wait_ready "$RPORT" "$RPID" redis
}

stop_server() { # pid
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}

port_of() {
    if [ "$ON_TLS" = 1 ]; then
        if [ "$1" = damselfly ]; then echo "$DTLS"; else echo "$RTLS"; fi
    elif [ "$1" = damselfly ]; then echo "$DPORT"; else echo "$RPORT"; fi
}

# redis-benchmark's TLS options while the TLS rows run.
tls_client_args() {
    if [ "$ON_TLS" = 1 ]; then
        echo --tls --cacert "$WORK/ca.crt" --cert "$WORK/client.crt" --key "$WORK/client.key"
    fi
}
pid_of() { if [ "$1" = damselfly ]; then echo "$DPID"; else echo "$RPID"; fi; }

# --- throughput --------------------------------------------------------------

CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"

# CPU time (user + system, all threads) a process has used, in clock ticks.
cpu_ticks() { # pid
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# One redis-benchmark run. Prints "ops/s server_cpu_us_per_op
# client_cpu_us_per_op", or "n/a n/a n/a" when the run failed or the server
# answered with errors (e.g. an unknown command). The CPU figures are less
# sensitive to other load on the machine than the throughput.
bench_once() { # server test pipeline requests
    local port pid out err rps t0 t1 client
    port="$(port_of "$1")"
    pid="$(pid_of "$1")"
    out="$WORK/rb.out"
    err="$WORK/rb.err"
    t0="$(cpu_ticks "$pid")"
    local TIMEFORMAT='%U %S'
    # shellcheck disable=SC2046
    if ! { time timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" -n "$4" -r 100000 -d 16 \
        -P "$3" -t "$2" --csv $(tls_client_args) >"$out" 2>"$err" </dev/null; } 2>"$WORK/rb.time"; then
        echo "n/a n/a n/a"
        return
    fi
    t1="$(cpu_ticks "$pid")"
    if grep -qi 'error' "$err" "$out"; then
        echo "n/a n/a n/a"
        return
    fi
    # The data line is the one after the CSV header: "SET","123456.78",...
    rps="$(awk -F'","' 'NR > 1 && NF > 1 { print $2; exit }' "$out")"
    if [ -z "$rps" ] || ! [[ "$rps" =~ ^[0-9.]+$ ]] || [ "${rps%%.*}" = 0 ]; then
        echo "n/a n/a n/a"
        return
    fi
    client="$(tail -1 "$WORK/rb.time")"
    python3 - "$rps" "$t0" "$t1" "$CLK_TCK" "$4" $client <<'EOF'
import sys
rps, t0, t1, hz, n, cu, cs = sys.argv[1:8]
n = int(n)
server = (int(t1) - int(t0)) / int(hz) * 1e6 / n
client = (float(cu) + float(cs)) * 1e6 / n
print(f"{float(rps):.0f} {server:.2f} {client:.2f}")
EOF
}

median() { # values... ("n/a" values are ignored; all n/a gives n/a)
    python3 - "$@" <<'EOF'
import statistics, sys
v = [float(x) for x in sys.argv[1:] if x != "n/a"]
m = statistics.median(v) if v else None
print("n/a" if m is None else f"{m:.0f}" if m >= 100 else f"{m:.2f}")
EOF
}

# Requests per run: enough for about SECONDS_PER_RUN seconds at the rate a
# short warm-up probe measured on that server (the servers can differ several
# times over, so each gets its own count; the reported figure is a rate).
requests_for() { # probe_rps pipeline
    python3 - "$@" "$SECONDS_PER_RUN" <<'EOF'
import sys
rate, pipe, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
n = int(float(rate) * secs) if rate != "n/a" else 0
floor = 20000 * pipe if secs >= 1 else 5000 * pipe
n = max(n, floor)
# Round to two significant figures for readability.
digits = len(str(n)) - 2
print(round(n, -digits) if digits > 0 else n)
EOF
}

TESTS=(set get incr hset mset)
PIPES=(1 16)
declare -A RESULT_D RESULT_R CPU_D CPU_R

label() { # test pipeline
    local t
    t="$(echo "$1" | tr '[:lower:]' '[:upper:]')"
    if [ "$1" = mset ]; then t="MSET (10 keys)"; fi
    if [ "$ON_TLS" = 1 ]; then echo "TLS $t -P $2"; else echo "$t -P $2"; fi
}

TLS_TESTS=(set get)
# Every row, in report order: "tls test pipeline".
ROWS=()
for pipe in "${PIPES[@]}"; do
    for t in "${TESTS[@]}"; do ROWS+=("0 $t $pipe"); done
done
if [ "$TLS" = 1 ]; then
    for pipe in "${PIPES[@]}"; do
        for t in "${TLS_TESTS[@]}"; do ROWS+=("1 $t $pipe"); done
    done
    make_certs
fi

log "damselfly: $DAMSELFLY${SHARDS:+ --shards $SHARDS}"
log "redis: $(redis-server --version | head -1)"
log "throughput: $CLIENTS clients, -r 100000 -d 16, $REPEATS run(s) per row and server, ~${SECONDS_PER_RUN}s per run"
start_damselfly
start_redis
log "damselfly on port $DPORT (pid $DPID), redis on port $RPORT (pid $RPID)"

order=0
for spec in "${ROWS[@]}"; do
    read -r ON_TLS t pipe <<<"$spec"
    {
        row="$(label "$t" "$pipe")"
        if [ "$pipe" = 1 ]; then probe_n=10000; else probe_n=50000; fi
        if [ "$QUICK" = 1 ]; then probe_n=$((probe_n / 2)); fi
        pd="$(bench_once damselfly "$t" "$pipe" "$probe_n")"
        pr="$(bench_once redis "$t" "$pipe" "$probe_n")"
        nd="$(requests_for "${pd%% *}" "$pipe")"
        nr="$(requests_for "${pr%% *}" "$pipe")"
        dvals=(); rvals=(); dcpu=(); rcpu=()
        for run in $(seq 1 "$REPEATS"); do
            # Alternate which server goes first.
            if [ $((order % 2)) = 0 ]; then servers=(damselfly redis); else servers=(redis damselfly); fi
            order=$((order + 1))
            for s in "${servers[@]}"; do
                if [ "$s" = damselfly ]; then probe="$pd" n="$nd"; else probe="$pr" n="$nr"; fi
                if [ "${probe%% *}" = n/a ]; then
                    set -- n/a n/a n/a
                else
                    # shellcheck disable=SC2046
                    set -- $(bench_once "$s" "$t" "$pipe" "$n")
                fi
                echo "\"$row\",$s,$run,$n,$1,$2,$3" >>"$RAW"
                if [ "$1" = n/a ]; then
                    log "$row  run $run/$REPEATS  $s: n/a"
                else
                    log "$row  run $run/$REPEATS  $s: $1 ops/s (-n $n), server $2 us/op, client $3 us/op"
                fi
                if [ "$s" = damselfly ]; then dvals+=("$1"); dcpu+=("$2"); else rvals+=("$1"); rcpu+=("$2"); fi
            done
        done
        RESULT_D["$row"]="$(median "${dvals[@]}")"
        RESULT_R["$row"]="$(median "${rvals[@]}")"
        CPU_D["$row"]="$(median "${dcpu[@]}")"
        CPU_R["$row"]="$(median "${rcpu[@]}")"
    }
done
ON_TLS=0

stop_server "$DPID"; DPID=""
stop_server "$RPID"; RPID=""

# --- memory ------------------------------------------------------------------

info_field() { # port field
    redis-cli -h 127.0.0.1 -p "$1" info memory | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'
}

vmrss_bytes() { # pid
    awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"
}

PAYLOAD="$WORK/load.resp"
log "generating $KEYS SET commands (key:%012d, 16-byte values)"
python3 - "$KEYS" "$PAYLOAD" <<'EOF'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "wb", buffering=1 << 20) as f:
    for i in range(n):
        key = b"key:%012d" % i
        val = b"v%015d" % i  # 16 bytes, not an integer
        f.write(b"*3\r\n$3\r\nSET\r\n$16\r\n" + key + b"\r\n$16\r\n" + val + b"\r\n")
EOF

declare -A MEM
for s in damselfly redis; do
    if [ "$s" = damselfly ]; then start_damselfly; else start_redis; fi
    port="$(port_of "$s")"
    pid="$(pid_of "$s")"
    MEM["$s,base_used"]="$(info_field "$port" used_memory)"
    MEM["$s,base_rss"]="$(vmrss_bytes "$pid")"
    log "loading $KEYS keys into $s"
    res="$(redis-cli -h 127.0.0.1 -p "$port" --pipe <"$PAYLOAD" 2>&1 | tail -1)"
    log "$s: $res"
    dbsize="$(redis-cli -h 127.0.0.1 -p "$port" dbsize | tr -d '\r')"
    [ "$dbsize" = "$KEYS" ] || log "warning: $s DBSIZE is $dbsize, expected $KEYS"
    sleep 1
    MEM["$s,used"]="$(info_field "$port" used_memory)"
    MEM["$s,rss_info"]="$(info_field "$port" used_memory_rss)"
    MEM["$s,vmrss"]="$(vmrss_bytes "$pid")"
    MEM["$s,dbsize"]="$dbsize"
    stop_server "$pid"
    if [ "$s" = damselfly ]; then DPID=""; else RPID=""; fi
done

# --- report ------------------------------------------------------------------

{
    echo
    echo "Date:      $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "Machine:   $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)"
    echo "damselfly: $("$DAMSELFLY" --version 2>/dev/null | awk '{ print $2 }') ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)), shards: ${SHARDS:-default}"
    echo "redis:     $(redis-server --version | awk '{ print $3 }' | sed 's/^v=//'), redis-benchmark $(redis-benchmark --version | awk '{ print $2 }')"
    echo "Command:   bench/compare.sh $ARGS"
    echo
    echo "Throughput (ops/s, median of $REPEATS; $CLIENTS clients, -r 100000 -d 16)"
    echo
    printf '| %-22s | %15s | %15s | %6s | %15s | %15s |\n' "row" "damselfly ops/s" "redis ops/s" "ratio" "damselfly us/op" "redis us/op"
    printf '|%s|%s|%s|%s|%s|%s|\n' "------------------------" "----------------:" "----------------:" "-------:" "----------------:" "----------------:"
    for spec in "${ROWS[@]}"; do
        read -r ON_TLS t pipe <<<"$spec"
        {
            row="$(label "$t" "$pipe")"
            d="${RESULT_D[$row]}"
            r="${RESULT_R[$row]}"
            ratio="$(python3 -c 'import sys; d, r = sys.argv[1:]; print("n/a" if "n/a" in (d, r) else f"{float(d)/float(r):.2f}")' "$d" "$r")"
            printf '| %-22s | %15s | %15s | %6s | %15s | %15s |\n' "$row" "$d" "$r" "$ratio" "${CPU_D[$row]}" "${CPU_R[$row]}"
        }
    done
    ON_TLS=0
    echo
    echo "ratio = damselfly / redis ops/s. us/op = server CPU time (user + system, all threads)"
    echo "per request, median; lower is better."
    echo
    echo "Memory after loading $KEYS keys (key:%012d, 16-byte values) into a fresh instance"
    echo
    python3 - "$KEYS" \
        "${MEM[damselfly,used]}" "${MEM[damselfly,rss_info]}" "${MEM[damselfly,vmrss]}" "${MEM[damselfly,base_used]}" "${MEM[damselfly,base_rss]}" \
        "${MEM[redis,used]}" "${MEM[redis,rss_info]}" "${MEM[redis,vmrss]}" "${MEM[redis,base_used]}" "${MEM[redis,base_rss]}" <<'EOF'
import sys
keys = int(sys.argv[1])
def nums(a):
    return [int(x) if x.isdigit() else None for x in a]
d = nums(sys.argv[2:7])
r = nums(sys.argv[7:12])
def mib(v):
    return "n/a" if v is None else f"{v / 2**20:.1f} MiB"
def ratio(a, b):
    return "n/a" if a is None or not b else f"{a / b:.2f}"
def per_key(after, before):
    return "n/a" if after is None or before is None else f"{(after - before) / keys:.1f} B"
rows = [
    ("used_memory", d[0], r[0]),
    ("used_memory_rss", d[1], r[1]),
    ("VmRSS", d[2], r[2]),
]
print(f"| {'metric':<26} | {'damselfly':>12} | {'redis':>12} | {'ratio':>6} |")
print(f"|{'-' * 28}|{'-' * 13}:|{'-' * 13}:|{'-' * 7}:|")
for name, a, b in rows:
    print(f"| {name:<26} | {mib(a):>12} | {mib(b):>12} | {ratio(a, b):>6} |")
print(f"| {'used_memory per key':<26} | {per_key(d[0], d[3]):>12} | {per_key(r[0], r[3]):>12} | {ratio(None if d[0] is None or d[3] is None else d[0]-d[3], None if r[0] is None or r[3] is None else r[0]-r[3]):>6} |")
print(f"| {'VmRSS per key':<26} | {per_key(d[2], d[4]):>12} | {per_key(r[2], r[4]):>12} | {ratio(None if d[2] is None or d[4] is None else d[2]-d[4], None if r[2] is None or r[4] is None else r[2]-r[4]):>6} |")
EOF
    echo
    echo "ratio = damselfly / redis. Per-run figures: ${RAW#"$ROOT"/}"
} | tee "$OUT/$STAMP.txt"
