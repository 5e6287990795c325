#!/usr/bin/python3
"""A PyTorch DataLoader with two workers passing 48 MiB batches.

Each worker builds its batch and hands it to the main process through
shared memory in /dev/shm (torch's default sharing strategy). With a
/dev/shm smaller than the batches in flight, a worker's write into its
segment faults (SIGBUS): torch reports "DataLoader worker (pid N) is
killed by signal: Bus error" and the main process exits 1. Each loader
worker says "loader worker K is pid P" when it starts; the main process
says "loader_bus: loader worker pid P was killed: Bus error" on stdout.

    loader_bus.py [--mib 48] [--workers 2] [--batches 16]
"""
import argparse
import os
import re
import sys

import torch
from torch.utils.data import DataLoader, Dataset


class Big(Dataset):
    def __init__(self, n, mib):
        self.n = n
        self.elems = (mib << 20) // 4

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full((self.elems,), float(i), dtype=torch.float32)


def say_who(k):
    print(f"loader worker {k} is pid {os.getpid()}", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mib", type=int, default=48)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batches", type=int, default=16)
    a = p.parse_args()
    torch.set_num_threads(1)
    loader = DataLoader(Big(a.batches, a.mib), batch_size=None, num_workers=a.workers,
                        worker_init_fn=say_who)
    total = 0.0
    try:
        for batch in loader:
            total += float(batch[0])
    except RuntimeError as e:
        # torch names the worker that died; say it on one clean line of our own.
        # The signal is in the exception this one was raised from.
        x = e
        while x is not None:
            m = re.search(r"DataLoader worker \(pid (\d+)\) is killed by signal: (.*?)\.", str(x))
            if m:
                print(f"loader_bus: loader worker pid {m.group(1)} was killed: {m.group(2)}", flush=True)
                break
            x = x.__cause__ or x.__context__
        raise
    print(f"read {a.batches} batches of {a.mib} MiB, sum {total}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
