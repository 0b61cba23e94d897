#!/usr/bin/env bash
# Runs a damselfly cluster as local processes (the topology of
# docker-compose.yml, for machines without Docker).
#
#   deploy/local-cluster.sh up N BASEPORT   start N nodes on 127.0.0.1, client
#                                           ports BASEPORT..BASEPORT+N-1, form
#                                           the cluster, wait for cluster_state:ok
#   deploy/local-cluster.sh down            stop the nodes it started
#
# Environment: CARGO_TARGET_DIR (where binaries are built; default target/),
# DAMSELFLY_BIN_DIR (use binaries from here instead of building release ones),
# GRPC_OFFSET (gRPC port = client port + GRPC_OFFSET; default 10000),
# LOCAL_CLUSTER_DIR (state: data, logs, PIDs; default .local-cluster/),
# KEEP_DATA=1 (down keeps the data directories).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${LOCAL_CLUSTER_DIR:-$ROOT/.local-cluster}"
GRPC_OFFSET="${GRPC_OFFSET:-10000}"

die() { echo "local-cluster: $*" >&2; exit 1; }

binaries() {
  if [ -n "${DAMSELFLY_BIN_DIR:-}" ]; then
    BIN="$DAMSELFLY_BIN_DIR"
  else
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
    if [ ! -x "$BIN/damselfly" ] || [ ! -x "$BIN/cluster-admin" ]; then
      echo "building release binaries into ${CARGO_TARGET_DIR:-$ROOT/target} ..."
      (cd "$ROOT" && cargo build --release -p damselfly -p cluster-admin)
    fi
  fi
  [ -x "$BIN/damselfly" ] && [ -x "$BIN/cluster-admin" ] || die "no damselfly/cluster-admin in $BIN"
}

# One RESP command to 127.0.0.1:$1; prints the reply (first 4 KB).
resp() {
  local port=$1; shift
  local req="*$#\r\n" a
  for a in "$@"; do req+="\$${#a}\r\n$a\r\n"; done
  exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null || return 1
  printf "%b" "$req" >&3
  local out="" line
  while IFS= read -r -t 1 line <&3; do out+="$line"$'\n'; done
  exec 3>&- 3<&-
  printf "%s" "$out"
}

# Polls "$@" every 0.2 s for up to $1... bounded wait: wait_for SECONDS CMD...
wait_for() {
  local secs=$1; shift
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

node_up() { resp "$1" PING | grep -q PONG; }
node_ok() { resp "$1" CLUSTER INFO | grep -q "cluster_state:ok"; }

up() {
  local n=${1:-3} base=${2:-7001}
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "N must be a positive number"
  [[ "$base" =~ ^[0-9]+$ ]] && [ $((base + n - 1 + GRPC_OFFSET)) -le 65535 ] || die "BASEPORT + N - 1 + $GRPC_OFFSET must be <= 65535"
  [ ! -s "$STATE/pids" ] || die "already running (PIDs in $STATE/pids): run '$0 down' first"
  binaries
  mkdir -p "$STATE"
  : > "$STATE/pids"
  local i port addrs=()
  for ((i = 0; i < n; i++)); do
    port=$((base + i))
    mkdir -p "$STATE/node-$port"
    "$BIN/damselfly" --port "$port" --bind 127.0.0.1 --dir "$STATE/node-$port" \
      --cluster --cluster-grpc-port $((port + GRPC_OFFSET)) --loglevel warn \
      >"$STATE/node-$port.log" 2>&1 &
    echo "$! $port" >> "$STATE/pids"
    addrs+=("127.0.0.1:$port")
  done
  for ((i = 0; i < n; i++)); do
    port=$((base + i))
    wait_for 20 node_up "$port" || die "node on port $port did not start; see $STATE/node-$port.log"
  done
  if ! "$BIN/cluster-admin" --seed "127.0.0.1:$base" status | grep -q voter; then
    "$BIN/cluster-admin" --seed "127.0.0.1:$base" create "${addrs[@]:0:5}" >/dev/null
    for ((i = 5; i < n; i++)); do
      "$BIN/cluster-admin" --seed "127.0.0.1:$base" add-node "${addrs[$i]}" >/dev/null
    done
  fi
  for ((i = 0; i < n; i++)); do
    port=$((base + i))
    wait_for 30 node_ok "$port" || die "node on port $port did not reach cluster_state:ok"
  done
  "$BIN/cluster-admin" --seed "127.0.0.1:$base" status
  echo
  echo "cluster up: ${addrs[*]}"
  echo "try: redis-cli -c -p $base"
}

down() {
  [ -s "$STATE/pids" ] || { echo "nothing to stop"; return 0; }
  local pid port
  while read -r pid port; do
    kill "$pid" 2>/dev/null || true
  done < "$STATE/pids"
  while read -r pid port; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    echo "stopped node on port $port (pid $pid)"
  done < "$STATE/pids"
  rm -f "$STATE/pids"
  if [ "${KEEP_DATA:-0}" != 1 ]; then rm -rf "$STATE"; fi
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  *) echo "usage: $0 up N BASEPORT | down" >&2; exit 2 ;;
esac
