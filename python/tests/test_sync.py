"""cohort.Lock, Barrier and Semaphore across processes, and after a SIGKILL."""
import multiprocessing as mp
import os
import signal
import time

import pytest

import cohort


def wait_for(cond, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "condition not met in %.0f s" % seconds
        time.sleep(0.005)


def add_under_lock(lock, seg_name, n):
    seg = cohort.Segment.open(seg_name)
    m = seg.buf.cast("q")
    for _ in range(n):
        with lock:
            v = m[0]
            m[0] = v + 1
    m.release()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_lock_excludes_across_processes(method):
    lock = cohort.Lock()
    seg = cohort.Segment.create("count-%d-%s" % (os.getpid(), method), 8)
    ctx = mp.get_context(method)
    ps = [ctx.Process(target=add_under_lock, args=(lock, seg.name, 2000)) for _ in range(3)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(60)
        assert p.exitcode == 0
    m = seg.buf.cast("q")
    assert m[0] == 6000
    m.release()


def test_lock_timeout_and_owner():
    lock = cohort.Lock()
    assert lock.acquire()
    assert lock.owner() == os.getpid()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        t0 = time.monotonic()
        got = lock.acquire(timeout=0.2)
        took = time.monotonic() - t0
        os.write(w, b"%d %f" % (got, took))
        os._exit(0)
    got, took = os.read(r, 64).split()
    os.waitpid(pid, 0)
    assert got == b"0" and float(took) >= 0.15
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    with pytest.raises(ValueError):
        lock.acquire(timeout=-1)


def test_lock_survives_a_killed_holder():
    lock = cohort.Lock()
    pid = os.fork()
    if pid == 0:
        lock.acquire()
        time.sleep(60)
        os._exit(0)
    wait_for(lambda: lock.owner() == pid)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with pytest.raises(cohort.OwnerDead) as e:
        lock.acquire(timeout=10)
    assert e.value.pid == pid and str(pid) in str(e.value)
    lock.release()                       # held after OwnerDead, and usable again
    with lock:
        assert lock.owner() == os.getpid()


def test_barrier_names_the_dead_member():
    bar = cohort.Barrier(3)
    pid = os.fork()
    if pid == 0:
        bar.attach()
        time.sleep(60)
        os._exit(0)
    ok = os.fork()
    if ok == 0:
        try:
            bar.wait(timeout=30)
            os._exit(1)
        except cohort.PeerDead as e:
            os._exit(2 if e.pid == pid else 3)
    time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with pytest.raises(cohort.PeerDead) as e:
        bar.wait(timeout=30)
    assert e.value.pid == pid
    assert os.WEXITSTATUS(os.waitpid(ok, 0)[1]) == 2


def test_barrier_round_and_timeout():
    bar = cohort.Barrier(2)
    pid = os.fork()
    if pid == 0:
        os._exit(10 + bar.wait(timeout=30))
    mine = bar.wait(timeout=30)
    theirs = os.WEXITSTATUS(os.waitpid(pid, 0)[1]) - 10
    assert sorted([mine, theirs]) == [0, 1]
    lonely = cohort.Barrier(2)
    with pytest.raises(cohort.Timeout):
        lonely.wait(timeout=0.1)
    with pytest.raises(ValueError):
        cohort.Barrier(0)


def test_semaphore_dead_holder_reaped():
    sem = cohort.Semaphore(1)
    pid = os.fork()
    if pid == 0:
        sem.acquire()
        time.sleep(60)
        os._exit(0)
    wait_for(lambda: sem.value() == 0)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with pytest.raises(cohort.PeerDead) as e:
        sem.acquire(timeout=10)
    assert e.value.pid == pid
    assert sem.reap() == (1, 1)
    with sem:
        assert sem.value() == 0
    assert sem.value() == 1
    assert sem.acquire(timeout=0.05) and not sem.acquire(timeout=0.05)
