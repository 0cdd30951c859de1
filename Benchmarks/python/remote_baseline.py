"""Python's remote managers on this machine: the figures shm-bench-remote's remote.* rows are
compared against (issue 26). A BaseManager served over TCP on loopback with an authkey, in a
process of its own, and one client process (this one):
  dict.get / dict.set   a registered dict of 1,000 int keys with int values, one call each
  queue.put_get         a registered queue.Queue: one put, then one get
  queue.throughput.64B  the same queue, a producer thread putting 64-byte bytes objects and a
                        consumer thread getting them at once, each with its own proxy (its own
                        connection); items a second (not µs), from the first put to the last get
  pool.map.100k         a local multiprocessing.Pool(2).map(square, range(100_000)), default
                        chunks: ms a map (not µs), the reference of remote.pool.map.100k
  pool.apply.managed    a task queue and a result queue served by the BaseManager, one worker
                        process taking tasks from it: one put of a task, then the get of its
                        square, µs a task (Python's way to farm work out to other hosts)
Run: python3 Benchmarks/python/remote_baseline.py [runs]   (prints one JSON object)
"""
import json
import multiprocessing as mp
import queue
import statistics
import sys
import threading
import time
from multiprocessing.managers import BaseManager, DictProxy

AUTHKEY = b"shm-bench-remote"
the_dict = {}
the_queue = queue.Queue()


class Manager(BaseManager):
    pass


Manager.register("get_dict", callable=lambda: the_dict, proxytype=DictProxy)
Manager.register("get_queue", callable=lambda: the_queue)
tasks = queue.Queue()
results = queue.Queue()
Manager.register("get_tasks", callable=lambda: tasks)
Manager.register("get_results", callable=lambda: results)


def square(x):
    return x * x


def managed_worker(port):
    """Takes tasks from the manager's task queue until None, answering each with its square."""
    client = Manager(address=("127.0.0.1", port), authkey=AUTHKEY)
    client.connect()
    task_queue, result_queue = client.get_tasks(), client.get_results()
    while True:
        task = task_queue.get()
        if task is None:
            return
        result_queue.put(square(task))


def pool_map_ms(pool):
    start = time.perf_counter()
    out = pool.map(square, range(100_000))
    elapsed = time.perf_counter() - start
    assert out[-1] == 99_999 * 99_999
    return elapsed * 1e3


def serve(port_queue):
    manager = Manager(address=("127.0.0.1", 0), authkey=AUTHKEY)
    server = manager.get_server()
    port_queue.put(server.address[1])
    server.serve_forever()


def per_call_us(body, n):
    start = time.perf_counter()
    for i in range(n):
        body(i)
    return (time.perf_counter() - start) / n * 1e6


def throughput(port, n):
    """Items a second: a producer and a consumer thread at once, each with its own proxy."""
    def proxy():
        client = Manager(address=("127.0.0.1", port), authkey=AUTHKEY)
        client.connect()
        return client.get_queue()
    producer_queue, consumer_queue = proxy(), proxy()
    item = bytes(64)

    def produce():
        for _ in range(n):
            producer_queue.put(item)

    start = time.perf_counter()
    producer = threading.Thread(target=produce)
    producer.start()
    for _ in range(n):
        consumer_queue.get()
    elapsed = time.perf_counter() - start
    producer.join()
    return n / elapsed


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    ports = mp.Queue()
    server = mp.Process(target=serve, args=(ports,), daemon=True)
    server.start()
    port = ports.get(timeout=60)
    client = Manager(address=("127.0.0.1", port), authkey=AUTHKEY)
    client.connect()
    d = client.get_dict()
    q = client.get_queue()
    for k in range(1000):
        d[k] = k
    figures = {"dict.get": [], "dict.set": [], "queue.put_get": [], "queue.throughput.64B": [],
               "pool.map.100k": [], "pool.apply.managed": []}
    worker = mp.Process(target=managed_worker, args=(port,), daemon=True)
    worker.start()
    task_queue, result_queue = client.get_tasks(), client.get_results()
    pool = mp.Pool(2)
    pool.map(square, range(1000))  # the workers started
    for _ in range(runs):
        figures["pool.map.100k"].append(pool_map_ms(pool))
        figures["pool.apply.managed"].append(per_call_us(lambda i: (task_queue.put(i), result_queue.get()), 2_000))
    task_queue.put(None)
    worker.join(timeout=30)
    pool.terminate()
    for _ in range(runs):
        figures["dict.get"].append(per_call_us(lambda i: d.get(i % 1000), 5_000))
        figures["dict.set"].append(per_call_us(lambda i: d.__setitem__(i % 1000, i), 5_000))
        figures["queue.put_get"].append(per_call_us(lambda i: (q.put(i), q.get()), 2_000))
        figures["queue.throughput.64B"].append(throughput(port, 20_000))
    # SIGKILL: started by Foundation's Process from async Swift code (a Dispatch worker thread,
    # which blocks nearly every signal), this process and its children inherit SIGTERM blocked.
    server.kill()
    server.join()
    print(json.dumps({name: {"median": statistics.median(values), "min": min(values), "max": max(values),
                             "unit": "msg/s" if name.startswith("queue.throughput") else "ms" if name == "pool.map.100k" else "us"}
                      for name, values in figures.items()}))


if __name__ == "__main__":
    main()
