"""CPython peer of sync_bench.cpp: multiprocessing.Value += 1 under get_lock() from 2
processes, and uncontended acquire/release of multiprocessing.Lock / threading.Lock.
Prints "name<TAB>value<TAB>unit" lines (medians of runs)."""
import multiprocessing as mp
import statistics
import sys
import threading
import time


def add(v, start, n):
    start.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def value_ops_per_s(n):
    ctx = mp.get_context("fork")
    v = ctx.Value("l", 0)
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=add, args=(v, start, n)) for _ in range(2)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
    s = time.perf_counter() - t0
    assert v.value == 2 * n, "lost updates"
    return 2 * n / s


def uncontended_ns(lock, n):
    acquire, release = lock.acquire, lock.release
    t0 = time.thread_time_ns()  # CPU time, as the C++ side: robust to a busy machine
    for _ in range(n):
        acquire()
        release()
    return (time.thread_time_ns() - t0) / n


if __name__ == "__main__":
    ops = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print(f"value_pystyle\t{statistics.median(value_ops_per_s(ops) for _ in range(runs)):.0f}\tops/s", flush=True)
    iters = 1_000_000
    print(f"lock_process\t{statistics.median(uncontended_ns(mp.Lock(), iters) for _ in range(runs)):.1f}\tns")
    print(f"lock_thread\t{statistics.median(uncontended_ns(threading.Lock(), iters) for _ in range(runs)):.1f}\tns")
    print(f"rlock_process\t{statistics.median(uncontended_ns(mp.RLock(), iters) for _ in range(runs)):.1f}\tns")
