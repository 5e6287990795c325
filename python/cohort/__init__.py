"""cohort: fit checks, crash-safe shared arrays, locks and queues for Python workers.

A Python face of libcohort (see docs/python.md):

    import cohort
    print(cohort.check(workers=4, mem_per_worker="1G"))   # will 4 workers of 1 GiB fit?
    cohort.cpus()                                         # affinity, cgroup and SLURM honoured
    a = cohort.shared_array("data", (1000, 1000), "f4")   # a NumPy array in /dev/shm, zero copy
    lock, q = cohort.Lock(), cohort.Queue()               # survive a worker's SIGKILL

Shared objects live in cohort segments (/dev/shm/cohort.<uid>.<job>.<name>),
pickle as references (a worker of fork, spawn or forkserver, or a DataLoader
worker, reopens the same memory by name) and are removed when the process
that created them closes them or exits.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import weakref
from dataclasses import dataclass, field
from typing import Any, Optional

from . import _cohort
from ._cohort import (BadSegment, Corrupt, Error, NoSpace, OwnerDead, PeerDead,
                      Segment as _Segment, Timeout)

__all__ = [
    "Allocation", "Verdict", "Problem", "allocation", "check", "cpus", "size",
    "Segment", "shared_array", "SharedArray", "Lock", "Barrier", "Semaphore", "Queue",
    "Error", "NoSpace", "PeerDead", "OwnerDead", "Timeout", "Corrupt", "BadSegment",
    "MessagesLost",
]

__version__ = _cohort.version


class MessagesLost(Error):
    """Messages were lost with a process that died in the middle of sending
    or receiving them. ``count`` is how many since this handle last looked,
    ``pid`` the last dead producer or consumer (0 if not known)."""

    def __init__(self, message: str, count: int = 0, pid: int = 0):
        super().__init__(message)
        self.count = count
        self.pid = pid
        self.code = -10011


_cohort.set_messages_lost(MessagesLost)


# A job scope every process of this program shares, also those started
# with exec (spawn, forkserver): without COHORT_JOB or SLURM_JOB_ID,
# libcohort names a local job after the first process, which a spawned
# interpreter would not know. Children inherit the environment.
if not os.environ.get("COHORT_JOB") and not os.environ.get("SLURM_JOB_ID"):
    os.environ["COHORT_JOB"] = "local-%d" % os.getpid()


def size(value: "int | str | None") -> int:
    """Bytes of a size: an int, or text as SLURM writes it ("500M", "4G", "2048" = 2 GiB)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise TypeError("a size is an int or a string such as '4G', not a bool")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative: %d" % value)
        if value >= 1 << 64:
            raise ValueError("a size above 2^64-1 bytes: %d" % value)
        return value
    if isinstance(value, str):
        return _cohort.size_parse(value)
    raise TypeError("a size is an int or a string such as '4G', not %s" % type(value).__name__)


def _fmt(n: Optional[int]) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024
    return str(n)


@dataclass(frozen=True)
class Allocation:
    """What this job may really use on this node: the ``allocation`` object of
    ``cohort check --json``, field for field (sizes in bytes, None when unknown)."""
    cpus: int
    cpus_source: str
    mem_limit_bytes: int
    mem_limit_source: str
    mem_limit_where: str
    task_share_bytes: Optional[int]
    cgroup: Optional[dict]
    ram_total_bytes: int
    ram_available_bytes: int
    swap_total_bytes: int
    swap_free_bytes: int
    shm_size_bytes: Optional[int]
    shm_free_bytes: Optional[int]
    slurm: Optional[dict]
    raw: dict = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def _from(cls, d: dict) -> "Allocation":
        return cls(raw=d, **{k: d.get(k) for k in cls.__dataclass_fields__ if k != "raw"})

    def __str__(self) -> str:
        where = "SLURM job %s" % self.slurm["job_id"] if self.slurm else "this machine"
        return ("Allocation (%s): %d CPUs (%s), memory limit %s (%s: %s), /dev/shm %s free of %s"
                % (where, self.cpus, self.cpus_source, _fmt(self.mem_limit_bytes),
                   self.mem_limit_source, self.mem_limit_where, _fmt(self.shm_free_bytes),
                   _fmt(self.shm_size_bytes)))


@dataclass(frozen=True)
class Problem:
    """Something wrong with a plan: its kind ("mem_limit", "shm", "ram", "cpus"),
    a message with the figures, and a fix. ``fatal`` problems mean it does not fit."""
    kind: str
    message: str
    fix: str
    fatal: bool

    def __str__(self) -> str:
        return "%s %s\n      fix: %s" % ("problem:" if self.fatal else "warning:", self.message, self.fix)


@dataclass(frozen=True)
class Verdict:
    """The verdict of ``cohort check``: the same figures as its ``--json``."""
    allocation: Allocation
    workers: int
    mem_per_worker_bytes: Optional[int]
    shm_bytes: int
    total_bytes: int
    per_worker_fit_bytes: int
    fits: bool
    problems: tuple
    warnings: tuple
    raw: dict = field(repr=False, compare=False, default_factory=dict)

    def __bool__(self) -> bool:
        return self.fits

    def __str__(self) -> str:
        lines = [str(self.allocation),
                 "Plan: %d workers%s%s = %s" % (
                     self.workers,
                     " x %s" % _fmt(self.mem_per_worker_bytes) if self.mem_per_worker_bytes else "",
                     " + %s of shared segments" % _fmt(self.shm_bytes) if self.shm_bytes else "",
                     _fmt(self.total_bytes)),
                 "Verdict: %s" % ("fits" if self.fits else "does NOT fit")]
        lines += ["  " + str(p) for p in self.problems + self.warnings]
        return "\n".join(lines)


def allocation() -> Allocation:
    """The allocation of this process: CPUs, memory limit and where it comes
    from, cgroup, RAM, swap, /dev/shm, SLURM ids (as ``cohort check --json``)."""
    return Allocation._from(json.loads(_cohort.allocation_json()))


def _py_fix(fix: str) -> str:
    """A verdict's fix in this API's terms: the library words it for the
    command line (``--workers 2``), here it is ``check(workers=2)`` and
    ``mem_per_worker=...``. SLURM's own options (--mem, -c) stay as they are."""
    fix = re.sub(r"--workers (\d+)", r"workers=\1", fix)
    return re.sub(r"at most (.+?) per worker", r"mem_per_worker of at most \1", fix)


def check(workers: int = 0, mem_per_worker: "int | str | None" = None,
          shm: "int | str | None" = None) -> Verdict:
    """Will ``workers`` processes of ``mem_per_worker`` each, plus ``shm`` bytes
    of shared segments, fit this allocation? The verdict has the figures,
    every problem with a fix, and is true when the plan fits. ``workers`` 0
    means one per usable CPU; sizes are ints or text ("1G", "500M")."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0 or workers > 100000:
        raise ValueError("workers must be an int from 0 to 100000, not %r" % (workers,))
    d = json.loads(_cohort.check_json(workers, size(mem_per_worker), size(shm)))
    p = d["plan"]
    return Verdict(
        allocation=Allocation._from(d["allocation"]), workers=p["workers"],
        mem_per_worker_bytes=p["mem_per_worker_bytes"], shm_bytes=p["shm_bytes"],
        total_bytes=p["total_bytes"], per_worker_fit_bytes=p["per_worker_fit_bytes"],
        fits=d["fits"],
        problems=tuple(Problem(x["kind"], x["message"], _py_fix(x["fix"]), True) for x in d["problems"]),
        warnings=tuple(Problem(x["kind"], x["message"], _py_fix(x["fix"]), False) for x in d["warnings"]),
        raw=d)


def cpus() -> int:
    """CPUs this job's workers may use: the affinity mask, the cgroup's CPUs
    and SLURM_CPUS_ON_NODE honoured (``os.cpu_count()`` counts the machine)."""
    return allocation().cpus


# ---- segments ----

_owned: "weakref.WeakSet" = weakref.WeakSet()


class Segment:
    """A cohort shared memory segment mapped in this process: a writable
    buffer (``memoryview(seg)``) of ``size`` bytes.

    ``Segment.create`` checks the size against /dev/shm's free space and the
    job's memory headroom and reserves every page: a segment that does not
    fit raises ``NoSpace`` with the figures, never a SIGBUS later. The
    creating process removes the file when it calls ``unlink()`` or
    ``close()`` with ``unlink=True`` or exits; other processes only unmap."""

    def __init__(self, core: _Segment, owner: bool):
        self._core = core
        self._owner_pid = os.getpid() if owner else 0
        if owner:
            _owned.add(self)

    @classmethod
    def create(cls, name: str, size_: "int | str", *, job: Optional[str] = None,
               dir: Optional[str] = None) -> "Segment":
        """Create and map segment ``name`` of ``size_`` bytes (zero-filled)."""
        return cls(_Segment.create(name, size(size_), job, dir), True)

    @classmethod
    def open(cls, name: str, *, job: Optional[str] = None, dir: Optional[str] = None) -> "Segment":
        """Map the existing segment ``name`` of this user and job."""
        return cls(_Segment.open(name, job, dir), False)

    name = property(lambda self: self._core.name)
    job = property(lambda self: self._core.job)
    size = property(lambda self: self._core.size)
    path = property(lambda self: self._core.path)
    address = property(lambda self: self._core.address)
    closed = property(lambda self: self._core.closed)

    def __buffer__(self, flags):  # Python 3.12+
        return memoryview(self._core)

    @property
    def buf(self) -> memoryview:
        """A writable memoryview of the data."""
        return memoryview(self._core)

    def unlink(self) -> None:
        """Remove the segment's file now (mappings stay valid until closed)."""
        try:
            _Segment.unlink_name(self._core.name, self._core.job)
        except FileNotFoundError:
            pass
        self._owner_pid = 0

    def close(self) -> None:
        """Unmap (refused while arrays or objects still use it); the creator also removes the file."""
        if self._owner_pid == os.getpid():
            self.unlink()
        if not self._core.closed:
            self._core.close()

    def __enter__(self) -> "Segment":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        # The creator dropped its last reference: the file goes (mappings
        # stay valid); forked children, which inherit this object, do not.
        if getattr(self, "_owner_pid", 0) == os.getpid():
            try:
                _Segment.unlink_name(self._core.name, self._core.job)
            except Exception:
                pass

    def __reduce__(self):
        return (_reopen_segment, (self._core.name, self._core.job))

    def __repr__(self) -> str:
        return "<cohort.Segment %r job=%r size=%d>" % (self._core.name, self._core.job,
                                                         self._core.size if not self.closed else -1)


def _reopen_segment(name: str, job: str) -> Segment:
    return Segment.open(name, job=job)


@atexit.register
def _unlink_owned() -> None:
    pid = os.getpid()
    for s in list(_owned):
        if s._owner_pid == pid:
            try:
                s.unlink()
            except Exception:
                pass


def _name(prefix: str) -> str:
    return "%s-%d-%s" % (prefix, os.getpid(), secrets.token_hex(4))


# Segments this process opened by name, shared by the objects unpickled here.
_opened: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()


def _open_cached(name: str, job: str) -> Segment:
    key = (name, job)
    s = _opened.get(key)
    if s is None or s.closed:
        s = Segment.open(name, job=job)
        _opened[key] = s
    return s


# ---- shared arrays ----

try:
    import numpy as _np
except ImportError:  # pragma: no cover - numpy is optional
    _np = None


if _np is not None:
    class SharedArray(_np.ndarray):
        """A NumPy array whose memory is a cohort segment. Pickling sends a
        reference (segment name, offset, shape, strides, dtype), so a worker
        of any start method reopens the same memory instead of copying it."""

        def __array_finalize__(self, obj):
            self._cohort_seg = getattr(obj, "_cohort_seg", None)

        @property
        def segment(self) -> Optional[Segment]:
            return self._cohort_seg

        def __reduce__(self):
            seg = self._cohort_seg
            if seg is not None and not seg.closed:
                addr = self.__array_interface__["data"][0]
                start = seg.address
                if start <= addr < start + seg.size:
                    return (_rebuild_array, (seg.name, seg.job, addr - start, self.shape,
                                             self.strides, self.dtype.str))
            # Not in the segment (the result of arithmetic): a plain copy.
            return _np.asarray(self).copy().__reduce__()
else:
    SharedArray = None  # type: ignore


def _rebuild_array(name, job, offset, shape, strides, dtype):
    seg = _open_cached(name, job)
    a = _np.ndarray(shape, dtype=_np.dtype(dtype), buffer=seg.buf, offset=offset,
                    strides=strides).view(SharedArray)
    a._cohort_seg = seg
    return a


def shared_array(name: Optional[str], shape, dtype="f8", *, create: bool = True,
                 job: Optional[str] = None) -> "SharedArray":
    """A NumPy array of ``shape`` and ``dtype`` in cohort segment ``name``
    (zero-filled at creation; ``create=False`` maps an existing one). The
    pages are reserved at creation: when /dev/shm or the job's memory cannot
    hold the array, this raises ``cohort.NoSpace`` naming the figures."""
    if _np is None:
        raise ImportError("cohort.shared_array needs NumPy (apt-get install python3-numpy)")
    dt = _np.dtype(dtype)
    if isinstance(shape, int):
        shape = (shape,)
    shape = tuple(int(x) for x in shape)
    if any(x < 0 for x in shape):
        raise ValueError("a shape cannot hold negative lengths: %r" % (shape,))
    nbytes = dt.itemsize
    for x in shape:
        nbytes *= x
    if name is None:
        name = _name("array")
    if create:
        seg = Segment.create(name, max(nbytes, 1), job=job)
    else:
        seg = Segment.open(name, job=job)
        if seg.size < nbytes:
            raise ValueError("segment %r holds %d bytes, not the %d of shape %r %s"
                             % (name, seg.size, nbytes, shape, dt))
    a = _np.ndarray(shape, dtype=dt, buffer=seg.buf, offset=0).view(SharedArray)
    a._cohort_seg = seg
    return a


# ---- objects in segments ----
#
# Timeouts are checked in C: None (no limit) or >= 0 seconds, else ValueError.
# Lock and Queue are subclasses of their C types, so that their methods are
# the C functions themselves, called by CPython's fast paths (the C types'
# __init_subclass__ makes the descriptors for the subclass): no Python frame,
# no argument tuple, between a call and the lock or the ring.

class _Placed:
    """An object in a segment of its own, pickled as its name."""
    _prefix = "obj"

    def _make(self, name: Optional[str], size_: int, build) -> None:
        name = name or _name(self._prefix)
        self._seg = Segment.create(name, size_)
        self._core = build(self._seg._core, True)

    def _attach(self, name: str, job: str, build) -> None:
        self._seg = _open_cached(name, job)
        self._core = build(self._seg._core, False)

    @property
    def name(self) -> str:
        return self._seg.name

    def close(self) -> None:
        """Drop this process's handle; the creator also removes the segment file."""
        core, self._core = getattr(self, "_core", None), None
        del core
        if self._seg._owner_pid == os.getpid():
            self._seg.unlink()


class Lock(_Placed, _cohort.Mutex):
    """A process-shared lock that survives its holder's death: when a holder
    is killed, the next ``acquire`` raises ``OwnerDead`` (naming the pid) with
    the lock held by the caller, and the lock stays usable. A context manager
    (``with lock:`` gives the lock back before raising ``OwnerDead``).

    ``acquire(blocking=True, timeout=None)`` returns False when ``timeout``
    seconds pass; ``release()``; ``owner()`` is the holder's pid, 0 if free.
    Not reentrant: the thread holding it gets ``Error`` (code -EDEADLK) from
    another ``acquire``. A free lock is taken without releasing the GIL."""
    _prefix = "lock"

    def __init__(self, name: Optional[str] = None):
        self._seg = Segment.create(name or _name(self._prefix), 64)
        _cohort.Mutex.__init__(self, self._seg._core, 0, True)

    @property
    def _core(self):
        return self

    def close(self) -> None:
        if self._seg._owner_pid == os.getpid():
            self._seg.unlink()

    def __reduce__(self):
        return (_reopen, (Lock, self._seg.name, self._seg.job))


class Barrier(_Placed):
    """A barrier for ``parties`` processes. When a member dies, the waiters get
    ``PeerDead`` naming its pid instead of hanging. ``wait`` returns 1 in one
    process of each round, else 0."""
    _prefix = "barrier"

    def __init__(self, parties: int, name: Optional[str] = None):
        if not 1 <= parties <= _cohort.MEMBERS_MAX:
            raise ValueError("a barrier is for 1 to %d processes, not %r" % (_cohort.MEMBERS_MAX, parties))
        self._make(name, 1152, lambda s, init: _cohort.BarrierCore(s, 0, parties if init else 0))

    def attach(self) -> None:
        """Join the members now, so that a death before the wait is seen."""
        self._core.attach()

    def detach(self) -> None:
        """Leave cleanly: the barrier waits for one process fewer."""
        self._core.detach()

    def wait(self, timeout: Optional[float] = None) -> int:
        return self._core.wait(timeout)

    def dead(self) -> int:
        return self._core.dead()

    def __reduce__(self):
        return (_reopen, (Barrier, self._seg.name, self._seg.job))


class Semaphore(_Placed):
    """A counting semaphore whose members' holdings are tracked: when a member
    dies holding units, waiters get ``PeerDead`` naming it; ``reap()`` gives
    the units back. A context manager."""
    _prefix = "sem"

    def __init__(self, value: int = 1, name: Optional[str] = None):
        if value < 0:
            raise ValueError("a semaphore's value cannot be negative: %r" % (value,))
        self._make(name, 1152, lambda s, init: _cohort.SemaphoreCore(s, 0, value if init else -1))

    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        return self._core.acquire(timeout if blocking else 0.0)

    def release(self) -> None:
        self._core.release()

    def value(self) -> int:
        return self._core.value()

    def reap(self) -> "tuple[int, int]":
        """Remove dead members: (members removed, units given back)."""
        return self._core.reap()

    def __enter__(self) -> "Semaphore":
        self._core.acquire(None)
        return self

    def __exit__(self, *exc) -> None:
        self._core.release()

    def __reduce__(self):
        return (_reopen, (Semaphore, self._seg.name, self._seg.job))


class Queue(_Placed, _cohort.QueueCore):
    """A bounded multi-producer multi-consumer queue of messages in a segment.
    ``send``/``recv`` move bytes, ``put``/``get`` pickled objects. A process
    killed in the middle of an operation leaves the queue usable; the
    messages lost with it are reported by the next ``recv``/``get`` of this
    handle as ``MessagesLost`` (count and pid), after which it goes on.

    ``send(data, timeout=None)`` appends 1 to ``max_message`` bytes
    (``Timeout`` when full for ``timeout`` s); ``recv(timeout=None)`` takes
    the oldest message (``Timeout`` when none comes); ``put(obj,
    timeout=None)`` and ``get(timeout=None)`` do the same with pickled
    objects; ``stats()`` is a dict: capacity, used, sent, received,
    lost_send, lost_recv, recovered, last_dead."""
    _prefix = "queue"

    def __init__(self, capacity: "int | str" = 1 << 20, name: Optional[str] = None):
        cap = size(capacity)
        foot = _cohort.queue_footprint(cap)
        self._seg = Segment.create(name or _name(self._prefix), foot)
        _cohort.QueueCore.__init__(self, self._seg._core, 0, foot, True)

    @property
    def _core(self):
        return self

    @property
    def max_message(self) -> int:
        return _cohort.QueueCore.max_message(self)

    def close(self) -> None:
        """Drop this process's handle; the creator also removes the segment file."""
        self._close()
        if self._seg._owner_pid == os.getpid():
            self._seg.unlink()

    def __reduce__(self):
        return (_reopen, (Queue, self._seg.name, self._seg.job))


def _reopen(cls, name: str, job: str):
    obj = cls.__new__(cls)
    if cls is Lock:
        obj._seg = _open_cached(name, job)
        _cohort.Mutex.__init__(obj, obj._seg._core, 0, False)
    elif cls is Barrier:
        obj._attach(name, job, lambda s, init: _cohort.BarrierCore(s, 0, 0))
    elif cls is Semaphore:
        obj._attach(name, job, lambda s, init: _cohort.SemaphoreCore(s, 0, -1))
    elif cls is Queue:
        obj._seg = _open_cached(name, job)
        _cohort.QueueCore.__init__(obj, obj._seg._core, 0, obj._seg.size, False)
    else:
        raise TypeError(cls)
    return obj
