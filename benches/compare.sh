#!/usr/bin/env bash
# Compare `ckptscope resolve` (the real binary, end to end, JSON to /dev/null) with
# `find ROOT -printf '%s %T@ %p\n'` on the benchmark tree, warm cache, alternating runs.
# Usage: benches/compare.sh [ROUNDS]   (generates the tree through `cargo bench` first)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
cargo bench --bench scan_resolve
root="${TMPDIR:-/tmp}/ckptscope-bench-4096x50"
bin=target/release/ckptscope
cargo build --release -q
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
ours=(); theirs=()
for _ in $(seq "$rounds"); do
  ours+=("$(ms "$bin" resolve "$root" --shared-paths "$root" --json)")
  theirs+=("$(ms find "$root" -printf '%s %T@ %p\n')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
o=$(median "${ours[@]}"); f=$(median "${theirs[@]}")
echo "binary end to end: ckptscope resolve ${o} ms, find -printf ${f} ms, ratio $(awk "BEGIN {printf \"%.2f\", $o/$f}")"
