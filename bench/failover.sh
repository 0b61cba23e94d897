#!/usr/bin/env bash
# Failover benchmark: 3 primaries with a replica each (release build, all
# on loopback, default cluster-node-timeout). Measures the time from kill -9
# of a primary until writes to its slots succeed again (p50/p99 over KILLS
# kills, each killed node restarted empty and rejoining as a replica), and
# the write pause of a planned failover (cluster-admin failover) under a
# stream of INCRs, checking that no acknowledged INCR is lost. The driver
# is bench/failover.py (Python standard library only).
#
# Usage: bench/failover.sh [--no-build]
# Env:   KILLS (10), PLANNED (5)
#
# Node logs go to bench/out/failover-<time>/; the result is one JSON line
# on stdout. Every process started here is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/damselfly
ADMIN=$TARGET/release/cluster-admin

if [ "${1:-}" != "--no-build" ]; then
  cargo build --release -p damselfly -p cluster-admin >&2
fi
for b in "$BIN" "$ADMIN"; do
  [ -x "$b" ] || { echo "bench/failover.sh: $b not found (cargo build --release -p damselfly -p cluster-admin)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "bench/failover.sh: python3 is required" >&2; exit 1; }
OUT=$ROOT/bench/out/failover-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
python3 "$ROOT/bench/failover.py" "$BIN" "$ADMIN" "$OUT" | tee "$OUT/result.json"
