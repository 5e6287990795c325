#!/usr/bin/python3
"""A multiprocessing Pool sharing one array and a cohort.Queue; one worker is
SIGKILLed mid-run. The others finish, and the parent is told who died.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/pool.py
"""
import multiprocessing as mp
import os
import signal
import time

import numpy as np

import cohort

WORKERS, ROWS, COLS = 4, 64, 100_000


def work(arr, q, bar, k, rows):
    bar.attach()                        # from here on, a death is seen
    q.put(("start", k, os.getpid()))
    for r in rows:
        q.put(("row", r, float(arr[r].sum())))
        time.sleep(0.05)
    try:
        bar.wait(timeout=120)
    except cohort.PeerDead as e:
        q.put(("told", os.getpid(), e.pid))


def main():
    arr = cohort.shared_array(None, (ROWS, COLS), "f8")      # one copy for all
    arr[:] = np.arange(ROWS, dtype="f8")[:, None]
    q, bar = cohort.Queue("4M"), cohort.Barrier(WORKERS + 1)
    bar.attach()
    parts = [list(range(k, ROWS, WORKERS)) for k in range(WORKERS)]
    with mp.Pool(WORKERS) as pool:
        results = [pool.apply_async(work, (arr, q, bar, k, p)) for k, p in enumerate(parts)]
        pids, msgs = {}, []
        while len(pids) < WORKERS:
            m = q.get(timeout=60)
            if m[0] == "start":
                pids[m[1]] = m[2]
            else:
                msgs.append(m)
        time.sleep(0.2)
        print("killing worker 1, pid %d, mid-run" % pids[1])
        os.kill(pids[1], signal.SIGKILL)
        try:
            bar.wait(timeout=120)
        except cohort.PeerDead as e:
            print("the barrier says: process %d died" % e.pid)
        for k, r in enumerate(results):
            if k != 1:
                r.get(timeout=120)
    while True:
        try:
            msgs.append(q.get(timeout=0.2))
        except cohort.Timeout:
            break
        except cohort.MessagesLost as e:
            print("queue: %d message(s) lost with pid %d" % (e.count, e.pid))
    rows = {m[1] for m in msgs if m[0] == "row"}
    told = {m[1] for m in msgs if m[0] == "told"}
    print("rows received: %d of %d; the other %d workers finished, each told of the death: %s"
          % (len(rows), ROWS, len(told), "yes" if len(told) == WORKERS - 1 else "no"))


if __name__ == "__main__":
    main()
