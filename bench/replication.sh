#!/usr/bin/env bash
# Replication benchmark: a release damselfly and redis-server 7.0 side by
# side on this machine, each primary with its replicas of the same kind
# (started with --replicaof, each waited for until its link is up):
#   - primary SET throughput at -P 16 (redis-benchmark, 50 clients, random
#     keys among RANGE, VALUE-byte values) with 0, 1 and 2 replicas: ops/s,
#     the ratio to the same server with no replica, and damselfly's ratio
#     to redis-server with as many replicas; the primary's CPU per SET, of
#     the threads serving clients and of the whole process, and what the
#     first says a primary keeps when replicas and clients have cores of
#     their own;
#   - replication lag with one replica under a steady write load of about
#     RATE SETs/s (a separate process sends a pipelined batch every 10 ms
#     and reads its replies): every 20 ms a probe writes a new value to one
#     key on the primary and reads that key on the replica until it shows
#     the value; the lag is from sending the probe's SET to seeing it on
#     the replica (p50, p99, max). The probe costs one SET per 20 ms plus
#     GETs only while it waits, so it adds little to the load measured.
#
#   bench/replication.sh       (build first: cargo build --release -p damselfly)
#
# Environment: DAMSELFLY_BIN (default target/release/damselfly), REQUESTS
# (per throughput run, default 2000000), RANGE (keys, default 1000000),
# VALUE (bytes, default 100), RATE (writes/s for the lag run, default
# 50000), SECONDS (length of the lag run, default 20). The servers, the
# replicas and the clients share this machine's cores: run it on a quiet
# machine, and read the figures as side-by-side ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in redis-server redis-cli redis-benchmark python3; do
  command -v "$tool" >/dev/null || { echo "bench/replication.sh: $tool is required" >&2; exit 1; }
done
BIN=${DAMSELFLY_BIN:-target/release/damselfly}
[ -x "$BIN" ] || { echo "bench/replication.sh: $BIN not found (cargo build --release -p damselfly)" >&2; exit 1; }
DAMSELFLY_BIN=$BIN exec python3 bench/replication.py
