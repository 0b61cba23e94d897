#!/usr/bin/env bash
# JSON benchmark: throughput of JSON.SET (a ~1 KB order), JSON.GET of one
# field and of the whole document, JSON.NUMINCRBY, next to damselfly's own
# string SET/GET of the same text and INCRBY; then memory per document,
# loading 100,000 JSON documents and 100,000 strings of the same text.
#
# The comparison is against damselfly's plain strings, not redis-server:
# the redis-server on this machine has no JSON module.
#
# Usage: bench/json.sh [requests-per-row] [clients]
# Env:   PORT (default 7399), SHARDS (default: one per core), DOCS (100000),
#        SKIP_BUILD=1 to use an existing target/release/damselfly.
set -euo pipefail

cd "$(dirname "$0")/.."
N=${1:-100000}
CLIENTS=${2:-50}
PORT=${PORT:-7399}
DOCS=${DOCS:-100000}
BIN=target/release/damselfly

for tool in redis-benchmark redis-cli awk; do
    command -v "$tool" >/dev/null || { echo "bench/json.sh: $tool not found" >&2; exit 1; }
done
if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release -p damselfly >&2
fi

# A ~1 KB e-commerce order (the same document as the memory measurement in
# node/src/types/json/mod.rs).
DOC='{"id":"order:1","created":"2026-11-02T10:15:00Z","status":"paid","customer":{"id":"cust-7731","name":"Ada Lovelace","email":"ada@example.com","tier":"gold"},"shipping":{"name":"Ada Lovelace","street":"12 Analytical Row","city":"London","zip":"N1 9GU","country":"GB","method":"express"},"billing":{"same_as_shipping":true,"card":"visa","last4":"4242"},"items":[{"sku":"SKU-1001","name":"Brass gear set","quantity":1,"price":24.5,"tags":["mechanical","brass"]},{"sku":"SKU-2002","name":"Punched card pack (500)","quantity":3,"price":9.99,"tags":["paper"]},{"sku":"SKU-3003","name":"Difference engine manual","quantity":1,"price":45.0,"tags":["book","history"]}],"subtotal":99.47,"discount":{"code":"AUTUMN10","amount":9.95},"tax":17.9,"shipping_cost":6.5,"total":113.92,"currency":"GBP","channel":"web","gift_wrap":false,"loyalty_points":113,"notes":"Leave with the concierge if nobody answers.","history":[{"at":"2026-11-02T10:15:00Z","event":"created"},{"at":"2026-11-02T10:16:12Z","event":"paid"}]}'

args=(--port "$PORT" --bind 127.0.0.1 --loglevel warn --save "")
[[ -n "${SHARDS:-}" ]] && args+=(--shards "$SHARDS")
"$BIN" "${args[@]}" >/dev/null 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    redis-cli -p "$PORT" PING >/dev/null 2>&1 && break
    sleep 0.1
done
cli() { redis-cli -p "$PORT" "$@"; }

# Loads keys prefix000000000000..(DOCS-1) with the document through one pipe.
load() { # command prefix
    awk -v n="$DOCS" -v cmd="$1" -v prefix="$2" -v doc="$DOC" 'BEGIN {
        ORS = "";
        for (i = 0; i < n; i++) {
            key = sprintf("%s%012d", prefix, i); # redis-benchmark pads __rand_int__ to 12 digits
            if (cmd == "JSON.SET")
                printf "*4\r\n$8\r\nJSON.SET\r\n$%d\r\n%s\r\n$1\r\n$\r\n$%d\r\n%s\r\n", length(key), key, length(doc), doc;
            else
                printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(key), key, length(doc), doc;
        }
    }' | redis-cli -p "$PORT" --pipe >/dev/null
}

used() { cli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'; }

row() { # label, command...
    local label=$1
    shift
    local out rps p50
    out=$(redis-benchmark -p "$PORT" -n "$N" -c "$CLIENTS" -r "$DOCS" -q "$@" 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | tail -1)
    rps=$(grep -oE '[0-9.]+ requests per second' <<<"$out" | awk '{ print $1 }')
    p50=$(grep -oE 'p50=[0-9.]+' <<<"$out" | cut -d= -f2)
    printf '| %-44s | %12s | %8s |\n' "$label" "$rps" "$p50"
}

echo "document: ${#DOC} bytes; $N requests per row, $CLIENTS clients; damselfly $(cli INFO server | tr -d '\r' | awk -F: '$1 == "shards" { print $2 }') shards"
echo
echo "| operation                                    | requests/s   | p50 ms   |"
echo "|----------------------------------------------|-------------:|---------:|"
row 'JSON.SET key $ <1 KB order>' JSON.SET 'json:__rand_int__' '$' "$DOC"
row 'SET key <same 1 KB text> (string)' SET 'str:__rand_int__' "$DOC"
load JSON.SET json:
load SET str:
row 'JSON.GET key $.total (one field)' JSON.GET 'json:__rand_int__' '$.total'
row 'JSON.GET key .items[1].price (legacy path)' JSON.GET 'json:__rand_int__' '.items[1].price'
row 'JSON.GET key (whole document)' JSON.GET 'json:__rand_int__'
row 'GET key (whole 1 KB string)' GET 'str:__rand_int__'
row 'JSON.NUMINCRBY key $.items[0].quantity 1' JSON.NUMINCRBY 'json:__rand_int__' '$.items[0].quantity' 1
row 'INCRBY counter:key 1 (string counter)' INCRBY 'counter:__rand_int__' 1

cli FLUSHALL >/dev/null
base=$(used)
load JSON.SET json:
json_bytes=$(( $(used) - base ))
cli FLUSHALL >/dev/null
base=$(used)
load SET str:
str_bytes=$(( $(used) - base ))
echo
echo "| memory, $DOCS documents                      | total bytes  | per document |"
echo "|----------------------------------------------|-------------:|-------------:|"
printf '| %-44s | %12s | %12s |\n' "JSON (JSON.SET)" "$json_bytes" "$((json_bytes / DOCS))"
printf '| %-44s | %12s | %12s |\n' "string (SET, same text)" "$str_bytes" "$((str_bytes / DOCS))"
