"""Shared helpers of the cohort Python tests (run with /usr/bin/python3 -m pytest)."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))


def cohort_bin():
    """The cohort command of the build the tests run against."""
    b = os.environ.get("COHORT_BUILD") or os.path.join(SRC, "build")
    path = os.path.join(b, "cohort")
    if not os.path.exists(path):
        pytest.skip("no cohort binary at %s (run make)" % path)
    return path


def uss_kib(pid="self"):
    """Private_Clean + Private_Dirty of a process, KiB, from smaps_rollup."""
    total = 0
    with open("/proc/%s/smaps_rollup" % pid) as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in ("Private_Clean", "Private_Dirty"):
                total += int(rest.split()[0])
    return total


def python_env():
    """The environment of a child interpreter: PYTHONPATH names this cohort."""
    return dict(os.environ)
