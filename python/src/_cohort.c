/*
 * _cohort.c - the C half of the Python package `cohort`: libcohort's
 * allocation, plan check, segments, robust mutex, barrier, semaphore and
 * queue as Python objects. libcohort.a is linked in statically, so the
 * module needs no installed libcohort.so.
 *
 * The Python half (cohort/__init__.py) builds the public API on these
 * types: objects named in segments, pickling by reference, exceptions.
 * Every call that can wait releases the GIL while it waits.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "cohort.h"
#include "json.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static PyObject *Error, *NoSpace, *PeerDead, *OwnerDead, *Timeout, *Corrupt, *BadSegment;

static int set_long_attr(PyObject *o, const char *name, long v)
{
	PyObject *n = PyLong_FromLong(v);
	int r;

	if (!n)
		return -1;
	r = PyObject_SetAttrString(o, name, n);
	Py_DECREF(n);
	return r;
}

/*
 * Set exception type with message msg and attributes code and, when pid
 * is >= 0, pid. Returns NULL.
 */
static PyObject *set_exc(PyObject *type, PyObject *msg, int code, long pid)
{
	PyObject *exc;

	if (!msg)
		return NULL;
	exc = PyObject_CallFunctionObjArgs(type, msg, NULL);
	Py_DECREF(msg);
	if (!exc)
		return NULL;
	if (set_long_attr(exc, "code", code) < 0 || (pid >= 0 && set_long_attr(exc, "pid", pid) < 0)) {
		Py_DECREF(exc);
		return NULL;
	}
	PyErr_SetObject(type, exc);
	Py_DECREF(exc);
	return NULL;
}

/*
 * Raise the exception that matches a cohort error code, with cohort's
 * message and the figures (why) when there are some. Returns NULL.
 */
static PyObject *raise_code(int r, const char *what, const char *why)
{
	PyObject *type = Error;
	const char *msg = cohort_strerror(r);

	switch (r) {
	case COHORT_ENOSPACE: type = NoSpace; break;
	case COHORT_EPEERDEAD: type = PeerDead; break;
	case COHORT_EOWNERDEAD: type = OwnerDead; break;
	case COHORT_ETIMEDOUT: type = Timeout; break;
	case COHORT_ECORRUPT: type = Corrupt; break;
	case COHORT_EBADSEG: type = BadSegment; break;
	case -ENOENT: type = PyExc_FileNotFoundError; break;
	case -EEXIST: type = PyExc_FileExistsError; break;
	case -EINVAL: type = PyExc_ValueError; break;
	case -ENOMEM: return PyErr_NoMemory();
	default: break;
	}
	if (type == PyExc_FileNotFoundError || type == PyExc_FileExistsError ||
	    type == PyExc_ValueError) {
		/* The library's sentence, when it wrote one, says which argument is wrong. */
		PyErr_Format(type, "%s: %s", what, why && why[0] ? why : msg);
		return NULL;
	}
	if (why && why[0])
		return set_exc(type, PyUnicode_FromFormat("%s: %s", what, why), r, -1);
	return set_exc(type, PyUnicode_FromFormat("%s: %s", what, msg), r, -1);
}

/*
 * A timeout argument as cohort's milliseconds: absent or None is no limit
 * (-1), as is infinity; seconds >= 0 are rounded to the millisecond, a
 * positive one to at least 1 ms, and capped at INT_MAX ms. A negative or
 * nan timeout raises ValueError. Returns 0, or -1 with an exception set.
 */
static int parse_timeout(PyObject *t, int *ret_ms)
{
	double s, ms;

	if (!t || t == Py_None) {
		*ret_ms = -1;
		return 0;
	}
	s = PyFloat_AsDouble(t);
	if (s == -1.0 && PyErr_Occurred())
		return -1;
	if (!(s >= 0)) {
		PyErr_Format(PyExc_ValueError, "a timeout is None (no limit) or >= 0 seconds, not %R", t);
		return -1;
	}
	if (isinf(s)) {
		*ret_ms = -1;
		return 0;
	}
	ms = s * 1000.0 + 0.5;
	if (ms >= (double)INT_MAX)
		*ret_ms = INT_MAX;
	else
		*ret_ms = s > 0 && ms < 1.0 ? 1 : (int)ms;
	return 0;
}

/*
 * The arguments of a METH_FASTCALL | METH_KEYWORDS call, by position or
 * by name: out[i] (NULL on entry) gets the argument names[i], or stays
 * NULL when it was not given. A call without keywords costs a length
 * check and the copies. Returns 0, or -1 with TypeError set for too many
 * arguments, an unknown keyword, one given twice, or one of the first
 * nrequired missing.
 */
static int fast_args(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                     const char *const *names, int nnames, int nrequired, PyObject **out)
{
	if (nargs > nnames) {
		PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fn, nnames,
		             nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0));
		return -1;
	}
	for (Py_ssize_t i = 0; i < nargs; i++)
		out[i] = args[i];
	for (Py_ssize_t k = 0; kwnames && k < PyTuple_GET_SIZE(kwnames); k++) {
		PyObject *key = PyTuple_GET_ITEM(kwnames, k);
		int j = 0;

		while (j < nnames && PyUnicode_CompareWithASCIIString(key, names[j]) != 0)
			j++;
		if (j == nnames) {
			PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fn, key);
			return -1;
		}
		if (out[j]) {
			PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fn, names[j]);
			return -1;
		}
		out[j] = args[nargs + k];
	}
	for (int j = 0; j < nrequired; j++) {
		if (!out[j]) {
			PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fn, names[j]);
			return -1;
		}
	}
	return 0;
}

/* ---- allocation and plans ---- */

static void probe_from_env(struct cohort_probe *probe)
{
	memset(probe, 0, sizeof(*probe));
	probe->proc_root = getenv("COHORT_ROOT_PROC");
	probe->cgroup_root = getenv("COHORT_ROOT_CGROUP");
	probe->shm_path = getenv("COHORT_ROOT_SHM");
	probe->scontrol = getenv("COHORT_SCONTROL");
}

static int detect(struct cohort_alloc *alloc)
{
	struct cohort_probe probe;
	int r;

	probe_from_env(&probe);
	Py_BEGIN_ALLOW_THREADS
	r = cohort_alloc_detect(&probe, alloc);
	if (r >= 0)
		(void)cohort_alloc_ask_slurm(&probe, alloc);
	Py_END_ALLOW_THREADS
	return r;
}

static PyObject *json_to_str(json_t *root)
{
	char *text = json_dumps(root, JSON_PRESERVE_ORDER);
	PyObject *s;

	json_decref(root);
	if (!text)
		return PyErr_NoMemory();
	s = PyUnicode_FromString(text);
	free(text);
	return s;
}

static PyObject *py_allocation_json(PyObject *self, PyObject *noargs)
{
	struct cohort_alloc alloc;
	int r = detect(&alloc);

	if (r < 0)
		return raise_code(r, "cannot read the allocation", NULL);
	return json_to_str(cohort__json_alloc(&alloc));
}

/* The same object `cohort check --json` prints, as a JSON string. */
static PyObject *py_check_json(PyObject *self, PyObject *args)
{
	unsigned long long mem = 0, shm = 0;
	unsigned workers = 0;
	struct cohort_alloc alloc, within;
	struct cohort_plan plan = { 0 };
	struct cohort_verdict v;
	json_t *root, *jp, *problems, *warnings;
	int r;

	if (!PyArg_ParseTuple(args, "IKK", &workers, &mem, &shm))
		return NULL;
	r = detect(&alloc);
	if (r < 0)
		return raise_code(r, "cannot read the allocation", NULL);
	plan.workers = workers;
	plan.mem_per_worker = mem;
	plan.shm = shm;
	within = alloc;
	if (alloc.task_share) {
		within.mem_limit = alloc.task_share;
		snprintf(within.mem_limit_where, sizeof(within.mem_limit_where),
		         "this task's share, 1/%ld of %s, %ld tasks of the step on this node",
		         alloc.slurm.tasks_on_node, alloc.mem_limit_where, alloc.slurm.tasks_on_node);
	}
	r = cohort_plan_check(&within, &plan, &v);
	if (r < 0) {
		PyErr_Format(PyExc_ValueError, "impossible plan: %u workers x %llu bytes overflows",
		             workers, mem);
		return NULL;
	}
	root = json_object();
	jp = json_object();
	problems = json_array();
	warnings = json_array();
	json_object_set_new(root, "allocation", cohort__json_alloc(&alloc));
	json_object_set_new(jp, "workers", json_integer(v.workers));
	json_object_set_new(jp, "mem_per_worker_bytes", mem ? cohort__json_size(mem) : json_null());
	json_object_set_new(jp, "shm_bytes", cohort__json_size(shm));
	json_object_set_new(jp, "total_bytes", cohort__json_size(v.total));
	json_object_set_new(jp, "per_worker_fit_bytes", cohort__json_size(v.per_worker_fit));
	json_object_set_new(root, "plan", jp);
	json_object_set_new(root, "fits", json_boolean(v.fits));
	for (int i = 0; i < v.nproblems; i++) {
		const struct cohort_problem *pr = &v.problems[i];

		json_array_append_new(pr->fatal ? problems : warnings,
		                      json_pack("{s:s, s:s, s:s}", "kind", cohort_problem_name(pr->kind),
		                                "message", pr->message, "fix", pr->fix));
	}
	json_object_set_new(root, "problems", problems);
	json_object_set_new(root, "warnings", warnings);
	return json_to_str(root);
}

static PyObject *py_size_parse(PyObject *self, PyObject *args)
{
	const char *text;
	uint64_t b;
	int r;

	if (!PyArg_ParseTuple(args, "s", &text))
		return NULL;
	r = cohort_size_parse(text, &b);
	if (r < 0) {
		static const char lead[] = "not a size: ";
		const char *msg = cohort_strerror(r);

		/* "'x' is not a size: expected ...", not "not a size" twice. */
		if (strncmp(msg, lead, sizeof(lead) - 1) == 0)
			msg += sizeof(lead) - 1;
		PyErr_Format(PyExc_ValueError, "%R is not a size: %s; write 500M, 4G, 1.5T or 2048 (MiB)",
		             PyTuple_GET_ITEM(args, 0), msg);
		return NULL;
	}
	return PyLong_FromUnsignedLongLong(b);
}

static PyObject *py_strerror(PyObject *self, PyObject *args)
{
	int r;

	if (!PyArg_ParseTuple(args, "i", &r))
		return NULL;
	return PyUnicode_FromString(cohort_strerror(r));
}

/* ---- Segment ---- */

typedef struct {
	PyObject_HEAD
	struct cohort_seg *seg;
	char name[COHORT_SEG_NAME_MAX + 1];
	char job[COHORT_ID_MAX];
	char dir[COHORT_PATH_MAX];
	Py_ssize_t exports;   /* buffers and objects using the mapping */
} SegmentObject;

static PyTypeObject SegmentType;

static int seg_options(struct cohort_seg_options *o, const char *job, const char *dir,
                       char *why, size_t why_size)
{
	memset(o, 0, sizeof(*o));
	o->job = job && job[0] ? job : NULL;
	o->dir = dir && dir[0] ? dir : NULL;
	o->why = why;
	o->why_size = why_size;
	return 0;
}

/*
 * Refuse a bad segment name or job scope before the library does, with the
 * rule and the fix: the library's -EINVAL alone cannot tell the caller
 * whether the name or COHORT_JOB is at fault. The scope is the one
 * cohort_seg_job() picks (job=, else COHORT_JOB, else SLURM_JOB_ID), checked
 * with the library's own cohort_job_scope_valid(); the name is checked by
 * cohort_seg_path() under a scope known to be valid, so that both rules stay
 * the library's. Returns 0, or -1 with ValueError set.
 */
static int seg_check_names(const char *name, const char *job)
{
	struct cohort_seg_options o;
	const char *src = "job", *fix = "pass such a name";
	char path[COHORT_PATH_MAX];

	if (!job || !job[0]) {
		job = getenv("COHORT_JOB");
		src = "COHORT_JOB";
		fix = "unset it or choose such a name";
	}
	if (!job || !job[0]) {
		job = getenv("SLURM_JOB_ID");
		src = "SLURM_JOB_ID";
		fix = "set COHORT_JOB to such a name";
	}
	if (job && job[0] && !cohort_job_scope_valid(job)) {
		PyErr_Format(PyExc_ValueError, "%s '%s' is not a job scope: 1 to 63 of "
		             "[A-Za-z0-9_-]; %s", src, job, fix);
		return -1;
	}
	memset(&o, 0, sizeof(o));
	o.job = "scope";
	o.dir = "/";
	if (cohort_seg_path(name, &o, path, sizeof(path)) == -EINVAL) {
		PyErr_Format(PyExc_ValueError, "segment name '%s' is not valid: 1 to %d of "
		             "[A-Za-z0-9_-]; choose such a name", name, COHORT_SEG_NAME_MAX);
		return -1;
	}
	return 0;
}

static PyObject *seg_new(const char *name, const char *job, const char *dir,
                         struct cohort_seg *seg)
{
	SegmentObject *s = PyObject_New(SegmentObject, &SegmentType);
	struct cohort_seg_options o;

	if (!s) {
		cohort_seg_close(seg);
		return NULL;
	}
	s->seg = seg;
	s->exports = 0;
	snprintf(s->name, sizeof(s->name), "%s", name);
	seg_options(&o, job, dir, NULL, 0);
	if (cohort_seg_job(&o, s->job, sizeof(s->job)) < 0)
		s->job[0] = '\0';
	snprintf(s->dir, sizeof(s->dir), "%s", dir ? dir : "");
	return (PyObject *)s;
}

static PyObject *seg_create(PyObject *cls, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "size", "job", "dir", NULL };
	const char *name, *job = NULL, *dir = NULL;
	Py_ssize_t size;
	struct cohort_seg_options o;
	struct cohort_seg *seg = NULL;
	char why[COHORT_MSG_MAX] = "";
	int r;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "sn|zz", kwlist, &name, &size, &job, &dir))
		return NULL;
	if (seg_check_names(name, job) < 0)
		return NULL;
	if (size <= 0) {
		PyErr_SetString(PyExc_ValueError, "a segment's size must be at least 1 byte");
		return NULL;
	}
	seg_options(&o, job, dir, why, sizeof(why));
	Py_BEGIN_ALLOW_THREADS
	r = cohort_seg_create(name, (size_t)size, &o, &seg);
	Py_END_ALLOW_THREADS
	if (r < 0) {
		char what[256];

		snprintf(what, sizeof(what), "cannot create segment '%s'", name);
		return raise_code(r, what, why);
	}
	return seg_new(name, job, dir, seg);
}

static PyObject *seg_open(PyObject *cls, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "job", "dir", NULL };
	const char *name, *job = NULL, *dir = NULL;
	struct cohort_seg_options o;
	struct cohort_seg *seg = NULL;
	char why[COHORT_MSG_MAX] = "";
	int r;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zz", kwlist, &name, &job, &dir))
		return NULL;
	if (seg_check_names(name, job) < 0)
		return NULL;
	seg_options(&o, job, dir, why, sizeof(why));
	Py_BEGIN_ALLOW_THREADS
	r = cohort_seg_open(name, &o, &seg);
	Py_END_ALLOW_THREADS
	if (r < 0) {
		char what[256];

		snprintf(what, sizeof(what), "cannot open segment '%s'", name);
		return raise_code(r, what, why);
	}
	return seg_new(name, job, dir, seg);
}

static PyObject *seg_unlink_name(PyObject *cls, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "job", "dir", NULL };
	const char *name, *job = NULL, *dir = NULL;
	struct cohort_seg_options o;
	int r;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zz", kwlist, &name, &job, &dir))
		return NULL;
	if (seg_check_names(name, job) < 0)
		return NULL;
	seg_options(&o, job, dir, NULL, 0);
	r = cohort_seg_unlink(name, &o);
	if (r < 0) {
		char what[256];

		snprintf(what, sizeof(what), "cannot remove segment '%s'", name);
		return raise_code(r, what, NULL);
	}
	Py_RETURN_NONE;
}

static int seg_check(SegmentObject *s)
{
	if (!s->seg) {
		PyErr_SetString(PyExc_ValueError, "the segment is closed");
		return -1;
	}
	return 0;
}

static PyObject *seg_close(SegmentObject *s, PyObject *noargs)
{
	if (s->exports > 0) {
		PyErr_Format(PyExc_BufferError,
		             "segment '%s' is still in use by %zd buffers or objects (arrays, locks, queues)",
		             s->name, s->exports);
		return NULL;
	}
	cohort_seg_close(s->seg);
	s->seg = NULL;
	Py_RETURN_NONE;
}

static PyObject *seg_get_size(SegmentObject *s, void *c)
{
	if (seg_check(s) < 0)
		return NULL;
	return PyLong_FromSize_t(cohort_seg_size(s->seg));
}

static PyObject *seg_get_address(SegmentObject *s, void *c)
{
	if (seg_check(s) < 0)
		return NULL;
	return PyLong_FromVoidPtr(cohort_seg_data(s->seg));
}

static PyObject *seg_get_name(SegmentObject *s, void *c) { return PyUnicode_FromString(s->name); }
static PyObject *seg_get_job(SegmentObject *s, void *c) { return PyUnicode_FromString(s->job); }
static PyObject *seg_get_closed(SegmentObject *s, void *c) { return PyBool_FromLong(!s->seg); }

static PyObject *seg_get_path(SegmentObject *s, void *c)
{
	struct cohort_seg_options o;
	char path[COHORT_PATH_MAX];
	int r;

	seg_options(&o, s->job, s->dir, NULL, 0);
	r = cohort_seg_path(s->name, &o, path, sizeof(path));
	if (r < 0)
		return raise_code(r, "segment path", NULL);
	return PyUnicode_FromString(path);
}

static int seg_getbuffer(SegmentObject *s, Py_buffer *view, int flags)
{
	if (seg_check(s) < 0) {
		view->obj = NULL;
		return -1;
	}
	if (PyBuffer_FillInfo(view, (PyObject *)s, cohort_seg_data(s->seg),
	                      (Py_ssize_t)cohort_seg_size(s->seg), 0, flags) < 0)
		return -1;
	s->exports++;
	return 0;
}

static void seg_releasebuffer(SegmentObject *s, Py_buffer *view)
{
	s->exports--;
}

static void seg_dealloc(SegmentObject *s)
{
	cohort_seg_close(s->seg);
	PyObject_Free(s);
}

static PyBufferProcs seg_as_buffer = {
	(getbufferproc)seg_getbuffer,
	(releasebufferproc)seg_releasebuffer,
};

static PyMethodDef seg_methods[] = {
	{ "create", (PyCFunction)(void (*)(void))seg_create, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  "create(name, size, job=None, dir=None): create and map a new segment of size bytes.\n"
	  "Its pages are reserved at once: a /dev/shm or memory limit too small raises\n"
	  "cohort.NoSpace here, naming the figures, never a SIGBUS later." },
	{ "open", (PyCFunction)(void (*)(void))seg_open, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  "open(name, job=None, dir=None): map an existing segment of this user and job." },
	{ "unlink_name", (PyCFunction)(void (*)(void))seg_unlink_name, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  "unlink_name(name, job=None, dir=None): remove a segment's file; mappings stay valid." },
	{ "close", (PyCFunction)seg_close, METH_NOARGS,
	  "Unmap the segment (the file stays). Refused while buffers or objects use it." },
	{ NULL }
};

static PyGetSetDef seg_getset[] = {
	{ "size", (getter)seg_get_size, NULL, "data bytes", NULL },
	{ "address", (getter)seg_get_address, NULL, "the data's address in this process", NULL },
	{ "name", (getter)seg_get_name, NULL, "the segment's name", NULL },
	{ "job", (getter)seg_get_job, NULL, "the job scope of the segment's file name", NULL },
	{ "path", (getter)seg_get_path, NULL, "the segment's file", NULL },
	{ "closed", (getter)seg_get_closed, NULL, "True once closed", NULL },
	{ NULL }
};

static PyTypeObject SegmentType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cohort._cohort.Segment",
	.tp_basicsize = sizeof(SegmentObject),
	.tp_dealloc = (destructor)seg_dealloc,
	.tp_as_buffer = &seg_as_buffer,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A cohort shared memory segment, mapped in this process (a writable buffer).",
	.tp_methods = seg_methods,
	.tp_getset = seg_getset,
};

/*
 * ---- objects placed in a segment ----
 *
 * Each holds its segment (and counts as one of its users, so that the
 * mapping cannot go while it is used) and the address of its memory.
 */
typedef struct {
	PyObject_HEAD
	SegmentObject *seg;
	void *mem;
	size_t size;
	cohort_queue_t *q;      /* queues only: this process's handle */
	char *buf;              /* queues only: the receive buffer */
	size_t bufsize;
	int buf_busy;           /* queues only: a thread waits to receive into buf */
	int calls;              /* queues only: threads inside a send or receive */
	uint64_t lost_seen;     /* queues only: lost messages this handle has reported */
} PlacedObject;

/* Parse (segment, offset, size) and check the region is inside the segment. */
static int placed_init(PlacedObject *p, PyObject *segobj, Py_ssize_t offset, Py_ssize_t size)
{
	SegmentObject *s;

	if (p->seg) {
		PyErr_Format(PyExc_TypeError, "this %s is already set up", Py_TYPE(p)->tp_name);
		return -1;
	}
	if (!PyObject_TypeCheck(segobj, &SegmentType)) {
		PyErr_SetString(PyExc_TypeError, "expected a cohort Segment");
		return -1;
	}
	s = (SegmentObject *)segobj;
	if (seg_check(s) < 0)
		return -1;
	if (offset < 0 || size <= 0 || offset % 64 ||
	    (size_t)offset + (size_t)size > cohort_seg_size(s->seg)) {
		PyErr_Format(PyExc_ValueError, "region %zd+%zd is not a 64-byte aligned part of segment '%s' (%zu bytes)",
		             offset, size, s->name, cohort_seg_size(s->seg));
		return -1;
	}
	Py_INCREF(s);
	s->exports++;
	p->seg = s;
	p->mem = (char *)cohort_seg_data(s->seg) + offset;
	p->size = (size_t)size;
	return 0;
}

/* Let go of the segment and the queue handle (dealloc, and a queue's close). */
static void placed_clear(PlacedObject *p)
{
	if (p->q)
		cohort_queue_close(p->q);
	p->q = NULL;
	free(p->buf);
	p->buf = NULL;
	p->mem = NULL;
	if (p->seg) {
		p->seg->exports--;
		Py_CLEAR(p->seg);
	}
}

static void placed_dealloc(PlacedObject *p)
{
	placed_clear(p);
	Py_TYPE(p)->tp_free((PyObject *)p);
}

/* An object made with __new__ whose __init__ never ran has no memory: say so, never crash. */
static PyObject *not_ready(PlacedObject *p)
{
	PyErr_Format(PyExc_ValueError, "this %s is closed or was never set up", Py_TYPE(p)->tp_name);
	return NULL;
}

/*
 * CPython's specialised calls of a C method (the CALL or PRECALL
 * ..._METHOD_DESCRIPTOR_... instructions of 3.11 and later) require the
 * object's type to be exactly the type the method descriptor was made
 * for, and otherwise take the generic call, every time: Mutex.acquire
 * called on a cohort.Lock, a Python subclass, measured 11 ns slower per
 * acquire + release than on a Mutex. So each subclass gets descriptors of
 * its own, made for it, for the C methods it inherits unchanged; a method
 * a subclass overrides in Python stays overridden. Run by
 * __init_subclass__ at the subclass's creation. Returns None, or NULL with
 * an exception set.
 */
static PyObject *bind_methods(PyObject *cls, PyMethodDef *defs)
{
	for (PyMethodDef *d = defs; d->ml_name; d++) {
		PyObject *cur, *descr;
		int inherited, r;

		if (d->ml_flags & (METH_CLASS | METH_STATIC))
			continue;
		cur = PyObject_GetAttrString(cls, d->ml_name);
		if (!cur)
			return NULL;
		inherited = Py_IS_TYPE(cur, &PyMethodDescr_Type) &&
		            ((PyMethodDescrObject *)cur)->d_method == d;
		Py_DECREF(cur);
		if (!inherited)
			continue;
		descr = PyDescr_NewMethod((PyTypeObject *)cls, d);
		if (!descr)
			return NULL;
		r = PyObject_SetAttrString(cls, d->ml_name, descr);
		Py_DECREF(descr);
		if (r < 0)
			return NULL;
	}
	Py_RETURN_NONE;
}

/* Mutex(segment, offset, init) */
static int mutex_init(PlacedObject *p, PyObject *args, PyObject *kw)
{
	PyObject *segobj;
	Py_ssize_t off;
	int init = 0, r;

	if (!PyArg_ParseTuple(args, "On|p", &segobj, &off, &init))
		return -1;
	if (placed_init(p, segobj, off, sizeof(cohort_mutex_t)) < 0)
		return -1;
	if (init && (r = cohort_mutex_init(p->mem)) < 0) {
		raise_code(r, "cannot initialise the lock", NULL);
		return -1;
	}
	return 0;
}

/* After COHORT_EOWNERDEAD: mark the lock consistent (the caller holds it) and raise OwnerDead. */
static PyObject *owner_dead(PlacedObject *p)
{
	pid_t dead = cohort_mutex_last_dead(p->mem);

	cohort_mutex_consistent(p->mem);
	return set_exc(OwnerDead, dead > 0 ?
	               PyUnicode_FromFormat("process %d died holding the lock; this process now holds it: "
	                                    "the data it protects may be half-updated", (int)dead) :
	               PyUnicode_FromString("the lock's previous holder died holding it; this process now "
	                                    "holds it: the data it protects may be half-updated"),
	               COHORT_EOWNERDEAD, dead);
}

/*
 * Take the lock waiting at most ms. A free lock is taken without giving up
 * the GIL (the common case costs one atomic operation); only a wait
 * releases it. Returns cohort_mutex_lock's code.
 */
static inline int mutex_take(PlacedObject *p, int ms)
{
	int r = cohort_mutex_lock(p->mem, 0);

	if (__builtin_expect(r != COHORT_ETIMEDOUT, 1) || ms == 0)
		return r;
	Py_BEGIN_ALLOW_THREADS
	r = cohort_mutex_lock(p->mem, ms);
	Py_END_ALLOW_THREADS
	return r;
}

/*
 * A take's code as acquire() says it: True, False (the lock stayed busy),
 * OwnerDead (held, marked consistent), or cohort.Error: -EDEADLK when this
 * thread already holds the lock, which is not reentrant.
 */
static PyObject *acquire_result(PlacedObject *p, int r)
{
	if (__builtin_expect(r == 0, 1))
		Py_RETURN_TRUE;
	if (r == COHORT_ETIMEDOUT)
		Py_RETURN_FALSE;
	if (r == COHORT_EOWNERDEAD)
		return owner_dead(p);
	return raise_code(r, "cannot take the lock", NULL);
}

/*
 * acquire(blocking=True, timeout=None). A call without arguments, the
 * common one, parses nothing.
 */
static PyObject *mutex_acquire(PlacedObject *p, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const names[] = { "blocking", "timeout" };
	PyObject *a[2] = { NULL, NULL };
	int blocking, ms;

	if (__builtin_expect(!p->mem, 0))
		return not_ready(p);
	if (nargs == 0 && !kwnames)
		return acquire_result(p, mutex_take(p, -1));
	if (fast_args("acquire", args, nargs, kwnames, names, 2, 0, a) < 0)
		return NULL;
	blocking = a[0] ? PyObject_IsTrue(a[0]) : 1;
	if (blocking < 0 || parse_timeout(a[1], &ms) < 0)
		return NULL;
	return acquire_result(p, mutex_take(p, blocking ? ms : 0));
}

static PyObject *mutex_release(PlacedObject *p, PyObject *noargs)
{
	int r;

	if (__builtin_expect(!p->mem, 0))
		return not_ready(p);
	r = cohort_mutex_unlock(p->mem);
	if (__builtin_expect(r == 0, 1))
		Py_RETURN_NONE;
	if (r == -EPERM) {
		PyErr_SetString(PyExc_RuntimeError, "release of a cohort.Lock this process does not hold");
		return NULL;
	}
	return raise_code(r, "cannot release the lock", NULL);
}

/*
 * with lock: a dead previous holder raises OwnerDead and the body does
 * not run, so the lock is given back first: the others may go on.
 */
static PyObject *mutex_enter(PlacedObject *p, PyObject *noargs)
{
	int r;

	if (__builtin_expect(!p->mem, 0))
		return not_ready(p);
	r = mutex_take(p, -1);
	if (__builtin_expect(r == 0, 1)) {
		Py_INCREF(p);
		return (PyObject *)p;
	}
	if (r == COHORT_EOWNERDEAD) {
		owner_dead(p);
		cohort_mutex_unlock(p->mem);
		return NULL;
	}
	return raise_code(r, "cannot take the lock", NULL);
}

/* __exit__(type, value, traceback): the arguments as the call passed them, no tuple. */
static PyObject *mutex_exit(PlacedObject *p, PyObject *const *args, Py_ssize_t nargs)
{
	return mutex_release(p, NULL);
}

static PyObject *mutex_owner(PlacedObject *p, PyObject *noargs)
{
	if (!p->mem)
		return not_ready(p);
	return PyLong_FromLong(cohort_mutex_owner(p->mem));
}

static PyObject *mutex_last_dead(PlacedObject *p, PyObject *noargs)
{
	if (!p->mem)
		return not_ready(p);
	return PyLong_FromLong(cohort_mutex_last_dead(p->mem));
}

static PyObject *mutex_init_subclass(PyObject *cls, PyObject *noargs);

static PyMethodDef mutex_methods[] = {
	{ "acquire", (PyCFunction)(void (*)(void))mutex_acquire, METH_FASTCALL | METH_KEYWORDS,
	  "acquire(blocking=True, timeout=None) -> bool: take the lock; False when timeout seconds\n"
	  "pass. After a holder died holding it, raises OwnerDead (with its pid) and the caller\n"
	  "holds the lock: repair the data it protects, then release it. The lock is not\n"
	  "reentrant: the thread that holds it gets cohort.Error (code -EDEADLK)." },
	{ "release", (PyCFunction)mutex_release, METH_NOARGS, "release()" },
	{ "__enter__", (PyCFunction)mutex_enter, METH_NOARGS, "take the lock (OwnerDead: given back, then raised)" },
	{ "__exit__", (PyCFunction)(void (*)(void))mutex_exit, METH_FASTCALL, "release the lock" },
	{ "owner", (PyCFunction)mutex_owner, METH_NOARGS, "pid of the holder, 0 when free" },
	{ "last_dead", (PyCFunction)mutex_last_dead, METH_NOARGS, "pid of the last holder that died holding it" },
	{ "__init_subclass__", (PyCFunction)mutex_init_subclass, METH_CLASS | METH_NOARGS,
	  "gives a subclass the C methods as its own, for CPython's fast calls" },
	{ NULL }
};

static PyObject *mutex_init_subclass(PyObject *cls, PyObject *noargs)
{
	return bind_methods(cls, mutex_methods);
}

static PyTypeObject MutexType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cohort._cohort.Mutex",
	.tp_basicsize = sizeof(PlacedObject),
	.tp_dealloc = (destructor)placed_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Mutex(segment, offset, init=False): a robust process-shared mutex in a segment.",
	.tp_methods = mutex_methods,
	.tp_init = (initproc)mutex_init,
	.tp_new = PyType_GenericNew,
};

/* The pid a PeerDead carries, set as its pid attribute. */
static PyObject *raise_peer_dead(int r, pid_t dead, const char *what)
{
	if (r != COHORT_EPEERDEAD)
		return raise_code(r, what, NULL);
	if (dead > 0)
		return set_exc(PeerDead, PyUnicode_FromFormat("%s: member process %d died", what, (int)dead),
		               r, dead);
	return set_exc(PeerDead, PyUnicode_FromFormat("%s: broken by a member's death or a timeout", what),
	               r, 0);
}

/* Barrier(segment, offset, n): n > 0 initialises. */
static int barrier_init(PlacedObject *p, PyObject *args, PyObject *kw)
{
	PyObject *segobj;
	Py_ssize_t off;
	unsigned n = 0;
	int r;

	if (!PyArg_ParseTuple(args, "On|I", &segobj, &off, &n))
		return -1;
	if (placed_init(p, segobj, off, sizeof(cohort_barrier_t)) < 0)
		return -1;
	if (n && (r = cohort_barrier_init(p->mem, n)) < 0) {
		PyErr_Format(PyExc_ValueError, "a barrier is for 1 to %d processes, not %u", COHORT_MEMBERS_MAX, n);
		return -1;
	}
	return 0;
}

static const char *const timeout_names[] = { "timeout" };

/* wait(timeout=None) */
static PyObject *barrier_wait(PlacedObject *p, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *t = NULL;
	int ms, r;

	if (!p->mem)
		return not_ready(p);
	if (fast_args("wait", args, nargs, kwnames, timeout_names, 1, 0, &t) < 0 || parse_timeout(t, &ms) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	r = cohort_barrier_wait(p->mem, ms);
	Py_END_ALLOW_THREADS
	if (r >= 0)
		return PyLong_FromLong(r);
	if (r == COHORT_ETIMEDOUT)
		return raise_code(r, "the barrier timed out (it is now broken for every member)", NULL);
	return raise_peer_dead(r, cohort_barrier_dead(p->mem), "the barrier is broken");
}

static PyObject *barrier_attach(PlacedObject *p, PyObject *noargs)
{
	int r;

	if (!p->mem)
		return not_ready(p);
	r = cohort_barrier_join(p->mem);

	if (r < 0)
		return raise_code(r, "cannot join the barrier", NULL);
	Py_RETURN_NONE;
}

static PyObject *barrier_detach(PlacedObject *p, PyObject *noargs)
{
	int r;

	if (!p->mem)
		return not_ready(p);
	r = cohort_barrier_leave(p->mem);

	if (r < 0 && r != -ENOENT)
		return raise_code(r, "cannot leave the barrier", NULL);
	Py_RETURN_NONE;
}

static PyObject *barrier_dead(PlacedObject *p, PyObject *noargs)
{
	if (!p->mem)
		return not_ready(p);
	return PyLong_FromLong(cohort_barrier_dead(p->mem));
}

static PyMethodDef barrier_methods[] = {
	{ "wait", (PyCFunction)(void (*)(void))barrier_wait, METH_FASTCALL | METH_KEYWORDS, "wait(timeout=None) -> 1 in one process per round, else 0" },
	{ "attach", (PyCFunction)barrier_attach, METH_NOARGS, "join the members" },
	{ "detach", (PyCFunction)barrier_detach, METH_NOARGS, "leave the members cleanly" },
	{ "dead", (PyCFunction)barrier_dead, METH_NOARGS, "pid of the member whose death broke it, or 0" },
	{ NULL }
};

static PyTypeObject BarrierType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cohort._cohort.BarrierCore",
	.tp_basicsize = sizeof(PlacedObject),
	.tp_dealloc = (destructor)placed_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "BarrierCore(segment, offset, n=0): a barrier in a segment (n > 0 initialises).",
	.tp_methods = barrier_methods,
	.tp_init = (initproc)barrier_init,
	.tp_new = PyType_GenericNew,
};

/* Sem(segment, offset, value): value >= 0 initialises. */
static int sem_init(PlacedObject *p, PyObject *args, PyObject *kw)
{
	PyObject *segobj;
	Py_ssize_t off;
	long value = -1;
	int r;

	if (!PyArg_ParseTuple(args, "On|l", &segobj, &off, &value))
		return -1;
	if (placed_init(p, segobj, off, sizeof(cohort_sem_t)) < 0)
		return -1;
	if (value > INT_MAX) {
		PyErr_SetString(PyExc_ValueError, "a semaphore holds at most 2^31-1 units");
		return -1;
	}
	if (value >= 0 && (r = cohort_sem_init(p->mem, (unsigned)value)) < 0) {
		raise_code(r, "cannot initialise the semaphore", NULL);
		return -1;
	}
	return 0;
}

/* acquire(timeout=None): a free unit is taken without giving up the GIL. */
static PyObject *sem_acquire(PlacedObject *p, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *t = NULL;
	int ms, r;

	if (!p->mem)
		return not_ready(p);
	if (fast_args("acquire", args, nargs, kwnames, timeout_names, 1, 0, &t) < 0 || parse_timeout(t, &ms) < 0)
		return NULL;
	r = cohort_sem_wait(p->mem, 0);
	if (r == COHORT_ETIMEDOUT && ms != 0) {
		Py_BEGIN_ALLOW_THREADS
		r = cohort_sem_wait(p->mem, ms);
		Py_END_ALLOW_THREADS
	}
	if (r == COHORT_ETIMEDOUT)
		Py_RETURN_FALSE;
	if (r < 0)
		return raise_peer_dead(r, cohort_sem_dead(p->mem), "a semaphore member died holding units");
	Py_RETURN_TRUE;
}

static PyObject *sem_release(PlacedObject *p, PyObject *noargs)
{
	int r;

	if (!p->mem)
		return not_ready(p);
	r = cohort_sem_post(p->mem);

	if (r < 0)
		return raise_code(r, "cannot post the semaphore", NULL);
	Py_RETURN_NONE;
}

static PyObject *sem_value(PlacedObject *p, PyObject *noargs)
{
	if (!p->mem)
		return not_ready(p);
	return PyLong_FromUnsignedLong(cohort_sem_value(p->mem));
}

static PyObject *sem_reap(PlacedObject *p, PyObject *noargs)
{
	unsigned units = 0;
	int r;

	if (!p->mem)
		return not_ready(p);
	r = cohort_sem_reap(p->mem, &units);

	if (r < 0)
		return raise_code(r, "cannot reap the semaphore", NULL);
	return Py_BuildValue("(iI)", r, units);
}

static PyObject *sem_attach(PlacedObject *p, PyObject *noargs)
{
	int r;

	if (!p->mem)
		return not_ready(p);
	r = cohort_sem_join(p->mem);

	if (r < 0)
		return raise_code(r, "cannot join the semaphore", NULL);
	Py_RETURN_NONE;
}

static PyObject *sem_detach(PlacedObject *p, PyObject *noargs)
{
	int r;

	if (!p->mem)
		return not_ready(p);
	r = cohort_sem_leave(p->mem);

	if (r < 0 && r != -ENOENT)
		return raise_code(r, "cannot leave the semaphore", NULL);
	return PyLong_FromLong(r < 0 ? 0 : r);
}

static PyObject *sem_dead(PlacedObject *p, PyObject *noargs)
{
	if (!p->mem)
		return not_ready(p);
	return PyLong_FromLong(cohort_sem_dead(p->mem));
}

static PyMethodDef sem_methods[] = {
	{ "acquire", (PyCFunction)(void (*)(void))sem_acquire, METH_FASTCALL | METH_KEYWORDS, "acquire(timeout=None) -> bool" },
	{ "release", (PyCFunction)sem_release, METH_NOARGS, "release()" },
	{ "value", (PyCFunction)sem_value, METH_NOARGS, "units free now" },
	{ "reap", (PyCFunction)sem_reap, METH_NOARGS, "reap() -> (dead members removed, units given back)" },
	{ "attach", (PyCFunction)sem_attach, METH_NOARGS, "join the members" },
	{ "detach", (PyCFunction)sem_detach, METH_NOARGS, "leave the members, giving back held units" },
	{ "dead", (PyCFunction)sem_dead, METH_NOARGS, "pid of a dead member found by the last failed wait" },
	{ NULL }
};

static PyTypeObject SemType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cohort._cohort.SemaphoreCore",
	.tp_basicsize = sizeof(PlacedObject),
	.tp_dealloc = (destructor)placed_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "SemaphoreCore(segment, offset, value=-1): a semaphore in a segment (value >= 0 initialises).",
	.tp_methods = sem_methods,
	.tp_init = (initproc)sem_init,
	.tp_new = PyType_GenericNew,
};

/*
 * The package's MessagesLost class (cohort.MessagesLost(message, count,
 * pid), defined in Python), registered by set_messages_lost; cohort.Error
 * until then.
 */
static PyObject *MessagesLost;

/* pickle.dumps, pickle.loads and pickle.HIGHEST_PROTOCOL, for put and get. */
static PyObject *pickle_dumps, *pickle_loads, *pickle_protocol;

static PyObject *py_set_messages_lost(PyObject *self, PyObject *cls)
{
	if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, (PyTypeObject *)Error)) {
		PyErr_SetString(PyExc_TypeError, "set_messages_lost expects a subclass of cohort.Error");
		return NULL;
	}
	Py_INCREF(cls);
	Py_XSETREF(MessagesLost, cls);
	Py_RETURN_NONE;
}

/* Lost messages counted in the queue now. */
static uint64_t queue_lost_now(PlacedObject *p)
{
	struct cohort_queue_stats st;

	cohort_queue_stats(p->q, &st);
	return st.lost_send + st.lost_recv;
}

/* QueueCore(segment, offset, size, init) */
static int queue_init(PlacedObject *p, PyObject *args, PyObject *kw)
{
	PyObject *segobj;
	Py_ssize_t off, size;
	int init = 0, r;

	if (!PyArg_ParseTuple(args, "Onn|p", &segobj, &off, &size, &init))
		return -1;
	if (placed_init(p, segobj, off, size) < 0)
		return -1;
	r = init ? cohort_queue_init(p->mem, p->size, &p->q) : cohort_queue_open(p->mem, p->size, &p->q);
	if (r < 0) {
		placed_clear(p);
		raise_code(r, init ? "cannot build the queue" : "cannot attach to the queue", NULL);
		return -1;
	}
	p->bufsize = cohort_queue_max_message(p->q);
	p->buf = malloc(p->bufsize ? p->bufsize : 1);
	if (!p->buf) {
		placed_clear(p);
		PyErr_NoMemory();
		return -1;
	}
	/* Losses before this handle existed are not its to report. */
	p->lost_seen = init ? 0 : queue_lost_now(p);
	return 0;
}

static inline int queue_ready(PlacedObject *p)
{
	if (__builtin_expect(!p->q, 0)) {
		PyErr_Format(PyExc_ValueError, "this %s is closed or was never set up", Py_TYPE(p)->tp_name);
		return -1;
	}
	return 0;
}

/*
 * Messages lost with a dead producer or consumer since this handle last
 * looked: raised once as MessagesLost (count, pid), then the queue goes on.
 * Returns 0, or -1 with the exception set.
 */
static int queue_check_lost(PlacedObject *p)
{
	struct cohort_queue_stats st;
	uint64_t lost, n;
	PyObject *exc;

	cohort_queue_stats(p->q, &st);
	lost = st.lost_send + st.lost_recv;
	if (__builtin_expect(lost <= p->lost_seen, 1))
		return 0;
	n = lost - p->lost_seen;
	p->lost_seen = lost;
	if (!MessagesLost) {
		set_exc(Error, PyUnicode_FromFormat("%llu messages lost with a process that died sending "
		                                    "or receiving", (unsigned long long)n), -10011, st.last_dead);
		return -1;
	}
	exc = PyObject_CallFunction(MessagesLost, "NKi",
	                            PyUnicode_FromFormat("%llu message%s lost with a process that died sending "
	                                                 "or receiving (last dead: pid %d)",
	                                                 (unsigned long long)n, n == 1 ? "" : "s",
	                                                 (int)st.last_dead),
	                            (unsigned long long)n, (int)st.last_dead);
	if (exc) {
		PyErr_SetObject(MessagesLost, exc);
		Py_DECREF(exc);
	}
	return -1;
}

/*
 * Append data (bytes or another contiguous buffer) within ms. Room is
 * looked for first without giving up the GIL; only a wait for room (or for
 * the producers' lock) releases it. Returns None, or NULL with Timeout
 * (full for ms), ValueError (size), or another cohort error.
 */
static PyObject *queue_send_data(PlacedObject *p, PyObject *data, int ms)
{
	Py_buffer view;
	const void *buf;
	Py_ssize_t len;
	int viewed = 0, r;

	if (PyBytes_CheckExact(data)) {
		buf = PyBytes_AS_STRING(data);
		len = PyBytes_GET_SIZE(data);
	} else {
		if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
			return NULL;
		viewed = 1;
		buf = view.buf;
		len = view.len;
	}
	if (len == 0 || (size_t)len > p->bufsize) {
		PyErr_Format(PyExc_ValueError, "a queue message is 1 to %zu bytes, not %zd", p->bufsize, len);
		r = 1;
		goto out;
	}
	r = cohort_queue_send(p->q, buf, (size_t)len, 0);
	if (r == COHORT_ETIMEDOUT && ms != 0) {
		p->calls++;
		Py_BEGIN_ALLOW_THREADS
		r = cohort_queue_send(p->q, buf, (size_t)len, ms);
		Py_END_ALLOW_THREADS
		p->calls--;
	}
	if (r == COHORT_ETIMEDOUT)
		raise_code(COHORT_ETIMEDOUT, "the queue is full", NULL);
	else if (r < 0)
		raise_code(r, "cannot send on the queue", NULL);
out:
	if (viewed)
		PyBuffer_Release(&view);
	if (r != 0)
		return NULL;
	Py_RETURN_NONE;
}

/*
 * The oldest message as bytes within ms, after the report of lost
 * messages. A message already there is taken without giving up the GIL.
 * A thread that waits receives into the handle's buffer, marked busy
 * meanwhile: another thread of this process receiving then uses a buffer
 * of its own, so that two never write one buffer.
 */
static PyObject *queue_recv_bytes(PlacedObject *p, int ms)
{
	char *buf = p->buf;
	PyObject *res = NULL;
	int r;

	if (queue_check_lost(p) < 0)
		return NULL;
	if (p->buf_busy && !(buf = PyMem_RawMalloc(p->bufsize)))
		return PyErr_NoMemory();
	r = cohort_queue_recv(p->q, buf, p->bufsize, 0);
	if (r == COHORT_ETIMEDOUT && ms != 0) {
		int shared = buf == p->buf;

		p->calls++;
		p->buf_busy |= shared;
		Py_BEGIN_ALLOW_THREADS
		r = cohort_queue_recv(p->q, buf, p->bufsize, ms);
		Py_END_ALLOW_THREADS
		if (shared)
			p->buf_busy = 0;
		p->calls--;
	}
	if (r >= 0)
		res = PyBytes_FromStringAndSize(buf, r);
	else if (r == COHORT_ETIMEDOUT)
		raise_code(COHORT_ETIMEDOUT, "the queue is empty", NULL);
	else
		raise_code(r, "cannot receive from the queue", NULL);
	if (buf != p->buf)
		PyMem_RawFree(buf);
	return res;
}

static const char *const send_names[] = { "data", "timeout" };
static const char *const put_names[] = { "obj", "timeout" };

/* send(data, timeout=None) */
static PyObject *queue_send(PlacedObject *p, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[2] = { NULL, NULL };
	int ms;

	if (queue_ready(p) < 0 || fast_args("send", args, nargs, kwnames, send_names, 2, 1, a) < 0 ||
	    parse_timeout(a[1], &ms) < 0)
		return NULL;
	return queue_send_data(p, a[0], ms);
}

/* recv(timeout=None) -> bytes */
static PyObject *queue_recv(PlacedObject *p, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *t = NULL;
	int ms;

	if (queue_ready(p) < 0 || fast_args("recv", args, nargs, kwnames, timeout_names, 1, 0, &t) < 0 ||
	    parse_timeout(t, &ms) < 0)
		return NULL;
	return queue_recv_bytes(p, ms);
}

/* put(obj, timeout=None): obj pickled with the highest protocol. */
static PyObject *queue_put(PlacedObject *p, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[2] = { NULL, NULL }, *data, *res;
	int ms;

	if (queue_ready(p) < 0 || fast_args("put", args, nargs, kwnames, put_names, 2, 1, a) < 0 ||
	    parse_timeout(a[1], &ms) < 0)
		return NULL;
	data = PyObject_CallFunctionObjArgs(pickle_dumps, a[0], pickle_protocol, NULL);
	if (!data)
		return NULL;
	/* Pickling runs the object's own code, which may have closed the queue. */
	res = queue_ready(p) < 0 ? NULL : queue_send_data(p, data, ms);
	Py_DECREF(data);
	return res;
}

/* get(timeout=None) -> the next object put */
static PyObject *queue_get(PlacedObject *p, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *t = NULL, *data, *obj;
	int ms;

	if (queue_ready(p) < 0 || fast_args("get", args, nargs, kwnames, timeout_names, 1, 0, &t) < 0 ||
	    parse_timeout(t, &ms) < 0)
		return NULL;
	data = queue_recv_bytes(p, ms);
	if (!data)
		return NULL;
	obj = PyObject_CallOneArg(pickle_loads, data);
	Py_DECREF(data);
	return obj;
}

static PyObject *queue_stats(PlacedObject *p, PyObject *noargs)
{
	struct cohort_queue_stats st;

	if (queue_ready(p) < 0)
		return NULL;
	cohort_queue_stats(p->q, &st);
	return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:i}",
	                     "capacity", (unsigned long long)st.capacity,
	                     "used", (unsigned long long)st.used,
	                     "sent", (unsigned long long)st.sent,
	                     "received", (unsigned long long)st.received,
	                     "lost_send", (unsigned long long)st.lost_send,
	                     "lost_recv", (unsigned long long)st.lost_recv,
	                     "recovered", (unsigned long long)st.recovered,
	                     "last_dead", (int)st.last_dead);
}

static PyObject *queue_max_message(PlacedObject *p, PyObject *noargs)
{
	if (queue_ready(p) < 0)
		return NULL;
	return PyLong_FromSize_t(p->bufsize);
}

/*
 * _close(): drop this process's handle and its use of the segment, so
 * that the segment can be closed. Refused while another thread of this
 * process is inside a send or receive on it.
 */
static PyObject *queue_close(PlacedObject *p, PyObject *noargs)
{
	if (p->calls > 0) {
		PyErr_Format(PyExc_RuntimeError, "the queue is in use by %d other threads of this process",
		             p->calls);
		return NULL;
	}
	placed_clear(p);
	Py_RETURN_NONE;
}

static PyObject *queue_init_subclass(PyObject *cls, PyObject *noargs);

static PyMethodDef queue_methods[] = {
	{ "send", (PyCFunction)(void (*)(void))queue_send, METH_FASTCALL | METH_KEYWORDS,
	  "send(data, timeout=None): append a message (1 to max_message bytes); Timeout when\n"
	  "the queue stays full for timeout seconds." },
	{ "recv", (PyCFunction)(void (*)(void))queue_recv, METH_FASTCALL | METH_KEYWORDS,
	  "recv(timeout=None) -> bytes: take the oldest message; Timeout when none comes in\n"
	  "timeout seconds; MessagesLost (once) after messages were lost with a dead process." },
	{ "put", (PyCFunction)(void (*)(void))queue_put, METH_FASTCALL | METH_KEYWORDS,
	  "put(obj, timeout=None): send obj pickled." },
	{ "get", (PyCFunction)(void (*)(void))queue_get, METH_FASTCALL | METH_KEYWORDS,
	  "get(timeout=None): the next object put, unpickled." },
	{ "stats", (PyCFunction)queue_stats, METH_NOARGS,
	  "the queue's counters as a dict: capacity, used, sent, received, lost_send, lost_recv,\n"
	  "recovered, last_dead" },
	{ "max_message", (PyCFunction)queue_max_message, METH_NOARGS, "the longest message accepted" },
	{ "_close", (PyCFunction)queue_close, METH_NOARGS, "drop this process's handle" },
	{ "__init_subclass__", (PyCFunction)queue_init_subclass, METH_CLASS | METH_NOARGS,
	  "gives a subclass the C methods as its own, for CPython's fast calls" },
	{ NULL }
};

static PyObject *queue_init_subclass(PyObject *cls, PyObject *noargs)
{
	return bind_methods(cls, queue_methods);
}

static PyTypeObject QueueType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "cohort._cohort.QueueCore",
	.tp_basicsize = sizeof(PlacedObject),
	.tp_dealloc = (destructor)placed_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "QueueCore(segment, offset, size, init=False): a crash-safe queue in a segment.",
	.tp_methods = queue_methods,
	.tp_init = (initproc)queue_init,
	.tp_new = PyType_GenericNew,
};

static PyObject *py_queue_footprint(PyObject *self, PyObject *args)
{
	Py_ssize_t cap;

	if (!PyArg_ParseTuple(args, "n", &cap))
		return NULL;
	if (cap < 1024) {
		PyErr_SetString(PyExc_ValueError, "a queue's ring holds at least 1024 bytes");
		return NULL;
	}
	return PyLong_FromSize_t(cohort_queue_footprint((size_t)cap));
}

/* ---- module ---- */

static PyMethodDef module_methods[] = {
	{ "allocation_json", py_allocation_json, METH_NOARGS, "the allocation as cohort check --json writes it" },
	{ "check_json", py_check_json, METH_VARARGS, "check_json(workers, mem_per_worker, shm) -> cohort check --json" },
	{ "size_parse", py_size_parse, METH_VARARGS, "size_parse('4G') -> bytes" },
	{ "strerror", py_strerror, METH_VARARGS, "strerror(code) -> cohort's message" },
	{ "queue_footprint", py_queue_footprint, METH_VARARGS, "bytes a queue with a ring of n bytes needs" },
	{ "set_messages_lost", py_set_messages_lost, METH_O, "the class QueueCore raises for lost messages" },
	{ NULL }
};

static struct PyModuleDef moduledef = {
	PyModuleDef_HEAD_INIT, "_cohort",
	"libcohort for Python: allocation, plans, segments, robust locks and queues.", -1, module_methods,
};

static int add_type(PyObject *m, PyTypeObject *t, const char *name)
{
	if (PyType_Ready(t) < 0)
		return -1;
	Py_INCREF(t);
	if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
		Py_DECREF(t);
		return -1;
	}
	return 0;
}

/*
 * The exception classes: Error(message, code) carries cohort's code; the
 * Python half adds attributes (pid, count) and their docstrings.
 */
static PyObject *add_exc(PyObject *m, const char *name, PyObject *bases)
{
	char full[64];
	PyObject *e;

	snprintf(full, sizeof(full), "cohort.%s", name);
	e = PyErr_NewException(full, bases, NULL);
	if (!e)
		return NULL;
	Py_INCREF(e);
	if (PyModule_AddObject(m, name, e) < 0) {
		Py_DECREF(e);
		return NULL;
	}
	return e;
}

/* The pickle functions put and get use. Returns 0, or -1 with an exception set. */
static int load_pickle(void)
{
	PyObject *mod = PyImport_ImportModule("pickle");

	if (!mod)
		return -1;
	pickle_dumps = PyObject_GetAttrString(mod, "dumps");
	pickle_loads = PyObject_GetAttrString(mod, "loads");
	pickle_protocol = PyObject_GetAttrString(mod, "HIGHEST_PROTOCOL");
	Py_DECREF(mod);
	return pickle_dumps && pickle_loads && pickle_protocol ? 0 : -1;
}

PyMODINIT_FUNC PyInit__cohort(void);

PyMODINIT_FUNC PyInit__cohort(void)
{
	PyObject *m = PyModule_Create(&moduledef), *b;

	if (!m)
		return NULL;
	if (!(Error = add_exc(m, "Error", PyExc_Exception)))
		goto fail;
	b = PyTuple_Pack(2, Error, PyExc_MemoryError);
	NoSpace = b ? add_exc(m, "NoSpace", b) : NULL;
	Py_XDECREF(b);
	if (!NoSpace || !(PeerDead = add_exc(m, "PeerDead", Error)) ||
	    !(OwnerDead = add_exc(m, "OwnerDead", PeerDead)))
		goto fail;
	b = PyTuple_Pack(2, Error, PyExc_TimeoutError);
	Timeout = b ? add_exc(m, "Timeout", b) : NULL;
	Py_XDECREF(b);
	if (!Timeout || !(Corrupt = add_exc(m, "Corrupt", Error)) ||
	    !(BadSegment = add_exc(m, "BadSegment", Error)))
		goto fail;
	if (add_type(m, &SegmentType, "Segment") < 0 || add_type(m, &MutexType, "Mutex") < 0 ||
	    add_type(m, &BarrierType, "BarrierCore") < 0 || add_type(m, &SemType, "SemaphoreCore") < 0 ||
	    add_type(m, &QueueType, "QueueCore") < 0)
		goto fail;
	if (load_pickle() < 0)
		goto fail;
	PyModule_AddIntConstant(m, "ENOSPACE", COHORT_ENOSPACE);
	PyModule_AddIntConstant(m, "EPEERDEAD", COHORT_EPEERDEAD);
	PyModule_AddIntConstant(m, "ETIMEDOUT", COHORT_ETIMEDOUT);
	PyModule_AddIntConstant(m, "MEMBERS_MAX", COHORT_MEMBERS_MAX);
	PyModule_AddIntConstant(m, "SEG_NAME_MAX", COHORT_SEG_NAME_MAX);
	PyModule_AddStringConstant(m, "version", cohort_version());
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
