#!/usr/bin/env python3
"""Queue benchmarks side by side, in one run: procpool Queue and Pipe, Boost.Interprocess
message_queue, CPython multiprocessing.Queue and Pipe; 64-byte items process -> process,
and a ping-pong round trip. Prints markdown tables with medians and ratios.

Usage: python3 bench/queue_bench.py [BUILD_DIR] [--runs N]   (or: bench/run.sh queue)
(BUILD_DIR defaults to ./build-bench, the release build of bench/run.sh.)
"""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout.split()
    return out


def throughput(cmd, runs):
    return statistics.median(float(run(cmd)[1]) for _ in range(runs))


def rtt(cmd, runs):
    samples = [run(cmd) for _ in range(runs)]
    return (statistics.median(float(s[2]) for s in samples), statistics.median(float(s[4]) for s in samples))


def fmt_rate(v):
    return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.0f} k/s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build-bench")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--items", type=int, default=5_000_000, help="items for the C++ throughput runs")
    ap.add_argument("--py-items", type=int, default=300_000, help="items for the CPython throughput runs")
    args = ap.parse_args()
    qb = os.path.join(args.build, "bench", "bench-queue")
    bm = os.path.join(args.build, "bench", "bench-boost-mq")
    py = [sys.executable, os.path.join(HERE, "mp_queue_bench.py")]
    n, pn = str(args.items), str(args.py_items)

    rates = {
        "procpool Queue": throughput([qb, "queue", n], args.runs),
        "procpool Pipe": throughput([qb, "pipe", n], args.runs),
        "Boost.Interprocess message_queue": throughput([bm, "throughput", n], args.runs),
        "CPython multiprocessing.Queue": throughput(py + ["queue", pn], args.runs),
        "CPython multiprocessing.Pipe": throughput(py + ["pipe", pn], args.runs),
    }
    rtts = {
        "procpool Queue pair": rtt([qb, "pingpong", "100000"], args.runs),
        "Boost message_queue pair": rtt([bm, "pingpong", "100000"], args.runs),
        "CPython Pipe": rtt(py + ["pingpong", "50000"], args.runs),
    }
    ours = rates["procpool Queue"]
    print(f"64-byte items, process -> process (median of {args.runs} runs; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f})\n")
    print("| implementation | msgs/s | procpool Queue is |")
    print("|---|---:|---:|")
    for name, v in rates.items():
        print(f"| {name} | {fmt_rate(v)} | {ours / v:.1f}× |")
    print("\nPing-pong round trip (64-byte item there and back)\n")
    print("| implementation | p50 µs | p99 µs |")
    print("|---|---:|---:|")
    for name, (p50, p99) in rtts.items():
        print(f"| {name} | {p50:.2f} | {p99:.2f} |")
    boost, cpy = rates["Boost.Interprocess message_queue"], rates["CPython multiprocessing.Queue"]
    p50 = rtts["procpool Queue pair"][0]
    print("\nTargets: Queue >= 1.5x Boost: {} ({:.1f}x); >= 50x CPython Queue: {} ({:.0f}x); "
          "round trip p50 <= 10 us: {} ({:.2f} us)".format(
              "met" if ours >= 1.5 * boost else "MISSED", ours / boost,
              "met" if ours >= 50 * cpy else "MISSED", ours / cpy,
              "met" if p50 <= 10 else "MISSED", p50))


if __name__ == "__main__":
    main()
