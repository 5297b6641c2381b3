"""Peers of bench-cluster-pool: CPython multiprocessing.Pool(2).map on one machine, and RQ (Python's Redis job
queue) on the same Redis. Prints `key value` lines.
  cluster_pool.py mp N                  Pool(2).map of N tiny tasks: tasks/s
  cluster_pool.py rq-enqueue URL N DIR  enqueues N jobs of rq_tiny.tiny (DIR holds rq_tiny.py) on queue 'bench'
"""
import multiprocessing as mp
import sys
import time


def twice(x):
    return 2 * x


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "mp":
        n = int(sys.argv[2])
        with mp.Pool(2) as pool:
            pool.map(twice, range(100))
            t0 = time.perf_counter()
            out = pool.map(twice, range(n))
            s = time.perf_counter() - t0
        print(f"map_tasks_per_s\t{n / s:.0f}")
        sys.exit(0 if out[-1] == 2 * (n - 1) else 1)
    elif mode == "rq-enqueue":
        from redis import Redis
        from rq import Queue
        sys.path.insert(0, sys.argv[4])
        import rq_tiny
        q = Queue("bench", connection=Redis.from_url(sys.argv[2]))
        for i in range(int(sys.argv[3])):
            q.enqueue(rq_tiny.tiny, i)
