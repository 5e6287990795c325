"""cohort.allocation(), cohort.check() and cohort.cpus() against `cohort check --json`."""
import json
import os
import subprocess
import sys

import pytest

import cohort
from conftest import cohort_bin, python_env

# Figures that move between two reads a moment apart.
MOVING = {"ram_available_bytes", "swap_free_bytes", "shm_free_bytes", "cgroup"}


def cli_check(*args):
    r = subprocess.run([cohort_bin(), "check", "--json", *args], capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


def stable(alloc):
    return {k: v for k, v in alloc.items() if k not in MOVING}


def test_allocation_matches_cli():
    a = cohort.allocation()
    cli = cli_check()["allocation"]
    assert stable(a.raw) == stable(cli)
    assert a.cpus == cli["cpus"] and a.mem_limit_source == cli["mem_limit_source"]
    assert a.mem_limit_bytes > 0 and a.ram_total_bytes >= a.mem_limit_bytes or a.mem_limit_source != "MemTotal"


@pytest.mark.parametrize("workers,mem,shm", [(4, "1G", None), (1, "1T", None), (2, "1M", "64T"), (0, None, None)])
def test_check_matches_cli(workers, mem, shm):
    v = cohort.check(workers=workers, mem_per_worker=mem, shm=shm)
    args = ["--workers", str(workers)] if workers else []
    if mem:
        args += ["--mem-per-worker", mem]
    if shm:
        args += ["--shm", shm]
    cli = cli_check(*args)
    assert v.fits == cli["fits"] and bool(v) == cli["fits"]
    assert v.workers == cli["plan"]["workers"]
    assert v.total_bytes == cli["plan"]["total_bytes"]
    assert v.mem_per_worker_bytes == cli["plan"]["mem_per_worker_bytes"]
    assert [p.kind for p in v.problems] == [p["kind"] for p in cli["problems"]]
    # The same fixes, worded for this API: workers=N where the CLI says --workers N.
    assert [p.fix for p in v.warnings] == [p["fix"].replace("--workers ", "workers=")
                                           for p in cli["warnings"]]
    assert not any("--workers" in p.fix or "per worker" in p.fix for p in v.problems + v.warnings)
    assert all(p.fatal for p in v.problems) and not any(p.fatal for p in v.warnings)
    assert stable(v.allocation.raw) == stable(cli["allocation"])


def test_check_does_not_fit_names_figures():
    v = cohort.check(workers=1, mem_per_worker="1000T")
    assert not v.fits
    kinds = {p.kind for p in v.problems}
    assert "mem_limit" in kinds or "ram" in kinds
    assert all(p.message and p.fix for p in v.problems)
    assert "does NOT fit" in str(v)


def test_check_fix_in_python_terms():
    # More workers than CPUs is a warning on any machine; a terabyte each does not fit.
    v = cohort.check(workers=cohort.cpus() + 1, mem_per_worker="1T")
    fixes = " ".join(p.fix for p in v.problems + v.warnings)
    assert "workers=" in fixes and "--workers" not in fixes
    assert any(p.kind == "cpus" and "workers=%d" % cohort.cpus() in p.fix for p in v.warnings)


def test_check_bad_input():
    with pytest.raises(ValueError, match="not a size") as e:
        cohort.check(workers=2, mem_per_worker="4Q")
    assert str(e.value).count("not a size") == 1 and "'4Q'" in str(e.value)
    with pytest.raises(ValueError, match="^'-1' is not a size: expected a number"):
        cohort.size("-1")
    with pytest.raises(ValueError):
        cohort.check(workers=-1)
    with pytest.raises(TypeError):
        cohort.check(workers=2, mem_per_worker=1.5)
    assert cohort.size("2048") == 2 << 30 and cohort.size("500M") == 500 << 20


def run_cpus(env=None, prefix=()):
    r = subprocess.run([*prefix, sys.executable, "-c", "import cohort; print(cohort.cpus())"],
                       capture_output=True, text=True, env=env or python_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    return int(r.stdout)


def test_cpus_honours_affinity():
    assert cohort.cpus() == len(os.sched_getaffinity(0))
    assert run_cpus(prefix=("taskset", "-c", "0")) == 1


def test_cpus_honours_slurm():
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one usable CPU: SLURM_CPUS_ON_NODE=1 would not lower anything")
    env = python_env()
    env.update(SLURM_JOB_ID="4242", SLURM_CPUS_ON_NODE="1", COHORT_SCONTROL="/bin/false")
    assert run_cpus(env=env) == 1
