#!/usr/bin/env bash
# Live slot migration benchmark: two cluster nodes on loopback, writes
# sampled while cluster-admin moves slots between them.
#
# Scenario "bulk": node A owns all 16384 slots and holds KEYS keys (100-byte
#   values); move-slots 0-16383 A -> B. Reports keys/s, MB/s, the pause
#   cluster-admin reports, and the client write latency before (baseline),
#   during the whole move and in the cut-over window.
# Scenario "slot": SLOT_KEYS keys in one slot (hash tag {mig}); that slot is
#   moved A -> B -> A ... SLOT_MOVES times; write latency per move (the
#   issue's target: p99 write stall < 50 ms for a slot of 10,000 keys).
#
# During every move, SAMPLERS client processes (bench/migration_client.py)
# each SET existing keys of the moving slots at RATE writes/s, following
# MOVED/ASK redirects (a write's latency includes its redirects and the
# reconnect). Afterwards every key a sampler wrote must hold its last
# acknowledged value, the target must hold every key, and the source must
# drain to 0 keys.
#
# Usage: bench/migration.sh [--no-build] [--runs N] [--keys N]
#                           [--scenario bulk|slot|all]
# Env:   KEYS (1000000), SLOT_KEYS (10000), SLOT_MOVES (5), RUNS (2),
#        SAMPLERS (4), RATE (writes/s per sampler, 500; 0 = unpaced),
#        BASELINE_S (3), WINDOW_SLACK_S (0.1, cut-over window widening).
#
# Raw output per invocation: bench/out/migration-<time>/ (node logs,
# cluster-admin output with timestamps, sampler latencies, results.jsonl).
# Every process started here is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/damselfly
ADMIN=$TARGET/release/cluster-admin
HELPER=$ROOT/bench/migration_client.py

BUILD=1
SCENARIO=all
KEYS=${KEYS:-1000000}
SLOT_KEYS=${SLOT_KEYS:-10000}
SLOT_MOVES=${SLOT_MOVES:-5}
RUNS=${RUNS:-2}
SAMPLERS=${SAMPLERS:-4}
RATE=${RATE:-500}
BASELINE_S=${BASELINE_S:-3}
WINDOW_SLACK_S=${WINDOW_SLACK_S:-0.1}
TAG=mig

while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --runs) RUNS=$2; shift ;;
    --keys) KEYS=$2; shift ;;
    --scenario) SCENARIO=$2; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "bench/migration.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
case "$SCENARIO" in bulk|slot|all) ;; *) echo "bench/migration.sh: --scenario bulk|slot|all" >&2; exit 2 ;; esac

for tool in python3 redis-cli; do
  command -v "$tool" >/dev/null || { echo "bench/migration.sh: $tool is required" >&2; exit 1; }
done
if [ "$BUILD" = 1 ]; then
  cargo build --release -p damselfly -p cluster-admin >&2
fi
for b in "$BIN" "$ADMIN"; do
  [ -x "$b" ] || { echo "bench/migration.sh: $b not found (cargo build --release -p damselfly -p cluster-admin)" >&2; exit 1; }
done

OUT=$ROOT/bench/out/migration-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
WORK=$(mktemp -d)

NODE_PIDS=()
SAMPLER_PIDS=()
cleanup() {
  local p
  for p in "${SAMPLER_PIDS[@]}" "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${SAMPLER_PIDS[@]}" "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "FAILED: $*"; exit 1; }
now() { date +%s.%N; }

# A loopback port P with P and P+10000 (its gRPC port) both unused.
free_port() {
  local p i
  for i in $(seq 200); do
    p=$((20000 + RANDOM % 25000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
       ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null; then
      echo "$p"; return
    fi
  done
  die "no free port"
}

admin() { "$ADMIN" --seed "127.0.0.1:$PORT_A" "$@"; }
dbsize() { python3 "$HELPER" dbsize "127.0.0.1:$1"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tick_hz() { getconf CLK_TCK; }
# thread_cpu PID: "name ticks" per thread (threads of one name summed).
thread_cpu() {
  local t
  for t in /proc/"$1"/task/*; do
    awk '{ sub(/^[0-9]+ \(/, ""); name = $0; sub(/\).*/, "", name); sub(/^[^)]*\) /, ""); print name, $12 + $13 }' "$t/stat" 2>/dev/null
  done | awk '{ n[$1] += $2 } END { for (k in n) print k, n[k] }' | sort
}

# start_cluster DIR: nodes A and B (PORT_A, PORT_B, PID_A, PID_B); A owns
# every slot.
start_cluster() {
  local dir=$1 n port pid
  for n in a b; do
    # Another process may take the chosen port before the node binds it:
    # then try another one.
    local attempt up=0 data
    for attempt in 1 2 3 4 5; do
      data=$WORK/node-$n-$RANDOM$RANDOM
      mkdir -p "$data" "$dir"
      port=$(free_port)
      NO_COLOR=1 "$BIN" --port "$port" --bind 127.0.0.1 --cluster --dir "$data" --loglevel info >"$dir/node-$n.log" 2>&1 &
      pid=$!
      NODE_PIDS+=("$pid")
      for _ in $(seq 100); do
        if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then up=1; break; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      [ "$up" = 1 ] && break
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    done
    [ "$up" = 1 ] || die "node $n did not start (see $dir/node-$n.log)"
    if [ "$n" = a ]; then PORT_A=$port; PID_A=$pid; else PORT_B=$port; PID_B=$pid; fi
  done
  admin create "127.0.0.1:$PORT_B" >"$dir/create.txt" 2>&1 || die "create failed: $(cat "$dir/create.txt")"
  # create splits the slots; B's half is empty, so ownership can move alone.
  local b_slots
  b_slots=$(admin --json status | python3 -c '
import json, sys
st = json.load(sys.stdin)
m = [m for m in st["members"] if m["client_addr"].endswith(":" + sys.argv[1])][0]
print(",".join(f"{a}-{b}" for a, b in m["slots"]))' "$PORT_B")
  if [ -n "$b_slots" ]; then
    admin assign-slots "127.0.0.1:$PORT_A" "$b_slots" >>"$dir/create.txt" 2>&1 || die "assign-slots failed"
  fi
  local a_count
  a_count=$(admin --json status | python3 -c '
import json, sys
st = json.load(sys.stdin)
print([m for m in st["members"] if m["client_addr"].endswith(":" + sys.argv[1])][0]["slot_count"])' "$PORT_A")
  [ "$a_count" = 16384 ] || die "node A owns $a_count slots, not 16384"
  # The change is committed on the leader; wait until A itself applied it.
  local i
  for i in $(seq 100); do
    [ "$(python3 "$HELPER" owned "127.0.0.1:$PORT_A")" = 16384 ] && break
    [ "$i" = 100 ] && die "node A does not serve all slots 10 s after assign-slots"
    sleep 0.1
  done
  log "cluster up: A=127.0.0.1:$PORT_A B=127.0.0.1:$PORT_B (A owns all slots)"
}

stop_cluster() {
  local p
  for p in "$PID_A" "$PID_B"; do kill "$p" 2>/dev/null || true; done
  for p in "$PID_A" "$PID_B"; do wait "$p" 2>/dev/null || true; done
  NODE_PIDS=()
}

# start_samplers DIR N [TAG]
start_samplers() {
  local dir=$1 n=$2 tag=${3:-} i extra=()
  [ -n "$tag" ] && extra=(--tag "$tag")
  for i in $(seq 0 $((SAMPLERS - 1))); do
    python3 "$HELPER" sample "127.0.0.1:$PORT_A" "$i" "$dir/sampler-$i.txt" --n "$n" --of "$SAMPLERS" \
      --rate "$RATE" "${extra[@]}" 2>>"$dir/sampler.err" &
    SAMPLER_PIDS+=("$!")
  done
}

stop_samplers() {
  local p
  for p in "${SAMPLER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${SAMPLER_PIDS[@]}"; do wait "$p" || log "a sampler exited with an error (see sampler.err)"; done
  SAMPLER_PIDS=()
}

# wait_keys PORT WANT SECONDS: polls DBSIZE until it equals WANT; prints the
# seconds it took, or "timeout".
wait_keys() {
  local t0 i
  t0=$(now)
  for i in $(seq $(($3 * 10))); do
    if [ "$(dbsize "$1")" = "$2" ]; then
      python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$t0" "$(now)"
      return
    fi
    sleep 0.1
  done
  echo timeout
}

# move DIR NAME FROM_PORT TO_PORT SLOTS: one timed move-slots; the helper
# writes DIR/NAME.json (timestamps, stderr lines, the "moved" object).
move() {
  local dir=$1 name=$2 from=$3 to=$4 slots=$5
  python3 "$HELPER" move "$dir/$name.json" -- "$ADMIN" --seed "127.0.0.1:$PORT_A" --json \
    move-slots --from "127.0.0.1:$from" --to "127.0.0.1:$to" --slots "$slots" 2>"$dir/$name.stderr" ||
    die "move-slots $slots failed: $(tail -3 "$dir/$name.stderr")"
}

# The source's "migration done" log lines (pause, commit and apply times).
done_lines() { grep -h "migration done" "$@" | sed 's/\x1b\[[0-9;]*m//g' || true; }
catchup_rounds() { grep -h "catch-up round" "$@" | sed 's/\x1b\[[0-9;]*m//g' | wc -l; }

scenario_bulk() {
  local run=$1 dir=$OUT/bulk-$run
  mkdir -p "$dir"
  log "== bulk run $run: $KEYS keys, all 16384 slots A -> B"
  start_cluster "$dir"
  python3 "$HELPER" load "127.0.0.1:$PORT_A" "$KEYS" >"$dir/load.json" || die "load failed"
  local n
  n=$(dbsize "$PORT_A")
  [ "$n" = "$KEYS" ] || die "A holds $n keys after loading $KEYS"
  log "loaded $n keys into A ($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$dir/load.json") s)"
  start_samplers "$dir" "$KEYS"
  sleep "$BASELINE_S"
  local ca0 cb0 ca1 cb1 load
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  ca0=$(cpu_ticks "$PID_A"); cb0=$(cpu_ticks "$PID_B")
  thread_cpu "$PID_A" >"$WORK/ta0"; thread_cpu "$PID_B" >"$WORK/tb0"
  log "moving 0-16383 (load average $load)"
  move "$dir" move "$PORT_A" "$PORT_B" 0-16383
  ca1=$(cpu_ticks "$PID_A"); cb1=$(cpu_ticks "$PID_B")
  thread_cpu "$PID_A" >"$WORK/ta1"; thread_cpu "$PID_B" >"$WORK/tb1"
  # CPU seconds per thread name during the move (shard threads run the
  # keyspace, "cluster" threads gRPC and Raft).
  { echo "# node A (source), CPU s during the move"
    join -a2 "$WORK/ta0" "$WORK/ta1" | awk -v hz="$(tick_hz)" '{ b = NF == 3 ? $2 : 0; printf "%s %.2f\n", $1, ($NF - b) / hz }'
    echo "# node B (target)"
    join -a2 "$WORK/tb0" "$WORK/tb1" | awk -v hz="$(tick_hz)" '{ b = NF == 3 ? $2 : 0; printf "%s %.2f\n", $1, ($NF - b) / hz }'
  } >"$dir/thread-cpu.txt"
  sleep 1
  stop_samplers
  local nb drained verify
  nb=$(dbsize "$PORT_B")
  drained=$(wait_keys "$PORT_A" 0 60)
  verify=$(python3 "$HELPER" verify "127.0.0.1:$PORT_A" "$dir"/sampler-*.txt.last 2>>"$dir/verify.err" || true)
  local report
  report=$(python3 "$HELPER" report "$dir/move.json" "$dir"/sampler-*.txt --window-slack "$WINDOW_SLACK_S")
  done_lines "$dir/node-a.log" >"$dir/migration-done.txt"
  python3 - "$dir/move.json" "$run" "$KEYS" "$nb" "$drained" "$verify" "$report" "$load" \
    "$ca0" "$ca1" "$cb0" "$cb1" "$(tick_hz)" "$dir/migration-done.txt" "$(catchup_rounds "$dir/node-a.log")" <<'EOF' >>"$RESULTS"
import json, re, sys
(mv_file, run, keys, nb, drained, verify, report, load, ca0, ca1, cb0, cb1, hz, done_file, rounds) = sys.argv[1:]
mv = json.load(open(mv_file)); m = mv["moved"]; hz = float(hz)
done = open(done_file).read()
f = lambda k: (lambda r: int(r.group(1)) if r else None)(re.search(k + r"=(\d+)", done))
print(json.dumps({
    "scenario": "bulk", "run": int(run), "keys_loaded": int(keys), "keys": m["keys"], "bytes": m["bytes"],
    "seconds": m["seconds"], "keys_s": round(m["keys"] / m["seconds"]), "mb_s": round(m["bytes"] / m["seconds"] / 1e6, 1),
    "pause_ms": m["pause_ms"], "commit_ms": f("commit_ms"), "applied_ms": f("applied_ms"), "catchup_rounds": int(rounds),
    "source_log": done.strip(),
    "dbsize_b": int(nb), "a_drained_s": drained, "verify": json.loads(verify) if verify else None,
    "cpu_a_s": round((int(ca1) - int(ca0)) / hz, 1), "cpu_b_s": round((int(cb1) - int(cb0)) / hz, 1),
    "load_before": load, "latency": json.loads(report)}))
EOF
  stop_cluster
  [ "$nb" = "$KEYS" ] || log "WARNING: B holds $nb keys, expected $KEYS"
  [ "$drained" != timeout ] || log "WARNING: A still holds keys 60 s after the move"
  log "bulk run $run: $(tail -1 "$RESULTS" | python3 -c '
import json, sys
r = json.load(sys.stdin); c = r["latency"]["cutover"]
print("%s keys/s, %s MB/s, pause %s ms, cut-over p99/max %s/%s ms" % (r["keys_s"], r["mb_s"], r["pause_ms"], c["p99_ms"], c["max_ms"]))')"
}

scenario_slot() {
  local run=$1 dir=$OUT/slot-$run
  mkdir -p "$dir"
  log "== slot run $run: $SLOT_KEYS keys in slot of {$TAG}, $SLOT_MOVES moves"
  start_cluster "$dir"
  python3 "$HELPER" load "127.0.0.1:$PORT_A" "$SLOT_KEYS" --tag "$TAG" >"$dir/load.json" || die "load failed"
  local slot n
  slot=$(python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import migration_client as m; print(m.key_slot('{$TAG}'))" "$ROOT/bench")
  n=$(dbsize "$PORT_A")
  [ "$n" = "$SLOT_KEYS" ] || die "A holds $n keys after loading $SLOT_KEYS"
  start_samplers "$dir" "$SLOT_KEYS" "$TAG"
  sleep "$BASELINE_S"
  local i from to first_start="" src dst
  for i in $(seq 1 "$SLOT_MOVES"); do
    if [ $((i % 2)) = 1 ]; then from=$PORT_A; to=$PORT_B; else from=$PORT_B; to=$PORT_A; fi
    move "$dir" "move-$i" "$from" "$to" "$slot"
    [ -n "$first_start" ] || first_start=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["start"])' "$dir/move-1.json")
    sleep 1
  done
  stop_samplers
  if [ $((SLOT_MOVES % 2)) = 1 ]; then dst=$PORT_B; src=$PORT_A; else dst=$PORT_A; src=$PORT_B; fi
  local ndst drained verify
  ndst=$(dbsize "$dst")
  drained=$(wait_keys "$src" 0 30)
  verify=$(python3 "$HELPER" verify "127.0.0.1:$PORT_A" "$dir"/sampler-*.txt.last 2>>"$dir/verify.err" || true)
  for i in $(seq 1 "$SLOT_MOVES"); do
    python3 "$HELPER" report "$dir/move-$i.json" "$dir"/sampler-*.txt --baseline-until "$first_start" \
      --window-slack "$WINDOW_SLACK_S" >"$dir/report-$i.json"
  done
  local all_moves
  all_moves=$(seq 1 "$SLOT_MOVES" | sed "s|.*|$dir/move-&.json|" | paste -sd,)
  python3 "$HELPER" report "$all_moves" "$dir"/sampler-*.txt --window-slack "$WINDOW_SLACK_S" >"$dir/report-all.json"
  done_lines "$dir/node-a.log" "$dir/node-b.log" | sort >"$dir/migration-done.txt"
  python3 - "$dir" "$run" "$SLOT_MOVES" "$SLOT_KEYS" "$slot" "$ndst" "$drained" "$verify" <<'EOF' >>"$RESULTS"
import json, re, sys
d, run, moves, keys, slot, ndst, drained, verify = sys.argv[1:]
done = open(f"{d}/migration-done.txt").read().splitlines()
per = []
for i in range(1, int(moves) + 1):
    mv = json.load(open(f"{d}/move-{i}.json")); rep = json.load(open(f"{d}/report-{i}.json"))
    line = done[i - 1] if i <= len(done) else ""
    commit = re.search(r"commit_ms=(\d+)", line)
    per.append({"move": i, "keys": mv["moved"]["keys"], "seconds": mv["moved"]["seconds"], "pause_ms": mv["moved"]["pause_ms"],
                "commit_ms": int(commit.group(1)) if commit else None, "source_log": line, "latency": rep})
print(json.dumps({"scenario": "slot", "run": int(run), "slot": int(slot), "keys_loaded": int(keys), "dbsize_dst": int(ndst),
                  "src_drained_s": drained, "verify": json.loads(verify) if verify else None, "moves": per,
                  "all_moves": json.load(open(f"{d}/report-all.json"))}))
EOF
  stop_cluster
  [ "$ndst" = "$SLOT_KEYS" ] || log "WARNING: the last target holds $ndst keys, expected $SLOT_KEYS"
  log "slot run $run done"
}

log "output: $OUT (load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs)"
for run in $(seq 1 "$RUNS"); do
  case "$SCENARIO" in bulk|all) scenario_bulk "$run" ;; esac
  case "$SCENARIO" in slot|all) scenario_slot "$run" ;; esac
done

python3 - "$RESULTS" "$SAMPLERS" "$RATE" <<'EOF' | tee "$OUT/summary.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\nwrite sampler: {sys.argv[2]} connections x {sys.argv[3]} SET/s (0 = unpaced); latencies in ms, p99/max")
bulk = [r for r in rows if r["scenario"] == "bulk"]
if bulk:
    print(f"\nbulk: all 16384 slots A -> B, {bulk[0]['keys_loaded']} keys of 100 B")
    h = ("run", "keys/s", "MB/s", "secs", "pause", "commit", "base p99", "migr p99/max", "cut p99/max", "redir", "err",
         "B keys", "A->0 s", "lost", "cpu A/B s", "load")
    fmt = "{:>3} {:>8} {:>6} {:>6} {:>6} {:>6} {:>8} {:>14} {:>14} {:>5} {:>4} {:>8} {:>6} {:>5} {:>10} {:>6}"
    print(fmt.format(*h))
    for r in bulk:
        l = r["latency"]; v = r["verify"] or {}
        print(fmt.format(r["run"], r["keys_s"], r["mb_s"], r["seconds"], r["pause_ms"], r["commit_ms"] or "-",
                         l["baseline"]["p99_ms"], f"{l['migration']['p99_ms']}/{l['migration']['max_ms']}",
                         f"{l['cutover']['p99_ms']}/{l['cutover']['max_ms']}", l["migration"]["redirected"],
                         l["all"]["errors"], r["dbsize_b"], r["a_drained_s"], v.get("mismatched", "?"),
                         f"{r['cpu_a_s']}/{r['cpu_b_s']}", r["load_before"].split()[0]))
slot = [r for r in rows if r["scenario"] == "slot"]
if slot:
    print(f"\nslot: {slot[0]['keys_loaded']} keys in slot {slot[0]['slot']}, moved back and forth")
    h = ("run", "move", "keys", "secs", "pause", "commit", "base p99", "migr p99/max", "cut p99/max", "writes", "redir", "err")
    fmt = "{:>3} {:>4} {:>6} {:>6} {:>6} {:>6} {:>8} {:>14} {:>14} {:>6} {:>5} {:>4}"
    print(fmt.format(*h))
    for r in slot:
        for m in r["moves"]:
            l = m["latency"]
            print(fmt.format(r["run"], m["move"], m["keys"], m["seconds"], m["pause_ms"], m["commit_ms"] or "-",
                             l["baseline"]["p99_ms"],
                             f"{l['migration']['p99_ms']}/{l['migration']['max_ms']}",
                             f"{l['cutover']['p99_ms']}/{l['cutover']['max_ms']}", l["migration"]["writes"],
                             l["migration"]["redirected"], l["migration"]["errors"]))
        a = r["all_moves"]
        print(fmt.format(r["run"], "all", "", "", max(m["pause_ms"] for m in r["moves"]), "", a["baseline"]["p99_ms"],
                         f"{a['migration']['p99_ms']}/{a['migration']['max_ms']}",
                         f"{a['cutover']['p99_ms']}/{a['cutover']['max_ms']}", a["migration"]["writes"],
                         a["migration"]["redirected"], a["migration"]["errors"]))
        v = r["verify"] or {}
        print(f"    run {r['run']}: last target holds {r['dbsize_dst']} keys, source drained in {r['src_drained_s']} s, "
              f"{v.get('checked', '?')} sampled keys checked, {v.get('mismatched', '?')} lost writes")
EOF
log "raw output: $OUT"
