#!/usr/bin/env bash
# Runs shm-bench with both pinned CPUs kept awake: one SCHED_IDLE busy loop per CPU, which
# any runnable thread preempts at once, so no vCPU halts while a benchmark thread sleeps.
# On this kind of guest a halted vCPU costs ~38 us to wake, which hides what a parked round
# trip itself costs (rtt.floor.futex reads ~38 us idle, ~21-27 us awake).
#   Benchmarks/awake.sh [shm-bench arguments...]   e.g. rtt.queue.spsc.async.park --runs 5
# The busy loops go on the CPUs shm-bench pins to (its --cpus, default 0,1).
set -euo pipefail
cd "$(dirname "$0")/.."
cpus=0,1
args=("$@")
for ((k = 0; k < ${#args[@]}; k++)); do
  if [ "${args[$k]}" = --cpus ] && [ $((k + 1)) -lt ${#args[@]} ]; then cpus=${args[$((k + 1))]}; fi
done
swift build -c release --product shm-bench >/dev/null 2>&1 || swift build -c release --product shm-bench
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for cpu in ${cpus//,/ }; do
  taskset -c "$cpu" chrt -i 0 bash -c 'while :; do :; done' &
  pids+=($!)
done
sleep 1
.build/release/shm-bench "$@"
