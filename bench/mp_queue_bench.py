#!/usr/bin/env python3
"""CPython peers of bench/queue_bench.cpp: multiprocessing.Queue and Pipe, 64-byte items,
process -> process; Pipe ping-pong round trip.
Usage: mp_queue_bench.py queue|pipe N   -> "msgs_per_s<TAB>value<TAB>msgs/s"
       mp_queue_bench.py pingpong N     -> "rtt_p50<TAB>µs<TAB>us", "rtt_p99<TAB>µs<TAB>us"
"""
import multiprocessing as mp
import sys
import time

ITEM = b"x" * 64


def produce_queue(q, n):
    for _ in range(n + 1):
        q.put(ITEM)


def produce_pipe(conn, n):
    for _ in range(n + 1):
        conn.send(ITEM)


def echo(conn, n):
    for _ in range(n + 1000):
        conn.send(conn.recv())


def queue_throughput(n):
    q = mp.Queue()
    p = mp.Process(target=produce_queue, args=(q, n))
    p.start()
    q.get()  # the first item starts the clock: process start-up is not counted
    t0 = time.perf_counter()
    for _ in range(n):
        q.get()
    s = time.perf_counter() - t0
    p.join()
    print(f"msgs_per_s\t{n / s:.0f}\tmsgs/s")


def pipe_throughput(n):
    rx, tx = mp.Pipe(duplex=False)
    p = mp.Process(target=produce_pipe, args=(tx, n))
    p.start()
    rx.recv()
    t0 = time.perf_counter()
    for _ in range(n):
        rx.recv()
    s = time.perf_counter() - t0
    p.join()
    print(f"msgs_per_s\t{n / s:.0f}\tmsgs/s")


def pingpong(n):
    a, b = mp.Pipe()
    p = mp.Process(target=echo, args=(b, n))
    p.start()
    for _ in range(1000):
        a.send(ITEM)
        a.recv()
    us = []
    for _ in range(n):
        t0 = time.perf_counter()
        a.send(ITEM)
        a.recv()
        us.append((time.perf_counter() - t0) * 1e6)
    p.join()
    us.sort()
    print(f"rtt_p50\t{us[len(us) // 2]:.2f}\tus\nrtt_p99\t{us[len(us) * 99 // 100]:.2f}\tus")


if __name__ == "__main__":
    mp.set_start_method("fork")
    mode, n = sys.argv[1], int(sys.argv[2])
    {"queue": queue_throughput, "pipe": pipe_throughput, "pingpong": pingpong}[mode](n)
