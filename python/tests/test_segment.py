"""cohort.Segment and cohort.shared_array: buffers, pickling by reference, every start method."""
import multiprocessing as mp
import os
import pickle

import pytest

import cohort

np = pytest.importorskip("numpy", reason="python3-numpy is not installed")


def test_segment_buffer_shared_with_fork():
    with cohort.Segment.create("seg-%d" % os.getpid(), 4096) as s:
        assert s.size == 4096 and os.path.exists(s.path)
        m = s.buf
        m[0:5] = b"hello"
        pid = os.fork()
        if pid == 0:
            o = cohort.Segment.open(s.name)
            o.buf[0:5] = b"HELLO"
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        assert bytes(m[0:5]) == b"HELLO"
        with pytest.raises(BufferError):
            s.close()
        m.release()
    assert not os.path.exists(s.path)


def test_segment_errors():
    with pytest.raises(ValueError):
        cohort.Segment.create("bad/name", 10)
    with pytest.raises(ValueError):
        cohort.Segment.create("zero", 0)
    with pytest.raises(FileNotFoundError):
        cohort.Segment.open("no-such-segment-%d" % os.getpid())
    s = cohort.Segment.create("dup-%d" % os.getpid(), 10)
    with pytest.raises(FileExistsError):
        cohort.Segment.create(s.name, 10)
    s.close()


def test_shared_array_pickles_as_reference():
    a = cohort.shared_array(None, (1024, 1024), "f8")
    data = pickle.dumps(a)
    assert len(data) < 1024, "an 8 MiB shared array pickled as %d bytes" % len(data)
    b = pickle.loads(data)
    b[3, 4] = 42.0
    assert a[3, 4] == 42.0
    v = pickle.loads(pickle.dumps(a[10:20, ::2]))
    v[0, 1] = 7
    assert a[10, 2] == 7
    c = pickle.loads(pickle.dumps(a + 1))  # not in the segment: a plain copy
    assert type(c) is np.ndarray and c[3, 4] == 43.0


def fill_row(args):
    arr, i = args
    arr[i, :] = i
    return os.getpid()


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_shared_array_every_start_method(method):
    a = cohort.shared_array(None, (8, 100000), "i8")
    with mp.get_context(method).Pool(2) as pool:
        pids = pool.map(fill_row, [(a, i) for i in range(8)])
    assert os.getpid() not in pids
    assert all((a[i] == i).all() for i in range(8))


def test_creator_removes_what_it_made():
    """Dropped by its creator, an object's segment file goes at once; the
    rest go at the creator's exit. Forked children never remove them."""
    import subprocess
    import sys
    job = "pytest-%d" % os.getpid()
    code = (
        "import cohort, os, gc\n"
        "l, q, b, s = cohort.Lock(), cohort.Queue(4096), cohort.Barrier(2), cohort.Semaphore(1)\n"
        "a = cohort.shared_array('kept', (1000,), 'f8')\n"
        "d = cohort.shared_array('dropped', (1000,), 'f8')\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    del d; gc.collect(); os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print('after child', sorted(n.split('.', 3)[3] for n in os.listdir('/dev/shm') if '.%s.' % os.environ['COHORT_JOB'] in n))\n"
        "del d; gc.collect()\n"
        "print('after del', sorted(n.split('.', 3)[3] for n in os.listdir('/dev/shm') if '.%s.' % os.environ['COHORT_JOB'] in n))\n")
    env = dict(os.environ, COHORT_JOB=job)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "'dropped'" in lines[0] and "'kept'" in lines[0], lines
    assert "'dropped'" not in lines[1] and "'kept'" in lines[1] and "lock-" in lines[1], lines
    left = [n for n in os.listdir("/dev/shm") if ".%s." % job in n]
    assert left == [], left


def test_bad_names_say_the_rule_and_the_fix(monkeypatch):
    # Bad name and bad scope both are EINVAL to the library; the error tells them apart.
    for bad in ("a.b", "bad name", "x" * 65, ""):
        with pytest.raises(ValueError, match=r"segment name '.*' is not valid: 1 to 64 of \[A-Za-z0-9_-\]"):
            cohort.Segment.create(bad, "1M")
        with pytest.raises(ValueError, match="segment name"):
            cohort.Segment.open(bad)
        with pytest.raises(ValueError, match="segment name"):
            cohort._cohort.Segment.unlink_name(bad)
    with pytest.raises(ValueError, match="segment name 'a.b'"):
        cohort.shared_array("a.b", (4,), "f4")
    with pytest.raises(ValueError, match=r"^job 'a b' is not a job scope: 1 to 63 of .*; pass such a name"):
        cohort.Segment.create("ok", "1M", job="a b")
    monkeypatch.setenv("COHORT_JOB", "a.b")
    with pytest.raises(ValueError, match=r"^COHORT_JOB 'a.b' is not a job scope: 1 to 63 of "
                                         r"\[A-Za-z0-9_-\]; unset it or choose such a name$"):
        cohort.shared_array("x", (4,), "f4")
    monkeypatch.setenv("COHORT_JOB", "j" * 64)
    with pytest.raises(ValueError, match="COHORT_JOB 'j+' is not a job scope"):
        cohort.Segment.create("x", "1M")
    # The longest valid name and scope still work.
    monkeypatch.setenv("COHORT_JOB", "j" * 63)
    with cohort.Segment.create("n" * 64, 4096) as s:
        assert s.name == "n" * 64
        s.unlink()
