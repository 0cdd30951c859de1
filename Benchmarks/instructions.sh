#!/usr/bin/env bash
# Instructions per put + get on each fast path, counted by callgrind (exact and repeatable on a
# noisy machine, unlike a timing): every probe of `shm-bench instructions` runs twice, at N and
# 2N items, and the difference over N is the per-item count, free of start-up and set-up.
#   Benchmarks/instructions.sh [probe ...]     (default: all; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product shm-bench >/dev/null 2>&1 || swift build -c release --product shm-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# valgrind 3.19 cannot read the toolchain's DWARF 5: count a copy without it (symbols stay).
objcopy --strip-debug .build/release/shm-bench "$work/shm-bench"
probes=("$@")
if [ ${#probes[@]} -eq 0 ]; then
  probes=(spsc.8B spsc.64B spsc.8B.batch32 mpmc.8B connection.64B ref.spsc.8B ref.spsc.64B ref.spsc.8B.batch32 ref.mpmc.8B)
fi
count() {  # total instructions of one probe at $2 items
  valgrind --tool=callgrind --callgrind-out-file="$work/out" "$work/shm-bench" instructions --items "$2" "$1" >/dev/null 2>&1
  callgrind_annotate "$work/out" | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}
n=$((8192 * 32))
printf '%-22s %s\n' probe "instructions per put + get"
for probe in "${probes[@]}"; do
  one=$(count "$probe" "$n"); two=$(count "$probe" $((2 * n)))
  awk -v a="$one" -v b="$two" -v n="$n" -v p="$probe" 'BEGIN { printf "%-22s %.1f\n", p, (b - a) / n }'
done
