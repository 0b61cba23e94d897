#!/usr/bin/env bash
# Builds the RedisJSON module (v2.6.24, the version bench/json.sh compares
# against) from its public source, for `redis-server --loadmodule`.
#
# Needs: git, cargo, and libclang (bindgen, used by the redis-module crate;
# and its headers: on Debian `apt-get install libclang1-14
# libclang-common-14-dev`). RedisJSON depends on a git
# revision of ijson; the script checks out both repositories side by side
# and points the build at the local ijson, so only crates.io is needed
# beyond the two clones.
#
# Usage: bench/redisjson-build.sh [out-dir]   (default target/redisjson)
# Env:   REDISJSON_GIT / IJSON_GIT: repository URLs or local clones
#        (defaults: github.com/RedisJSON/RedisJSON and .../ijson).
# Prints the path of librejson.so on success; on failure says why and
# exits non-zero (bench/json.sh then compares without RedisJSON).
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-target/redisjson}
TAG=v2.6.24
IJSON_REV=e0119ac74f6c4ee918718ee122c3948b74ebeba8
REDISJSON_GIT=${REDISJSON_GIT:-https://github.com/RedisJSON/RedisJSON}
IJSON_GIT=${IJSON_GIT:-https://github.com/RedisJSON/ijson}

fail() { echo "bench/redisjson-build.sh: $*" >&2; exit 1; }
for tool in git cargo; do
    command -v "$tool" >/dev/null || fail "$tool not found"
done
if ! ldconfig -p 2>/dev/null | grep -q 'libclang\(-[0-9]*\)\?\.so' && [[ -z "${LIBCLANG_PATH:-}" ]]; then
    fail "libclang not found (bindgen needs it: apt-get install libclang1-14 libclang-common-14-dev, or set LIBCLANG_PATH)"
fi
if [[ -z "${LIBCLANG_PATH:-}" ]]; then
    LIBCLANG_PATH=$(dirname "$(ldconfig -p | grep -o '/[^ ]*libclang\(-[0-9]*\)\?\.so[.0-9]*' | head -1)")
    export LIBCLANG_PATH
fi

mkdir -p "$OUT"
SRC="$OUT/RedisJSON"
IJ="$OUT/ijson"
[[ -d "$SRC/.git" ]] || git clone --quiet "$REDISJSON_GIT" "$SRC" || fail "cannot clone $REDISJSON_GIT"
[[ -d "$IJ/.git" ]] || git clone --quiet "$IJSON_GIT" "$IJ" || fail "cannot clone $IJSON_GIT"
git -C "$SRC" checkout --quiet --force "$TAG" || fail "tag $TAG not in $REDISJSON_GIT"
git -C "$IJ" checkout --quiet --force "$IJSON_REV" || fail "ijson revision $IJSON_REV not in $IJSON_GIT"

# Use the local ijson checkout instead of fetching the git dependency.
IJ_ABS=$(cd "$IJ" && pwd)
grep -q '^\[patch' "$SRC/Cargo.toml" || cat >>"$SRC/Cargo.toml" <<EOF

[patch."https://github.com/RedisJSON/ijson"]
ijson = { path = "$IJ_ABS" }
EOF

(cd "$SRC" && CARGO_TARGET_DIR="$PWD/target" cargo build --release -p redis_json >&2) || fail "cargo build of RedisJSON $TAG failed"
SO="$SRC/target/release/librejson.so"
[[ -f "$SO" ]] || fail "build finished without $SO"
echo "$(cd "$(dirname "$SO")" && pwd)/$(basename "$SO")"
