"""CPython peer of shared_dict_bench.cpp: Manager().dict() get and set from 2 processes, string
keys ("key0".."key9999") and int values. Prints "name<TAB>value<TAB>unit" lines (medians of runs).
Usage: shared_dict.py [ops-per-process] [runs]"""
import multiprocessing as mp
import statistics
import sys
import time

KEYS = 10000


def pick(i, worker):
    return (i * 7919 + worker * 4999) % KEYS


def do_sets(d, start, n, worker):
    keys = ["key%d" % i for i in range(KEYS)]
    start.wait()
    for i in range(n):
        d[keys[pick(i, worker)]] = i


def do_gets(d, start, n, worker):
    keys = ["key%d" % i for i in range(KEYS)]
    start.wait()
    total = 0
    for i in range(n):
        total += d[keys[pick(i, worker)]]


def two_processes(ctx, manager, body, n):
    d = manager.dict({"key%d" % i: i for i in range(KEYS)})
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=body, args=(d, start, n, w)) for w in range(2)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
    s = time.perf_counter() - t0
    assert all(p.exitcode == 0 for p in procs) and len(d) == KEYS, "a worker failed"
    return 2 * n / s


def main():
    ops = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    ctx = mp.get_context("fork")
    with ctx.Manager() as manager:
        gets = [two_processes(ctx, manager, do_gets, ops) for _ in range(runs)]
        sets = [two_processes(ctx, manager, do_sets, ops) for _ in range(runs)]
    print("dict_get\t%.0f\tops/s" % statistics.median(gets))
    print("dict_set\t%.0f\tops/s" % statistics.median(sets))


if __name__ == "__main__":
    main()
