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


def hold_in_child(lock):
    """A child process that takes the lock and keeps it; returns its pid."""
    pid = os.fork()
    if pid == 0:
        lock.acquire()
        time.sleep(60)
        os._exit(0)
    wait_for(lambda: lock.owner() == pid)
    return pid


def test_lock_call_forms_and_errors():
    """Every way to call acquire means what it says; bad calls raise, never crash."""
    lock = cohort.Lock()
    assert lock.acquire() is True and lock.release() is None
    assert lock.acquire(False) is True and lock.release() is None
    assert lock.acquire(blocking=False) is True and lock.release() is None
    assert lock.acquire(True, 0) is True and lock.release() is None
    assert lock.acquire(timeout=0.5) is True and lock.release() is None
    assert lock.acquire(timeout=None, blocking=True) is True and lock.release() is None
    assert lock.acquire(timeout=float("inf")) is True and lock.release() is None
    with pytest.raises(TypeError):
        lock.acquire(True, None, 1)
    with pytest.raises(TypeError):
        lock.acquire(block=False)
    with pytest.raises(TypeError):
        lock.acquire(False, blocking=False)
    for bad in (-1, -0.001, float("nan")):
        with pytest.raises(ValueError):
            lock.acquire(timeout=bad)
    with pytest.raises(TypeError):
        lock.acquire(timeout="1")
    assert lock.owner() == 0                     # none of those took it

    pid = hold_in_child(lock)
    try:
        assert lock.acquire(False) is False
        assert lock.acquire(blocking=False, timeout=5) is False   # the timeout is ignored
        assert lock.acquire(timeout=0) is False
        t0 = time.monotonic()
        assert lock.acquire(timeout=0.1) is False
        assert time.monotonic() - t0 >= 0.09
        with pytest.raises(RuntimeError):
            lock.release()                       # held by the child, not by us
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with pytest.raises(cohort.OwnerDead):
        lock.acquire(False)                      # even a try takes over from the dead
    lock.release()

    # Methods made for cohort.Lock itself (CPython's fast calls need the
    # exact type), and an override in a subclass stays an override.
    assert "acquire" in vars(cohort.Lock) and "release" in vars(cohort.Lock)

    class Counting(cohort.Lock):
        def acquire(self, *a, **kw):
            self.n = getattr(self, "n", 0) + 1
            return super().acquire(*a, **kw)

    c = Counting()
    assert c.acquire() and c.n == 1
    c.release()
    with c:
        assert c.owner() == os.getpid()

    raw = cohort._cohort.Mutex.__new__(cohort._cohort.Mutex)
    for call in (raw.acquire, raw.release, raw.__enter__, raw.owner):
        with pytest.raises(ValueError):
            call()


def test_lock_is_not_reentrant():
    """The holder taking the lock again gets cohort.Error (EDEADLK), in every
    call form, and still holds it; another thread of the process waits."""
    import errno
    import threading

    lock = cohort.Lock()
    with lock:
        for again in (lambda: lock.acquire(), lambda: lock.acquire(False),
                      lambda: lock.acquire(timeout=0), lambda: lock.acquire(timeout=0.05),
                      lock.__enter__):
            with pytest.raises(cohort.Error) as e:
                again()
            assert e.value.code == -errno.EDEADLK
            assert lock.owner() == os.getpid()
        got = []
        t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.05)))
        t.start()
        t.join(30)
        assert got == [False]
    assert lock.owner() == 0


def test_lock_wait_gives_up_the_gil():
    """A thread waiting for the lock lets the others run Python code: the
    holder keeps computing and then releases it to the waiter."""
    import threading

    lock = cohort.Lock()
    lock.acquire()
    got = []

    def take():
        got.append(lock.acquire(timeout=60))
        lock.release()                           # held by this thread, not the process
    t = threading.Thread(target=take)
    t.start()
    spins, deadline = 0, time.monotonic() + 0.3
    while time.monotonic() < deadline:
        spins += 1
    lock.release()
    t.join(60)
    assert got == [True]
    assert spins > 1000
    assert lock.owner() == 0


def test_timeouts_checked_everywhere():
    """A negative or nan timeout is a ValueError for every object; 0 is a try."""
    bar, sem = cohort.Barrier(2), cohort.Semaphore(1)
    for bad in (-1, -0.5, float("nan")):
        with pytest.raises(ValueError):
            bar.wait(timeout=bad)
        with pytest.raises(ValueError):
            sem.acquire(timeout=bad)
    with pytest.raises(TypeError):
        bar._core.wait(1, 2)
    assert sem.acquire(blocking=False) is True
    assert sem.acquire(blocking=False) is False
    assert sem.acquire(timeout=0) is False
    sem.release()
    assert sem.acquire(timeout=0) is True
    sem.release()
    assert sem.value() == 1
