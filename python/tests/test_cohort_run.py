"""examples/python/dataloader.py under `cohort run`: Python objects are copied
by the workers (cow_unshare), the same numbers in cohort.shared_array are not."""
import json
import os
import subprocess
import sys

import pytest

from conftest import SRC, cohort_bin, python_env

pytest.importorskip("numpy", reason="python3-numpy is not installed")
pytest.importorskip("torch", reason="python3-torch is not installed")

EXAMPLE = os.path.join(SRC, "examples", "python", "dataloader.py")


def findings(tmp_path, mode):
    rec = str(tmp_path / ("%s.ndjson" % mode))
    r = subprocess.run([cohort_bin(), "run", "-n", "1", "-o", rec, "--", sys.executable, EXAMPLE, mode],
                       capture_output=True, env=python_env(), timeout=150)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, (out, r.stderr.decode(errors="replace")[-2000:])
    assert "%s: read" % mode in out and "sum" in out
    rep = subprocess.run([cohort_bin(), "report", "--json", rec], capture_output=True, text=True, timeout=60)
    assert rep.returncode == 0, rep.stderr
    return json.loads(rep.stdout)["diagnosis"]


def test_dataloader_over_python_objects_is_cow_unshare(tmp_path):
    kinds = [f["kind"] for f in findings(tmp_path, "objects")]
    assert "cow_unshare" in kinds, kinds


def test_dataloader_over_shared_array_is_not(tmp_path):
    d = findings(tmp_path, "shared")
    kinds = [f["kind"] for f in d]
    assert "cow_unshare" not in kinds, d
    assert not any(k in kinds for k in ("oom_kill", "bus_error", "leak")), kinds
