#!/usr/bin/python3
"""A torch DataLoader (4 workers) over a few million numbers, held two ways.

    dataloader.py objects   a list of Python float objects: every item a
                            worker reads has its reference count written, so
                            each worker copies the pages it touches
                            (copy-on-write: `cohort run` reports cow_unshare)
    dataloader.py shared    the same numbers in cohort.shared_array: the
                            workers map the one segment, nothing is copied

Run it under cohort to see the difference:

    cohort run -n 1 -o rec.ndjson -- python3 examples/python/dataloader.py objects
    cohort report rec.ndjson
"""
import os
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

import cohort

ROWS, COLS = 1 << 14, 256          # 4M numbers
SECONDS = float(os.environ.get("DATALOADER_SECONDS", "6"))


class Rows(Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        # Spread the reading over SECONDS, so a watcher sees it happen.
        time.sleep(SECONDS * 4 / ROWS)
        return float(sum(self.rows[i]))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "shared"
    if mode == "objects":
        rows = [[float(i * COLS + j) for j in range(COLS)] for i in range(ROWS)]
    elif mode == "shared":
        rows = cohort.shared_array(None, (ROWS, COLS), "f8")
        rows[:] = np.arange(ROWS * COLS, dtype="f8").reshape(ROWS, COLS)
    else:
        sys.exit("usage: dataloader.py objects|shared")
    loader = DataLoader(Rows(rows), batch_size=256, num_workers=4, multiprocessing_context="fork")
    total = sum(float(b.sum()) for b in loader)
    n = ROWS * COLS
    print("%s: read %d numbers, sum %.0f (expected %.0f)" % (mode, n, total, n * (n - 1) / 2))


if __name__ == "__main__":
    main()
