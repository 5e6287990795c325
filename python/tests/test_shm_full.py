"""A 64 MiB /dev/shm: cohort.shared_array of 256 MiB raises at creation; plain torch dies of SIGBUS."""
import os
import signal
import subprocess
import sys

import pytest

from conftest import python_env

SMALL_SHM = "mount -t tmpfs -o size=64M tmpfs /dev/shm && exec \"$0\" \"$@\""


def in_small_shm(code):
    if os.geteuid() != 0:
        pytest.skip("mounting a 64 MiB /dev/shm in a private mount namespace needs root")
    r = subprocess.run(["unshare", "-m", "sh", "-c", SMALL_SHM, sys.executable, "-c", code],
                       capture_output=True, text=True, env=python_env(), timeout=120)
    if r.returncode != 0 and "unshare" in r.stderr and "Operation not permitted" in r.stderr:
        pytest.skip("no private mount namespace here: " + r.stderr.strip())
    return r


def test_shared_array_too_big_raises_at_creation():
    r = in_small_shm(
        "import cohort, os\n"
        "try:\n"
        "    cohort.shared_array('big', (256 << 20,), 'u1')\n"
        "except cohort.NoSpace as e:\n"
        "    print('NoSpace', e)\n"
        "    print('left', sorted(n for n in os.listdir('/dev/shm') if '.big' in n))\n"
        "a = cohort.shared_array('fits', (32 << 20,), 'u1')\n"
        "a[:] = 1\n"
        "print('fits', int(a.sum()))\n")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "NoSpace" in out and "256.0 MiB" in out and "64.0 MiB" in out, out
    assert "left []" in out, out          # nothing left behind
    assert "fits %d" % (32 << 20) in out, out


def test_plain_torch_dies_of_sigbus_where_cohort_raises():
    pytest.importorskip("torch", reason="python3-torch is not installed")
    r = in_small_shm("import torch\n"
                     "t = torch.ones(256 << 20, dtype=torch.uint8)\n"
                     "t.share_memory_()\n"
                     "print('survived')\n")
    # What cohort prevents: torch's segment is not reserved, the copy into it faults.
    assert r.returncode in (-signal.SIGBUS, 128 + signal.SIGBUS) or "survived" not in r.stdout, \
        (r.returncode, r.stdout, r.stderr)
