#!/usr/bin/env bash
# Snapshot benchmark: a release damselfly and redis-server 7.0 side by side,
# each fresh, on the same data (KEYS strings of VALUE bytes plus one sorted
# set of MEMBERS members, loaded with redis-cli --pipe):
#   - BGSAVE: seconds, file size, MB/s;
#   - SET and GET at -P 16 (redis-benchmark, 50 clients) with and without
#     BGSAVEs running back to back: ops/s and p99 latency, and their ratios;
#   - extra memory of a BGSAVE under a SET load on the same keys (damselfly:
#     peak RSS above the start; redis-server: the fork's copy-on-write size,
#     its INFO rdb_last_cow_size);
#   - start-up: seconds from spawn until the file is loaded;
#   - SET at -P 1 and -P 16 with appendonly yes, appendfsync everysec and
#     always, each as a ratio to redis-server with the same settings.
#
#   bench/persistence.sh       (build first: cargo build --release -p damselfly)
#
# Environment: DAMSELFLY_BIN (default target/release/damselfly), KEYS
# (default 1000000), VALUE (default 100), MEMBERS (default 1000000),
# REQUESTS (per throughput run, default 2000000), SAVE_ROUNDS (quiet and
# busy runs alternating, medians reported; default 3), ONLY=journal (only the
# journal rows), ROUNDS (journal rows: rounds of damselfly then
# redis-server, the median round's ratio reported; default 1). Run on a
# quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in redis-server redis-cli redis-benchmark python3; do
  command -v "$tool" >/dev/null || { echo "bench/persistence.sh: $tool is required" >&2; exit 1; }
done
BIN=${DAMSELFLY_BIN:-target/release/damselfly}
[ -x "$BIN" ] || { echo "bench/persistence.sh: $BIN not found (cargo build --release -p damselfly)" >&2; exit 1; }
DAMSELFLY_BIN=$BIN exec python3 bench/persistence.py
