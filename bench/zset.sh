#!/usr/bin/env bash
# Sorted-set benchmark: a release damselfly and redis-server side by side.
#
#   bench/zset.sh            (build first: cargo build --release -p damselfly)
#
# Throughput (redis-benchmark, 50 clients, random members via -r):
#   ZADD and ZINCRBY into one set; ZREVRANGE 0 9 WITHSCORES and ZRANK on a
#   1,000,000-member set.
# Memory (RSS growth and INFO used_memory growth, each on a fresh server):
#   one set of 1,000,000 members of 16 bytes with random scores, and 100,000
#   sets of 10 such members; both loaded as generated RESP via redis-cli --pipe.
#
# Environment: DAMSELFLY_BIN (default target/release/damselfly), SHARDS
# (default: damselfly's own default, one per core), REQUESTS (per throughput
# run, default 200000), ROUNDS (alternating runs per test, median reported,
# default 3), MEMBERS (default 1000000), SETS (default 100000), PIPELINE
# (redis-benchmark -P, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${DAMSELFLY_BIN:-target/release/damselfly}
REQUESTS=${REQUESTS:-200000}
MEMBERS=${MEMBERS:-1000000}
SETS=${SETS:-100000}
PIPELINE=${PIPELINE:-1}
CLIENTS=50

for tool in redis-server redis-cli redis-benchmark awk; do
  command -v "$tool" >/dev/null || { echo "bench/zset.sh: $tool is required" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "bench/zset.sh: $BIN not found (cargo build --release -p damselfly)" >&2; exit 1; }

PIDS=()
WORK=$(mktemp -d)
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# A loopback port nobody listens on.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}

# start <damselfly|redis>: starts a fresh server; sets PORT and PID (the
# server stays up until stop or exit). Retries on another port if the
# chosen one was taken meanwhile.
start() {
  local attempt
  for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    if [ "$1" = damselfly ]; then
      local extra=()
      [ -n "${SHARDS:-}" ] && extra=(--shards "$SHARDS")
      "$BIN" --port "$PORT" --bind 127.0.0.1 --loglevel warn --save "" "${extra[@]}" >>"$WORK/$1.log" 2>&1 &
    else
      redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --loglevel warning >>"$WORK/$1.log" 2>&1 &
    fi
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 200); do
      kill -0 "$PID" 2>/dev/null || break
      [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && return
      sleep 0.05
    done
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  done
  echo "bench/zset.sh: $1 did not start:" >&2
  tail -5 "$WORK/$1.log" >&2
  exit 1
}

stop() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}

rss() { awk '/^VmRSS/ { print $2 * 1024 }' "/proc/$PID/status"; }
used() { redis-cli -p "$PORT" info memory | awk -F: '/^used_memory:/ { gsub("\r", "", $2); print $2 }'; }

# RESP for ZADD <key> with random scores (dyadic, so every server prints
# them identically) and 16-byte members "mem:%012d".
# gen_big <key> <members>: one set, 100 pairs per command.
gen_big() {
  awk -v key="$1" -v n="$2" 'BEGIN {
    srand(42)
    for (i = 0; i < n; i += 100) {
      m = (n - i < 100) ? n - i : 100
      printf "*%d\r\n$4\r\nZADD\r\n$%d\r\n%s\r\n", 2 + 2 * m, length(key), key
      for (j = 0; j < m; j++) {
        s = sprintf("%.10f", int(rand() * 1073741824) / 1024); sub(/\.?0+$/, "", s)
        printf "$%d\r\n%s\r\n$16\r\nmem:%012d\r\n", length(s), s, i + j
      }
    }
  }'
}

# gen_small <sets>: sets "viewed:%06d" of 10 random members each.
gen_small() {
  awk -v n="$1" 'BEGIN {
    srand(7)
    for (i = 0; i < n; i++) {
      key = sprintf("viewed:%06d", i)
      printf "*22\r\n$4\r\nZADD\r\n$%d\r\n%s\r\n", length(key), key
      for (j = 0; j < 10; j++) {
        s = sprintf("%.10f", int(rand() * 1073741824) / 1024); sub(/\.?0+$/, "", s)
        printf "$%d\r\n%s\r\n$16\r\nmem:%012d\r\n", length(s), s, int(rand() * 1000000)
      }
    }
  }'
}

gen_big big "$MEMBERS" >"$WORK/big.resp"
gen_small "$SETS" >"$WORK/small.resp"

load() {
  local out
  out=$(redis-cli -p "$PORT" --pipe <"$1" 2>&1)
  case "$out" in *"errors: 0"*) ;; *) echo "bench/zset.sh: load failed: $out" >&2; exit 1 ;; esac
}

# bench <port> <args...>: "rps p50" of one redis-benchmark run.
bench() {
  local port=$1
  shift
  redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" -n "$REQUESTS" -P "$PIPELINE" -r 1000000 --csv "$@" |
    tail -1 | awk -F, '{ gsub("\"", ""); print $2, $5 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A R PORTS
for SERVER in redis damselfly; do
  echo "== $SERVER: memory" >&2
  # 100,000 sets of 10 members, on a fresh server.
  start "$SERVER"
  sleep 0.5
  r0=$(rss) u0=$(used)
  load "$WORK/small.resp"
  sleep 1
  R["$SERVER:small_rss"]=$(($(rss) - r0))
  R["$SERVER:small_used"]=$(($(used) - u0))
  stop
  # One 1M-member set, on a fresh server that then stays up for the
  # throughput tests.
  start "$SERVER"
  sleep 0.5
  r0=$(rss) u0=$(used)
  t0=$(date +%s.%N)
  load "$WORK/big.resp"
  t1=$(date +%s.%N)
  sleep 1
  R["$SERVER:big_rss"]=$(($(rss) - r0))
  R["$SERVER:big_used"]=$(($(used) - u0))
  R["$SERVER:big_load"]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  [ "$(redis-cli -p "$PORT" zcard big)" = "$MEMBERS" ] || { echo "bench/zset.sh: big has the wrong size" >&2; exit 1; }
  PORTS[$SERVER]=$PORT
done

# Throughput: the two servers alternate run by run (ROUNDS rounds, median
# reported), so load from elsewhere on the machine hits both alike.
ROUNDS=${ROUNDS:-3}
TESTS=(zadd zincrby zrevrange zrank)
declare -A ARGS=(
  [zadd]="zadd zb __rand_int__ mem:__rand_int__"
  [zincrby]="zincrby zb 1 mem:__rand_int__"
  [zrevrange]="zrevrange big 0 9 withscores"
  [zrank]="zrank big mem:__rand_int__"
)
for round in $(seq "$ROUNDS"); do
  echo "== throughput round $round/$ROUNDS" >&2
  for t in "${TESTS[@]}"; do
    for SERVER in redis damselfly; do
      # shellcheck disable=SC2086
      set -- $(bench "${PORTS[$SERVER]}" ${ARGS[$t]})
      R["$SERVER:$t:runs"]+="$1 "
      R["$SERVER:$t:p50s"]+="$2 "
    done
  done
done
for SERVER in redis damselfly; do
  for t in "${TESTS[@]}"; do
    R["$SERVER:$t"]=$(tr ' ' '\n' <<<"${R[$SERVER:$t:runs]}" | grep . | median)
    R["$SERVER:$t:p50"]=$(tr ' ' '\n' <<<"${R[$SERVER:$t:p50s]}" | grep . | median)
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
mb() { awk -v a="$1" 'BEGIN { printf "%.1f MB", a / 1048576 }'; }
per() { awk -v a="$1" -v n="$2" 'BEGIN { printf "%.1f", a / n }'; }

echo
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)"
echo "redis-server $(redis-server --version | awk '{ print $3 }' | cut -d= -f2); damselfly $(git rev-parse --short HEAD 2>/dev/null || echo '?')${SHARDS:+, $SHARDS shards}; $CLIENTS clients, -P $PIPELINE, $REQUESTS requests per run, median of $ROUNDS alternating runs"
echo
printf "%-44s %18s %18s %9s\n" "throughput (requests/s, p50 ms)" redis-server damselfly ratio
for t in zadd zincrby zrevrange zrank; do
  case $t in
    zadd) label="ZADD zb <rand> mem:<rand>" ;;
    zincrby) label="ZINCRBY zb 1 mem:<rand>" ;;
    zrevrange) label="ZREVRANGE big 0 9 WITHSCORES (1M set)" ;;
    zrank) label="ZRANK big mem:<rand> (1M set)" ;;
  esac
  printf "%-44s %18s %18s %9s\n" "$label" "${R[redis:$t]} (${R[redis:$t:p50]})" "${R[damselfly:$t]} (${R[damselfly:$t:p50]})" "$(ratio "${R[damselfly:$t]}" "${R[redis:$t]}")"
done
echo
printf "%-44s %16s %16s %9s\n" "memory growth" redis-server damselfly ratio
for m in big small; do
  n=$([ $m = big ] && echo "$MEMBERS" || echo $((SETS * 10)))
  what=$([ $m = big ] && echo "1 set x $MEMBERS members" || echo "$SETS sets x 10 members")
  printf "%-44s %16s %16s %9s\n" "$what: RSS" "$(mb "${R[redis:${m}_rss]}")" "$(mb "${R[damselfly:${m}_rss]}")" "$(ratio "${R[damselfly:${m}_rss]}" "${R[redis:${m}_rss]}")"
  printf "%-44s %16s %16s %9s\n" "$what: used_memory" "$(mb "${R[redis:${m}_used]}")" "$(mb "${R[damselfly:${m}_used]}")" "$(ratio "${R[damselfly:${m}_used]}" "${R[redis:${m}_used]}")"
  printf "%-44s %16s %16s\n" "  RSS bytes per member" "$(per "${R[redis:${m}_rss]}" "$n")" "$(per "${R[damselfly:${m}_rss]}" "$n")"
done
printf "%-44s %16s %16s\n" "load time of the 1M set (s, redis-cli --pipe)" "${R[redis:big_load]}" "${R[damselfly:big_load]}"
