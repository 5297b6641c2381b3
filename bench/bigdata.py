"""CPython's peers of bench-bigdata (bench/bigdata.sh): 256 MiB between two processes.

Prints `key<TAB>GB/s<TAB>unit` lines, each the median of 3 timed transfers after a warm-up:
  queue_bytes   multiprocessing.Queue.put(256 MiB bytes) in a child to get() in the parent
  shm_copy      shared_memory: the child copies its bytes into the segment (a memoryview slice
                assignment), the parent copies them out into a new bytearray (numpy-free)
Times run from the sender's first instruction to the receiver's return (time.monotonic is one
clock for the machine).
"""
import multiprocessing as mp
import statistics
import time
from multiprocessing import shared_memory

SIZE = 256 << 20
REPS = 3


def queue_sender(items, go, started):
    data = bytes(range(256)) * (SIZE // 256)
    for _ in range(REPS + 1):
        go.get()
        started.put(time.monotonic())
        items.put(data)


def shm_sender(name, go, started, done):
    shm = shared_memory.SharedMemory(name=name)
    data = bytes(range(256)) * (SIZE // 256)
    for _ in range(REPS + 1):
        go.get()
        t0 = time.monotonic()
        shm.buf[:SIZE] = data
        started.put(t0)
        done.get()
    shm.close()


def through_queue():
    items, go, started = mp.Queue(), mp.Queue(), mp.Queue()
    p = mp.Process(target=queue_sender, args=(items, go, started))
    p.start()
    times = []
    for r in range(REPS + 1):
        go.put(r)
        got = items.get()
        t1 = time.monotonic()
        assert len(got) == SIZE
        t0 = started.get()
        if r > 0:
            times.append(t1 - t0)
        del got
    p.join()
    return SIZE / statistics.median(times) / 1e9


def through_shared_memory():
    shm = shared_memory.SharedMemory(create=True, size=SIZE)
    go, started, done = mp.Queue(), mp.Queue(), mp.Queue()
    p = mp.Process(target=shm_sender, args=(shm.name, go, started, done))
    p.start()
    times = []
    for r in range(REPS + 1):
        go.put(r)
        t0 = started.get()
        out = bytearray(shm.buf[:SIZE])
        t1 = time.monotonic()
        assert len(out) == SIZE
        if r > 0:
            times.append(t1 - t0)
        del out
        done.put(r)
    p.join()
    shm.close()
    shm.unlink()
    return SIZE / statistics.median(times) / 1e9


if __name__ == "__main__":
    mp.set_start_method("fork")
    print(f"queue_bytes\t{through_queue():.3f}\tGB/s")
    print(f"shm_copy\t{through_shared_memory():.3f}\tGB/s")
