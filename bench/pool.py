"""CPython peer of pool_bench.cpp: same figures, printed as name<TAB>value<TAB>unit."""
import math
import multiprocessing as mp
import sys
import time


def tiny(x):
    return x + 1


def cpu_work(seed):
    acc = float(seed)
    for i in range(600_000):  # a tenth of the C++ loop: Python is ~10-50x slower per step
        acc = math.sqrt(acc + i) * 1.0000001
    return acc


REPEATS = 5  # throughput figures are the median of this many runs, as in pool_bench.cpp


def median(values):
    return sorted(values)[len(values) // 2]


def row(name, value, unit):
    print(f"{name}\t{value:.3f}\t{unit}", flush=True)


if __name__ == "__main__":
    n_map = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    n_imap = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    n_rtt = int(sys.argv[3]) if len(sys.argv) > 3 else 2_000
    # First, in the fresh interpreter (pool_bench.cpp does the same): a fork's cost grows with the
    # memory of the process that forks.
    ms = []
    for _ in range(20):
        t0 = time.perf_counter()
        with mp.get_context("fork").Pool(2) as p:
            p.close()
            p.join()
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    row("pool2_start_stop_fork", ms[len(ms) // 2], "ms")
    with mp.get_context("fork").Pool(2) as pool:
        data = list(range(n_map))
        t0 = time.perf_counter()
        pool.map(tiny, data)
        row("map_first_call_tasks_per_s", n_map / (time.perf_counter() - t0), "tasks/s")
        rates = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            pool.map(tiny, data)
            rates.append(n_map / (time.perf_counter() - t0))
        row("map_tasks_per_s", median(rates), "tasks/s")
        rates = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            for _ in pool.imap_unordered(tiny, range(n_imap), 1):
                pass
            rates.append(n_imap / (time.perf_counter() - t0))
        row("imap_unordered_tasks_per_s", median(rates), "tasks/s")
        us = []
        for i in range(n_rtt):
            t = time.perf_counter()
            pool.apply_async(tiny, (i,)).get()
            us.append((time.perf_counter() - t) * 1e6)
        us.sort()
        row("apply_async_rtt_p50", us[len(us) // 2], "us")
        row("apply_async_rtt_p99", us[len(us) * 99 // 100], "us")
        seeds = list(range(1, 17))
        t0 = time.perf_counter()
        serial = [cpu_work(s) for s in seeds]
        s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pool.map(cpu_work, seeds, 1)
        row("cpu_speedup_process", s / (time.perf_counter() - t0), "x")
