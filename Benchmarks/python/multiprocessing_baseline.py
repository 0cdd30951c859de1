"""Python's multiprocessing on this machine: the figures shm-bench's process.* and pool.* rows
are compared against (issue 7). Run: python3 Benchmarks/python/multiprocessing_baseline.py [runs]

Each figure is measured `runs` times (default 5); the median and min-max are printed.
Workloads mirror shm-bench's: 2 workers, squaring ints; Process start + join of a no-op child.
"""
import multiprocessing as mp
import statistics
import sys
import time


def square(x):
    return x * x


def nothing():
    pass


def process_start_join(method, count):
    ctx = mp.get_context(method)
    start = time.perf_counter()
    for _ in range(count):
        p = ctx.Process(target=nothing)
        p.start()
        p.join()
    return (time.perf_counter() - start) / count * 1e3  # ms each


def pool_map(pool, n=100_000):
    data = list(range(n))
    start = time.perf_counter()
    result = pool.map(square, data)
    elapsed = time.perf_counter() - start
    assert result[-1] == (n - 1) ** 2
    return n / elapsed  # tasks/s


def pool_imap_chunk1(pool, n=20_000):
    start = time.perf_counter()
    total = sum(pool.imap(square, range(n), chunksize=1))
    elapsed = time.perf_counter() - start
    assert total == sum(x * x for x in range(n))
    return n / elapsed


def pool_apply(pool, n=5_000):
    start = time.perf_counter()
    for i in range(n):
        assert pool.apply(square, (i,)) == i * i
    return n / (time.perf_counter() - start)  # calls/s


def report(name, unit, values):
    values = sorted(values)
    print(f"{name:28s} {unit:7s} median {statistics.median(values):12.1f}   min {values[0]:12.1f}   max {values[-1]:12.1f}")


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"Python {sys.version.split()[0]}, {mp.cpu_count()} CPUs, {runs} runs")
    report("process.fork", "ms", [process_start_join("fork", 200) for _ in range(runs)])
    report("process.spawn", "ms", [process_start_join("spawn", 10) for _ in range(runs)])
    with mp.get_context("fork").Pool(2) as pool:
        pool_map(pool)  # warm-up
        report("pool.map.100k", "task/s", [pool_map(pool) for _ in range(runs)])
        report("pool.imap.chunk1", "task/s", [pool_imap_chunk1(pool) for _ in range(runs)])
        report("pool.apply", "call/s", [pool_apply(pool) for _ in range(runs)])
