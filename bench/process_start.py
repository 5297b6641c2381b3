"""CPython peer of process_start.cpp: Process start + join latency per start method.
Prints "METHOD_p50<TAB>µs<TAB>us" and "METHOD_p90<TAB>µs<TAB>us" lines, as process_start.cpp."""
import multiprocessing as mp
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
        print(f"{method}_p50\t{med:.1f}\tus\n{method}_p90\t{p90:.1f}\tus", flush=True)
