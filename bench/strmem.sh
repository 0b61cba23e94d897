#!/usr/bin/env bash
# Memory of N string keys on a fresh server: loads exactly N keys
# `key:%012d` with 16-byte values (`v%015d`, not integers) through
# `redis-cli --pipe` and prints used_memory and VmRSS before and after,
# and the growth per key.
#
#   bench/strmem.sh SERVER [KEYS]
#
# SERVER is `redis` (redis-server from PATH) or the path of a damselfly
# binary (e.g. target/release/damselfly); KEYS defaults to 1000000. The
# generated commands are kept in $TMPDIR (strmem-KEYS.resp) for the next run.
set -euo pipefail

SERVER=${1:?usage: bench/strmem.sh redis|DAMSELFLY_BINARY [KEYS]}
KEYS=${2:-1000000}
for tool in redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "bench/strmem.sh: $tool is required" >&2; exit 1; }
done

PAYLOAD="${TMPDIR:-/tmp}/strmem-$KEYS.resp"
if [ ! -s "$PAYLOAD" ]; then
  python3 - "$KEYS" "$PAYLOAD" <<'P'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path + ".tmp", "wb", buffering=1 << 20) as f:
    for i in range(n):
        f.write(b"*3\r\n$3\r\nSET\r\n$16\r\n" + b"key:%012d" % i + b"\r\n$16\r\n" + b"v%015d" % i + b"\r\n")
import os
os.replace(path + ".tmp", path)
P
fi

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
if [ "$SERVER" = redis ]; then
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --logfile "$WORK/log" >/dev/null 2>&1 &
else
  "$SERVER" --port "$PORT" --bind 127.0.0.1 --loglevel warn --save "" --dir "$WORK" >"$WORK/log" 2>&1 &
fi
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

used() { redis-cli -p "$PORT" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'; }
rss() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$PID/status"; }

used0=$(used); rss0=$(rss)
redis-cli -p "$PORT" --pipe <"$PAYLOAD" >/dev/null
sleep 1
used1=$(used); rss1=$(rss); n=$(redis-cli -p "$PORT" dbsize | tr -d '\r')
[ "$n" = "$KEYS" ] || echo "bench/strmem.sh: DBSIZE is $n, expected $KEYS" >&2
awk -v s="$SERVER" -v n="$n" -v u0="$used0" -v u1="$used1" -v r0="$rss0" -v r1="$rss1" 'BEGIN {
  printf "%s, %d keys: used_memory %.1f MiB (%.1f B/key growth), VmRSS %.1f MiB (%.1f B/key growth; %.1f MiB empty)\n",
    s, n, u1 / 1048576, (u1 - u0) / n, r1 / 1048576, (r1 - r0) / n, r0 / 1048576 }'
