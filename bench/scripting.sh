#!/usr/bin/env bash
# Scripting benchmark: damselfly (release build) side by side with
# redis-server, both on free loopback ports, driven by redis-benchmark with
# 50 clients at pipeline depth 1 and 16:
#   - EVALSHA of the flash-sale inventory script (GET, DECRBY, INCRBY on two
#     keys of one hash slot; the stock never runs out, so every call writes);
#   - EVALSHA of a 1-key GET script.
# Prints one line per row (requests per second) and stops both servers on
# exit. Usage: bench/scripting.sh [requests]   (default 200000)
set -euo pipefail
cd "$(dirname "$0")/.."

N="${1:-200000}"
CLIENTS=50

for tool in redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install redis-server redis-tools)"; exit 1; }
done

echo "== building damselfly (release)"
cargo build --release -p damselfly >/dev/null
BIN="${CARGO_TARGET_DIR:-target}/release/damselfly"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

wait_port() {
  for _ in $(seq 1 100); do
    redis-cli -p "$1" PING >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "server on port $1 did not start"; exit 1
}

DPORT=$(free_port)
"$BIN" --port "$DPORT" --bind 127.0.0.1 --loglevel warn --save "" &
PIDS+=($!)
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning &
PIDS+=($!)
wait_port "$DPORT"
wait_port "$RPORT"

INVENTORY="local want = tonumber(ARGV[1])
if not want or want <= 0 then return nil end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left < want then return 0 end
redis.call('DECRBY', KEYS[1], want)
redis.call('INCRBY', KEYS[2], want)
return want"
GETSCRIPT="return redis.call('GET', KEYS[1])"

rps() { # port pipeline args...
  local port=$1 p=$2; shift 2
  redis-benchmark -p "$port" -c "$CLIENTS" -n "$N" -P "$p" --csv "$@" 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"'
}

printf '%-34s %-3s %14s %14s %7s\n' "workload" "-P" "damselfly" "redis-server" "ratio"
for name in inventory get; do
  declare -A SHA=()
  for port in "$DPORT" "$RPORT"; do
    redis-cli -p "$port" SET '{sale}:stock' 1000000000000 >/dev/null
    redis-cli -p "$port" SET '{sale}:sold' 0 >/dev/null
    redis-cli -p "$port" SET 'item' 'value' >/dev/null
    if [ "$name" = inventory ]; then
      SHA[$port]=$(redis-cli -p "$port" SCRIPT LOAD "$INVENTORY")
    else
      SHA[$port]=$(redis-cli -p "$port" SCRIPT LOAD "$GETSCRIPT")
    fi
  done
  for p in 1 16; do
    if [ "$name" = inventory ]; then
      d=$(rps "$DPORT" "$p" EVALSHA "${SHA[$DPORT]}" 2 '{sale}:stock' '{sale}:sold' 1)
      r=$(rps "$RPORT" "$p" EVALSHA "${SHA[$RPORT]}" 2 '{sale}:stock' '{sale}:sold' 1)
      label="EVALSHA inventory (2 keys, writes)"
    else
      d=$(rps "$DPORT" "$p" EVALSHA "${SHA[$DPORT]}" 1 item)
      r=$(rps "$RPORT" "$p" EVALSHA "${SHA[$RPORT]}" 1 item)
      label="EVALSHA 1-key GET"
    fi
    ratio=$(python3 -c "print(f'{float(\"$d\") / float(\"$r\"):.2f}x')")
    printf '%-34s %-3s %14s %14s %7s\n' "$label" "$p" "$d" "$r" "$ratio"
  done
done
