#!/usr/bin/python3
"""cohort.Queue and cohort.Lock against multiprocessing, side by side in one run.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_ipc.py [--rounds N]

Round trip: a 64-byte message to a child process and back (ping-pong).
Throughput: one producer sends 64-byte messages to one consumer.
Lock: acquire + release, uncontended, and two processes contending; and
`with lock: pass`.
Every way is measured once per round, the rounds interleaved so that the
machine's noise falls on all alike; each figure is the median over the
rounds with the spread (min..max), and each ratio is taken round by round.
Each lock type runs in a loop of its own (a code object of its own):
CPython specialises a call site for the types it meets, and one loop fed
both kinds of lock would be specialised for neither, as no program's is.
"""
import argparse
import multiprocessing as mp
import os
import statistics
import struct
import sys
import time
from multiprocessing import shared_memory

import cohort

MSG = b"x" * 64
CTX = mp.get_context("fork")


# ---- round trip: N ping-pongs, seconds per round trip ----

def rt_cohort(n):
    a, b = cohort.Queue(1 << 16), cohort.Queue(1 << 16)

    def echo():
        for _ in range(n):
            b.send(a.recv())
    p = CTX.Process(target=echo)
    p.start()
    a.send(MSG)
    b.recv()                      # the child is up
    t = time.perf_counter()
    for _ in range(n - 1):
        a.send(MSG)
        b.recv()
    dt = time.perf_counter() - t
    p.join()
    return dt / (n - 1)


def rt_mpqueue(n):
    a, b = CTX.Queue(), CTX.Queue()

    def echo():
        for _ in range(n):
            b.put(a.get())
    p = CTX.Process(target=echo)
    p.start()
    a.put(MSG)
    b.get()
    t = time.perf_counter()
    for _ in range(n - 1):
        a.put(MSG)
        b.get()
    dt = time.perf_counter() - t
    p.join()
    return dt / (n - 1)


def rt_pipe(n):
    x, y = CTX.Pipe()

    def echo():
        for _ in range(n):
            y.send_bytes(y.recv_bytes())
    p = CTX.Process(target=echo)
    p.start()
    x.send_bytes(MSG)
    x.recv_bytes()
    t = time.perf_counter()
    for _ in range(n - 1):
        x.send_bytes(MSG)
        x.recv_bytes()
    dt = time.perf_counter() - t
    p.join()
    return dt / (n - 1)


def rt_shm_lock(n):
    """A multiprocessing.shared_memory buffer guarded by a multiprocessing.Lock:
    a turn word and a 64-byte slot, each side polling for its turn."""
    shm = shared_memory.SharedMemory(create=True, size=128)
    lock = CTX.Lock()
    buf = shm.buf

    def turn():
        with lock:
            return buf[0]

    def put(who, data):
        with lock:
            buf[8:8 + len(data)] = data
            buf[0] = who

    def echo():
        for _ in range(n):
            while turn() != 1:
                pass
            with lock:
                data = bytes(buf[8:72])
            put(2, data)
    p = CTX.Process(target=echo)
    p.start()
    put(1, MSG)
    while turn() != 2:
        pass
    t = time.perf_counter()
    for _ in range(n - 1):
        put(1, MSG)
        while turn() != 2:
            pass
    dt = time.perf_counter() - t
    p.join()
    del buf
    shm.close()
    shm.unlink()
    return dt / (n - 1)


# ---- throughput: messages per second, one producer, one consumer ----

def tp_cohort(n):
    q = cohort.Queue(1 << 20)

    def produce():
        for _ in range(n):
            q.send(MSG)
    t = time.perf_counter()
    p = CTX.Process(target=produce)
    p.start()
    for _ in range(n):
        q.recv()
    dt = time.perf_counter() - t
    p.join()
    return n / dt


def tp_mpqueue(n):
    q = CTX.Queue()

    def produce():
        for _ in range(n):
            q.put(MSG)
    t = time.perf_counter()
    p = CTX.Process(target=produce)
    p.start()
    for _ in range(n):
        q.get()
    dt = time.perf_counter() - t
    p.join()
    return n / dt


def tp_pipe(n):
    x, y = CTX.Pipe(duplex=False)

    def produce():
        for _ in range(n):
            y.send_bytes(MSG)
    t = time.perf_counter()
    p = CTX.Process(target=produce)
    p.start()
    for _ in range(n):
        x.recv_bytes()
    dt = time.perf_counter() - t
    p.join()
    return n / dt


# ---- locks: seconds per acquire + release ----

LOCK_LOOPS = """
def acquire_release(lock, n, perf_counter):
    t = perf_counter()
    for _ in range(n):
        lock.acquire()
        lock.release()
    return (perf_counter() - t) / n


def with_lock(lock, n, perf_counter):
    t = perf_counter()
    for _ in range(n):
        with lock:
            pass
    return (perf_counter() - t) / n
"""


def own_loop(name):
    """A fresh copy of loop `name`, with a code object no other way shares."""
    ns = {}
    exec(LOCK_LOOPS, ns)
    return ns[name]


def uncontended(make, loop, n):
    return loop(make(), n, time.perf_counter)


def contended(make, loop, n):
    """Two processes taking the lock in turn; the time of this one, from when
    both are looping."""
    lock = make()
    r, w = os.pipe()

    def other():
        os.write(w, b"x")
        loop(lock, n, time.perf_counter)
    p = CTX.Process(target=other)
    p.start()
    os.read(r, 1)
    dt = loop(lock, n, time.perf_counter)
    p.join()
    os.close(r)
    os.close(w)
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=5000)
    args = ap.parse_args()
    n = args.n
    ways = [
        ("round trip", "cohort.Queue", lambda: rt_cohort(n), "us"),
        ("round trip", "multiprocessing.Queue", lambda: rt_mpqueue(n // 5), "us"),
        ("round trip", "multiprocessing.Pipe", lambda: rt_pipe(n), "us"),
        ("round trip", "shared_memory + Lock", lambda: rt_shm_lock(n // 5), "us"),
        ("throughput", "cohort.Queue", lambda: tp_cohort(n * 10), "msg/s"),
        ("throughput", "multiprocessing.Queue", lambda: tp_mpqueue(n * 10), "msg/s"),
        ("throughput", "multiprocessing.Pipe", lambda: tp_pipe(n * 10), "msg/s"),
    ]
    for g, run, name, count in (("lock", uncontended, "acquire_release", n * 20),
                                ("lock, 2 processes", contended, "acquire_release", n * 4),
                                ("with lock", uncontended, "with_lock", n * 20)):
        for w, make in (("cohort.Lock", cohort.Lock), ("multiprocessing.Lock", CTX.Lock)):
            loop = own_loop(name)
            ways.append((g, w, lambda run=run, make=make, loop=loop, count=count: run(make, loop, count), "us"))
    res = {(g, w): [] for g, w, _, _ in ways}
    for _ in range(args.rounds):
        for g, w, f, _ in ways:
            res[(g, w)].append(f())
    la = os.getloadavg()
    print("# %s, %d CPUs, Python %s, %d rounds, load %.1f %.1f %.1f; %s"
          % (os.uname().release, os.cpu_count(), sys.version.split()[0], args.rounds,
             la[0], la[1], la[2], time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())))
    print("| measure | way | median | spread (min..max) | ratio to cohort, median (min..max) |")
    print("|---|---|---|---|---|")
    for g, w, _, unit in ways:
        v = res[(g, w)]
        base = res[(g, "cohort.Queue" if "Queue" in w or "Pipe" in w or "shared" in w else "cohort.Lock")]
        if unit == "us":
            fmt = (lambda x: "%.1f ns" % (x * 1e9)) if "lock" in g else (lambda x: "%.1f us" % (x * 1e6))
            ratios = [a / b for a, b in zip(v, base)]         # how many times slower than cohort
        else:
            fmt = lambda x: "{:,.0f} msg/s".format(x)
            ratios = [b / a for a, b in zip(v, base)]         # how many times fewer per second
        print("| %s | %s | %s | %s..%s | %s |" % (
            g, w, fmt(statistics.median(v)), fmt(min(v)), fmt(max(v)),
            "1 (baseline)" if w.startswith("cohort") else "%.2f x (%.2f..%.2f)" % (
                statistics.median(ratios), min(ratios), max(ratios))))


if __name__ == "__main__":
    main()
