"""Python's multiprocessing on this machine: the figures shm-bench's process.*, pool.* and
manager.* rows are compared against (issues 7 and 12).
Run: python3 Benchmarks/python/multiprocessing_baseline.py [runs] [process,pool,manager]

Each figure is measured `runs` times (default 5); the median and min-max are printed.
Workloads mirror shm-bench's: 2 workers, squaring ints; Process start + join of a no-op child;
a Manager dict of 10k int keys with 64-byte bytes values (get, set), two processes
incrementing one key under a manager Lock, appends of ints to a Manager list.
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


MANAGER_KEYS = 10_000
VALUE64 = b"Z" * 64


def manager_dict(manager):
    d = manager.dict()
    for k in range(MANAGER_KEYS):
        d[k] = VALUE64
    return d


def manager_dict_get(d, n=20_000):
    start = time.perf_counter()
    for i in range(n):
        assert len(d[(i * 7919) % MANAGER_KEYS]) == 64
    return (time.perf_counter() - start) / n * 1e9  # ns per get


def manager_dict_set(d, n=20_000):
    start = time.perf_counter()
    for i in range(n):
        d[(i * 7919) % MANAGER_KEYS] = VALUE64
    return (time.perf_counter() - start) / n * 1e9  # ns per set


def increment(d, lock, start_barrier, n):
    start_barrier.wait()
    for _ in range(n):
        with lock:
            d[1] += 1


def manager_dict_increment_2proc(manager, n=2_000):
    d = manager.dict({1: 0})
    lock = manager.Lock()
    start_barrier = mp.get_context("fork").Barrier(3)
    workers = [mp.get_context("fork").Process(target=increment, args=(d, lock, start_barrier, n)) for _ in range(2)]
    for w in workers:
        w.start()
    start_barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    assert d[1] == 2 * n
    return elapsed / (2 * n) * 1e9  # ns per increment


def manager_list_append(manager, n=20_000):
    lst = manager.list()
    start = time.perf_counter()
    for i in range(n):
        lst.append(i)
    elapsed = time.perf_counter() - start
    assert len(lst) == n
    return elapsed / n * 1e9  # ns per append


def report(name, unit, values):
    values = sorted(values)
    print(f"{name:28s} {unit:7s} median {statistics.median(values):12.1f}   min {values[0]:12.1f}   max {values[-1]:12.1f}")


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    groups = sys.argv[2].split(",") if len(sys.argv) > 2 else ["process", "pool", "manager"]
    print(f"Python {sys.version.split()[0]}, {mp.cpu_count()} CPUs, {runs} runs")
    if "process" in groups:
        report("process.fork", "ms", [process_start_join("fork", 200) for _ in range(runs)])
        report("process.spawn", "ms", [process_start_join("spawn", 10) for _ in range(runs)])
    if "pool" in groups:
        with mp.get_context("fork").Pool(2) as pool:
            pool_map(pool)  # warm-up
            report("pool.map.100k", "task/s", [pool_map(pool) for _ in range(runs)])
            report("pool.imap.chunk1", "task/s", [pool_imap_chunk1(pool) for _ in range(runs)])
            report("pool.apply", "call/s", [pool_apply(pool) for _ in range(runs)])
    if "manager" in groups:
        with mp.get_context("fork").Manager() as manager:
            d = manager_dict(manager)
            report("manager.dict.get", "ns/op", [manager_dict_get(d) for _ in range(runs)])
            report("manager.dict.set", "ns/op", [manager_dict_set(d) for _ in range(runs)])
            report("manager.dict.increment.2proc", "ns/op", [manager_dict_increment_2proc(manager) for _ in range(runs)])
            report("manager.list.append", "ns/op", [manager_list_append(manager) for _ in range(runs)])
