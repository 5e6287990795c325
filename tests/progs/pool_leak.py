#!/usr/bin/python3
"""A fork multiprocessing.Pool(4) in which one pool worker leaks.

Each task is handed to a pool worker by its index in the pool (0..3, from
the process's name, "ForkPoolWorker-N"); worker LEAKER keeps an array of
CHUNK MiB in a global list at every step, the others make the same array
and drop it. The parent only waits. This is how users run a pool: the
leak is in a process the parent did not start by itself.

    pool_leak.py [--leaker K] [--chunk MIB] [--step SECONDS] [--seconds S]

Each pool worker says "pool worker K is pid P" when it starts. A pool
whose worker is killed (the kernel's OOM killer) never gets that task
back: the script then gives up SECONDS + 20 s after the start and exits 3.
"""
import argparse
import multiprocessing as mp
import os
import sys
import time

import numpy as np

kept = []   # the leak: a global list that only grows, in one pool worker


def work(args):
    leaker, chunk_mib, step, seconds = args
    me = mp.current_process()._identity[0] - 1   # 0..3 within this pool
    print(f"pool worker {me} is pid {os.getpid()}", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        a = np.ones(chunk_mib << 20, dtype=np.uint8)   # touched: real pages
        if me == leaker:
            kept.append(a)
        del a
        time.sleep(step)
    return me, os.getpid(), len(kept)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--leaker", type=int, default=2)
    p.add_argument("--chunk", type=int, default=8)
    p.add_argument("--step", type=float, default=0.25)
    p.add_argument("--seconds", type=float, default=14.0)
    a = p.parse_args()
    ctx = mp.get_context("fork")
    with ctx.Pool(4) as pool:
        # One task per pool worker: each worker takes one and holds it to the end.
        job = pool.map_async(work, [(a.leaker, a.chunk, a.step, a.seconds)] * 4, chunksize=1)
        try:
            # A pool whose worker was killed waits for its task for ever: bounded here.
            res = job.get(timeout=a.seconds + 20)
        except mp.TimeoutError:
            print("pool_leak: a pool worker's task never came back (was it killed?)",
                  file=sys.stderr, flush=True)
            pool.terminate()
            return 3
    for me, pid, n in sorted(res):
        print(f"pool worker {me} (pid {pid}) kept {n} arrays", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
