"""A torch DataLoader (num_workers=4) over data in cohort.shared_array: no copies in the workers."""
import os
import sys

import pytest

import cohort
from conftest import uss_kib

np = pytest.importorskip("numpy", reason="python3-numpy is not installed")
torch = pytest.importorskip("torch", reason="python3-torch is not installed")
from torch.utils.data import DataLoader, Dataset  # noqa: E402

ROWS, COLS = 1 << 17, 1024      # 512 MiB of float32


class Rows(Dataset):
    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        # The first item of each batch also says how much private memory its worker has.
        uss = uss_kib() if i % 512 == 0 else -1
        return float(self.data[i].sum()), uss, os.getpid()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_dataloader_workers_share_the_array(method):
    data = cohort.shared_array(None, (ROWS, COLS), "f4")
    data[:] = 1.0
    nbytes = data.nbytes
    loader = DataLoader(Rows(data), batch_size=512, num_workers=4, shuffle=False,
                        multiprocessing_context=method)
    total, samples = 0.0, {}
    for sums, uss, pid in loader:
        total += float(sums.sum())
        for u, p in zip(uss.tolist(), pid.tolist()):
            if u >= 0:
                samples.setdefault(p, []).append(u)
    assert total == float(ROWS * COLS)          # every row read, each once
    assert len(samples) == 4 and os.getpid() not in samples
    limit = 0.05 * nbytes
    for pid, uss in samples.items():
        assert len(uss) >= 4, samples
        # Reading its quarter of the data added under 5% of the data to the
        # worker's private memory: the rows are the segment's pages, shared.
        grew = (max(uss) - uss[0]) * 1024
        assert grew < limit, "worker %d: USS grew %d KiB reading %d MiB" % (pid, grew >> 10, nbytes >> 20)
        if method == "fork":
            # A forked worker starts as a copy of this process: all of it is under 5%.
            assert 0 < max(uss) * 1024 < limit, "worker %d: USS %d KiB" % (pid, max(uss))


class Objects(Dataset):
    """The same kind of data as plain Python objects: lists of floats."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        uss = uss_kib() if i % 512 == 0 else -1
        return float(sum(self.rows[i])), uss, os.getpid()


def test_dataloader_over_python_objects_copies_them():
    """The contrast, what PyTorch issue 13246 is about: reading Python objects
    writes their reference counts, and every page a forked worker touches
    becomes its own copy."""
    rows = [[float(i + j) for j in range(128)] for i in range(1 << 14)]   # 2M float objects
    nbytes = sum(sys.getsizeof(r) + sum(sys.getsizeof(x) for x in r) for r in rows[:64]) * (len(rows) // 64)
    loader = DataLoader(Objects(rows), batch_size=512, num_workers=4, multiprocessing_context="fork")
    grew = {}
    for _, uss, pid in loader:
        for u, p in zip(uss.tolist(), pid.tolist()):
            if u >= 0:
                lo, hi = grew.get(p, (u, u))
                grew[p] = (min(lo, u), max(hi, u))
    assert len(grew) == 4
    # Each worker read a quarter of the objects: its private memory grew by
    # well over 5% of the data (a quarter is 25%; the bound leaves room).
    for pid, (lo, hi) in grew.items():
        assert (hi - lo) * 1024 > 0.05 * nbytes, "worker %d grew only %d KiB of %d MiB" % (pid, hi - lo, nbytes >> 20)
