"""CPython peer of process_start.cpp: Process start + join latency per start method.
Prints "method<TAB>median_us<TAB>p90_us<TAB>runs" lines."""
import multiprocessing as mp
import statistics
import sys
import time


def noop():
    pass


def measure(ctx, runs):
    us = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        us.append((time.perf_counter() - t0) * 1e6)
    us.sort()
    return us[len(us) // 2], us[len(us) * 9 // 10]


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for method in ("fork", "spawn", "forkserver"):
        ctx = mp.get_context(method)
        n = runs // 4 if method == "spawn" else runs
        measure(ctx, 3)
        med, p90 = measure(ctx, n)
        print(f"{method}\t{med:.1f}\t{p90:.1f}\t{n}", flush=True)
