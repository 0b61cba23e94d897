#!/usr/bin/env bash
# JSON benchmark, damselfly side by side with redis-server + RedisJSON:
#
# 1. Memory per document: fresh servers load DOCS copies of a 236-byte order
#    and of a ~1.9 KB product document (30 fields, nested arrays) with
#    JSON.SET; used_memory and RSS growth divided by DOCS. Damselfly is also
#    measured after one JSON.TYPE per key (a read) and after one
#    JSON.STRAPPEND per key (an update done on the tree), which once turned
#    every document into the tree for good.
# 2. Throughput with redis-benchmark at -P 1 and -P 16 on the order: JSON.SET
#    of the whole document, JSON.GET of a field and of the whole document,
#    JSON.SET of a field, JSON.NUMINCRBY, JSON.ARRAPPEND, then JSON.TYPE,
#    JSON.STRAPPEND, JSON.ARRINSERT, JSON.MERGE and JSON.DEL of a field
#    (which after the first time on a key deletes nothing). Each pipeline depth
#    starts from freshly loaded documents; servers alternate row by row.
#    Besides requests/s, each row reports the server's CPU time per request
#    (INFO cpu before and after), which a shared machine disturbs far less;
#    the CPU ratio is RedisJSON's CPU per request over damselfly's.
#
# RedisJSON comes from REDISJSON_SO (a librejson.so), else from
# bench/redisjson-build.sh's default output if present. Without it the
# script says so and measures damselfly alone.
#
# Usage: bench/json.sh [requests-per-row] [clients]
# Env:   PORT (damselfly, default 7399; redis-server uses PORT+1),
#        DOCS (100000), SHARDS, SKIP_BUILD=1 (use target/release/damselfly
#        or BIN), MEMORY_ONLY=1, REDISJSON_SO.
set -euo pipefail

cd "$(dirname "$0")/.."
N=${1:-100000}
CLIENTS=${2:-50}
PORT=${PORT:-7399}
RPORT=$((PORT + 1))
DOCS=${DOCS:-100000}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/release/damselfly}

for tool in redis-benchmark redis-cli redis-server awk; do
    command -v "$tool" >/dev/null || { echo "bench/json.sh: $tool not found" >&2; exit 1; }
done
if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release -p damselfly >&2
fi
SO=${REDISJSON_SO:-target/redisjson/RedisJSON/target/release/librejson.so}
if [[ ! -f "$SO" ]]; then
    echo "RedisJSON: no module at $SO (build it with bench/redisjson-build.sh or set REDISJSON_SO); damselfly only."
    SO=
fi

# The order document from the issue, and a product document (30 fields).
ORDER='{"id":"o1","user":"u42","status":"paid","items":[{"id":"001","name":"Laptop","quantity":1,"price":1799.99},{"id":"002","name":"Mouse","quantity":2,"price":25.5}],"shipping":{"city":"Berlin","zip":"10115","express":true},"total":1850.99}'
PRODUCT='{"id":"prod-48213","sku":"TRK-2291-BLK-42","name":"Trailblazer 2 waterproof hiking boot","brand":"Northfield","category":"footwear","subcategory":"hiking boots","description":"A lightweight waterproof hiking boot with a breathable membrane, a cushioned EVA midsole, a TPU heel counter and a grippy rubber outsole with 5 mm lugs for mixed terrain, wet rock and long days on the trail.","price":149.95,"currency":"EUR","list_price":179.95,"discount_pct":17,"in_stock":true,"stock":{"total":412,"warehouses":[{"id":"BER-1","qty":120},{"id":"HAM-2","qty":75},{"id":"MUC-1","qty":217}]},"rating":4.6,"review_count":1287,"tags":["hiking","waterproof","outdoor","men","boots"],"colors":["black","brown","olive"],"sizes":[39,40,41,42,43,44,45,46],"variants":[{"sku":"TRK-2291-BLK-42","color":"black","size":42,"price":149.95,"stock":31},{"sku":"TRK-2291-BRN-43","color":"brown","size":43,"price":149.95,"stock":12},{"sku":"TRK-2291-OLV-44","color":"olive","size":44,"price":139.95,"stock":0},{"sku":"TRK-2291-BLK-45","color":"black","size":45,"price":149.95,"stock":7}],"images":[{"url":"https://cdn.example.com/p/48213/1.jpg","alt":"side view","w":1200,"h":900},{"url":"https://cdn.example.com/p/48213/2.jpg","alt":"sole","w":1200,"h":900},{"url":"https://cdn.example.com/p/48213/3.jpg","alt":"front view","w":1200,"h":900}],"dimensions":{"length_cm":31.5,"width_cm":12,"height_cm":14.2},"weight_g":1180,"materials":["nubuck leather","mesh","rubber"],"care":"Brush off dirt, clean with a damp cloth, let dry away from heat.","shipping":{"free":true,"days_min":2,"days_max":4,"methods":["standard","express"]},"seller":{"id":"sel-77","name":"Northfield Outdoor GmbH","rating":4.8},"attributes":{"membrane":"NF-Dry","drop_mm":10,"toe_cap":true,"vegan":false},"related":["prod-48214","prod-48300","prod-51007","prod-51008"],"created":"2026-03-14T09:12:00Z","updated":"2026-11-30T17:45:21Z"}'

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

start() { # kind port
    if [[ $1 == damselfly ]]; then
        local args=(--port "$2" --bind 127.0.0.1 --loglevel warning --save "")
        [[ -n "${SHARDS:-}" ]] && args+=(--shards "$SHARDS")
        "$BIN" "${args[@]}" >/dev/null 2>&1 &
    else
        redis-server --port "$2" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning --loadmodule "$(cd "$(dirname "$SO")" && pwd)/$(basename "$SO")" >/dev/null 2>&1 &
    fi
    PIDS+=($!)
    for _ in $(seq 100); do
        redis-cli -p "$2" PING >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "bench/json.sh: $1 did not start on port $2" >&2
    exit 1
}

stop() { # port
    redis-cli -p "$1" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    for _ in $(seq 50); do
        redis-cli -p "$1" PING >/dev/null 2>&1 || return 0
        sleep 0.1
    done
}

info() { # port field
    redis-cli -p "$1" INFO memory | tr -d '\r' | awk -F: -v k="$2" '$1 == k { print $2 }'
}

# Loads keys json:000000000000..(DOCS-1) (redis-benchmark's __rand_int__
# padding) with `doc` through one pipe.
load() { # port doc
    awk -v n="$DOCS" -v doc="$2" 'BEGIN {
        ORS = "";
        for (i = 0; i < n; i++) {
            key = sprintf("json:%012d", i);
            printf "*4\r\n$8\r\nJSON.SET\r\n$%d\r\n%s\r\n$1\r\n$\r\n$%d\r\n%s\r\n", length(key), key, length(doc), doc;
        }
    }' | redis-cli -p "$1" --pipe >/dev/null
}

touch_all() { # port how: one JSON.TYPE (read) or JSON.STRAPPEND (write) per key
    awk -v n="$DOCS" -v how="$2" 'BEGIN {
        ORS = "";
        for (i = 0; i < n; i++) {
            key = sprintf("json:%012d", i);
            if (how == "read")
                printf "*2\r\n$9\r\nJSON.TYPE\r\n$%d\r\n%s\r\n", length(key), key;
            else
                printf "*4\r\n$14\r\nJSON.STRAPPEND\r\n$%d\r\n%s\r\n$4\r\n$.id\r\n$3\r\n\"!\"\r\n", length(key), key;
        }
    }' | redis-cli -p "$1" --pipe >/dev/null
}

mem_row() { # label kind doc [read|write]
    local port=$PORT
    [[ $2 == redisjson ]] && port=$RPORT
    start "$2" "$port"
    local u0 r0 u1 r1
    u0=$(info "$port" used_memory)
    r0=$(info "$port" used_memory_rss)
    load "$port" "$3"
    [[ -n "${4:-}" ]] && touch_all "$port" "$4"
    sleep 1
    u1=$(info "$port" used_memory)
    r1=$(info "$port" used_memory_rss)
    printf '| %-44s | %12s | %12s |\n' "$1" "$(((u1 - u0) / DOCS))" "$(((r1 - r0) / DOCS))"
    stop "$port"
}

echo "documents: order ${#ORDER} bytes, product ${#PRODUCT} bytes; $DOCS keys; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| memory per document                          | used_memory  | RSS          |"
echo "|----------------------------------------------|-------------:|-------------:|"
for d in order product; do
    doc=$ORDER
    [[ $d == product ]] && doc=$PRODUCT
    mem_row "damselfly, $d" damselfly "$doc"
    mem_row "damselfly, $d, after JSON.TYPE" damselfly "$doc" read
    mem_row "damselfly, $d, after JSON.STRAPPEND" damselfly "$doc" write
    [[ -n "$SO" ]] && mem_row "RedisJSON, $d" redisjson "$doc"
done
[[ "${MEMORY_ONLY:-}" == 1 ]] && exit 0

cpu_s() { # port: the server's user+sys CPU seconds so far
    redis-cli -p "$1" INFO cpu | tr -d '\r' | awk -F: '$1 == "used_cpu_sys" || $1 == "used_cpu_user" { s += $2 } END { printf "%.6f", s }'
}

# Prints "requests/s server-CPU-microseconds-per-request" for one row.
row() { # port pipeline command...
    local port=$1 p=$2 c0 c1 rps
    shift 2
    c0=$(cpu_s "$port")
    rps=$(redis-benchmark -p "$port" -n "$N" -c "$CLIENTS" -P "$p" -r "$DOCS" -q "$@" 2>/dev/null | tr '\r' '\n' |
        grep -oE '[0-9.]+ requests per second' | tail -1 | awk '{ printf "%d", $1 }')
    c1=$(cpu_s "$port")
    echo "$rps $(awk -v a="$c0" -v b="$c1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')"
}

NAMES=('JSON.SET key $ <order>' 'JSON.GET key $.total' 'JSON.GET key (whole)' 'JSON.SET key $.status "shipped"'
    'JSON.NUMINCRBY key $.items[0].quantity 1' 'JSON.ARRAPPEND key $.items {"id":"003"}'
    'JSON.TYPE key' 'JSON.STRAPPEND key $.status "!"' 'JSON.ARRINSERT key $.items 0 {"id":"000"}'
    'JSON.MERGE key $ {"status":"sent"}' 'JSON.DEL key $.shipping.zip')
run_row() { # i port p
    case $1 in
        0) row "$2" "$3" JSON.SET 'json:__rand_int__' '$' "$ORDER" ;;
        1) row "$2" "$3" JSON.GET 'json:__rand_int__' '$.total' ;;
        2) row "$2" "$3" JSON.GET 'json:__rand_int__' ;;
        3) row "$2" "$3" JSON.SET 'json:__rand_int__' '$.status' '"shipped"' ;;
        4) row "$2" "$3" JSON.NUMINCRBY 'json:__rand_int__' '$.items[0].quantity' 1 ;;
        5) row "$2" "$3" JSON.ARRAPPEND 'json:__rand_int__' '$.items' '{"id":"003"}' ;;
        6) row "$2" "$3" JSON.TYPE 'json:__rand_int__' ;;
        7) row "$2" "$3" JSON.STRAPPEND 'json:__rand_int__' '$.status' '"!"' ;;
        8) row "$2" "$3" JSON.ARRINSERT 'json:__rand_int__' '$.items' 0 '{"id":"000"}' ;;
        9) row "$2" "$3" JSON.MERGE 'json:__rand_int__' '$' '{"status":"sent"}' ;;
        10) row "$2" "$3" JSON.DEL 'json:__rand_int__' '$.shipping.zip' ;;
    esac
}

start damselfly "$PORT"
[[ -n "$SO" ]] && start redisjson "$RPORT"
echo
echo "throughput: $N requests per row, $CLIENTS clients, keys drawn from $DOCS; requests/s and the"
echo "server's CPU time per request (user+sys, microseconds; steadier than requests/s on a busy machine)"
echo
if [[ -n "$SO" ]]; then
    echo "| operation                                  | -P | damselfly  | CPU us | RedisJSON  | CPU us | req/s ratio | CPU ratio |"
    echo "|--------------------------------------------|---:|-----------:|-------:|-----------:|-------:|------------:|----------:|"
else
    echo "| operation                                  | -P | damselfly  | CPU us |"
    echo "|--------------------------------------------|---:|-----------:|-------:|"
fi
for p in 1 16; do
    load "$PORT" "$ORDER"
    [[ -n "$SO" ]] && load "$RPORT" "$ORDER"
    for i in "${!NAMES[@]}"; do
        read -r a ac < <(run_row "$i" "$PORT" "$p")
        if [[ -n "$SO" ]]; then
            read -r b bc < <(run_row "$i" "$RPORT" "$p")
            printf '| %-42s | %2s | %10s | %6s | %10s | %6s | %11s | %9s |\n' "${NAMES[$i]}" "$p" "$a" "$ac" "$b" "$bc" \
                "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" \
                "$(awk -v a="$ac" -v b="$bc" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')"
        else
            printf '| %-42s | %2s | %10s | %6s |\n' "${NAMES[$i]}" "$p" "$a" "$ac"
        fi
    done
done
