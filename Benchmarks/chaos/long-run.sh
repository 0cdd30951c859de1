#!/usr/bin/env bash
# The long chaos run: every chaos test (MPMC queue producers and consumers, SPSC producer and
# consumer, Pipe sender and receiver, wide Value writer, Lock holder, shared dictionary and
# list writer) with KILLS SIGKILLs each,
# at random instants, checking the same invariants as the CI-sized run. Prints each test's
# figures (kills, items, repairs, abandoned) and how long it took.
#   Benchmarks/chaos/long-run.sh [KILLS]     (default 10000)
set -euo pipefail
cd "$(dirname "$0")/../.."
kills=${1:-10000}
swift build --build-tests
start=$(date +%s)
SHMIPC_CHAOS_KILLS=$kills swift test --skip-build \
  --filter 'QueueChaosTests|SPSCChaosTests|PipeChaosTests|ValueChaosTests|LockChaosTests|aWriterKilledAtRandomInstants' 2>&1 \
  | grep -E 'chaos|kill test|passed after|failed|recorded an issue'
echo "long chaos run: $kills kills per test, $(( $(date +%s) - start )) s"
