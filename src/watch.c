/*
 * watch.c - the watcher: a cohort's workers, their trees, their memory and
 * the decisions about them, as typed events (include/cohort/watch.h).
 *
 * Every tick: each live worker's process tree (children files, or a
 * cgroup's procs), statm of every member and smaps_rollup within the
 * sampler's CPU budget, then per worker a PSS estimate (last PSS + RSS
 * moved since), the leak trend on RSS, copy-on-write, the soft and hard
 * thresholds; the job's cgroup counters and memory pressure. Members are
 * indexed by pid, so a tick costs time linear in the processes.
 *
 * Copy-on-write is measured per tree, not per process. A fork copies no
 * page: parent and child share every anonymous page, and the sum of the
 * tree's Pss_Anon counts each physical page once. A write to a shared page
 * makes a new page without moving anyone's resident anonymous size; an
 * allocation moves both. So, over the tree,
 *
 *     copied = sum over processes of (Pss_Anon - Anonymous + base)
 *
 * where base is 0 for a process that began with an exec (the worker the
 * caller started, an exec'd descendant), and for a forked child its
 * anonymous size when it forked, which its first statm gives (copies do
 * not move it). The parent's pages that its children unshared are not
 * counted as its copies: its Pss_Anon and Anonymous both stay. A process
 * that exits leaves its copies counted (its private pages less what it
 * allocated), and its share of the pages it shared moves to the others,
 * which is carried until each of them has been walked again. Many minor
 * faults since a process's last walk (every copy is one) call for a fresh
 * walk, so what a process takes with it at exit is recent. Kernels before
 * 5.9 have no Pss_Anon: there each process is
 * judged alone (USS up and shared down since its baseline), which also
 * counts a parent's pages unshared by its children.
 */
#include "internal.h"
#include "../shim/crashfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MiB (1ULL << 20)
/* RSS growth between two ticks that makes sampling dense: a fast grower. */
#define FAST_GROWTH (32 * MiB)
/* At most this many fresh page walks a tick beyond the sampler's budget. */
#define REFRESH_MAX 8
/*
 * Minor faults since a process's last page walk that call for a fresh one:
 * every page copied by copy-on-write is a fault, and a process that exits
 * takes its figures with it, so the last walk must not be far behind.
 */
#define FAULTS_STALE 2048
/* Deaths of descendants told in detail per worker and kind; the rest are counted. */
#define DEATH_DETAIL 8
/* Death records of the crash shim read per tick, and over the run (the rest are only removed). */
#define EXIT_FILES_TICK 256
#define EXIT_FILES_RUN 100000
/* Identities of processes that left the trees, kept to name them when their death is told. */
#define GONE_MAX 512
/* OOM kills the kernel log told, kept until attributed. */
#define KKILL_MAX 64
/* Deaths by SIGKILL the shim told, kept for OOM attribution. */
#define KILLED_MAX 64
/*
 * How far the terms of a tree's processes may move, summed since its last
 * full walk, before all of it is walked again: a copy moves the term of
 * the copier and of every process that still shares the page, and the
 * sharers fault nothing.
 */
#define COW_MOVED (16 * MiB)

static const char *const event_names[COHORT_EVENT_KIND_MAX] = {
	[COHORT_EVENT_SPAWN] = "spawn",
	[COHORT_EVENT_SPAWN_FAILED] = "spawn_failed",
	[COHORT_EVENT_EXIT] = "exit",
	[COHORT_EVENT_WARNING] = "warning",
	[COHORT_EVENT_LIMIT] = "limit",
	[COHORT_EVENT_OOM_KILL] = "oom_kill",
	[COHORT_EVENT_LEAK] = "leak",
	[COHORT_EVENT_COW_UNSHARE] = "cow_unshare",
	[COHORT_EVENT_SLURM_RSS_RISK] = "slurm_rss_risk",
	[COHORT_EVENT_CRASH_INFO] = "crash_info",
	[COHORT_EVENT_SEGMENTS_REMOVED] = "segments_removed",
	[COHORT_EVENT_SIGNAL] = "signal",
	[COHORT_EVENT_KERNEL] = "kernel",
	[COHORT_EVENT_CHILD_EXIT] = "child_exit",
};

const char *cohort_event_name(enum cohort_event_kind kind)
{
	if ((int)kind <= 0 || kind >= COHORT_EVENT_KIND_MAX || !event_names[kind])
		return "unknown";
	return event_names[kind];
}

enum cohort_event_kind cohort_event_kind_of(const char *name)
{
	for (int k = 1; name && k < COHORT_EVENT_KIND_MAX; k++)
		if (event_names[k] && strcmp(event_names[k], name) == 0)
			return (enum cohort_event_kind)k;
	return (enum cohort_event_kind)0;
}

static const struct cohort_event_field *field_of(const struct cohort_event *ev, const char *name)
{
	for (int i = 0; i < ev->nfields; i++)
		if (strcmp(ev->fields[i].name, name) == 0)
			return &ev->fields[i];
	return NULL;
}

double cohort_event_num(const struct cohort_event *ev, const char *name, double def)
{
	const struct cohort_event_field *f = field_of(ev, name);

	if (!f)
		return def;
	switch (f->type) {
	case COHORT_FIELD_U64:  return (double)f->v.u;
	case COHORT_FIELD_I64:  return (double)f->v.i;
	case COHORT_FIELD_F64:  return f->v.f;
	case COHORT_FIELD_BOOL: return f->v.b;
	default:                return def;
	}
}

const char *cohort_event_str(const struct cohort_event *ev, const char *name)
{
	const struct cohort_event_field *f = field_of(ev, name);

	return f && f->type == COHORT_FIELD_STR ? f->s : NULL;
}

/* ---- state ---- */

/* A process of a worker's tree. */
struct member {
	pid_t pid;
	unsigned rank;
	bool seen;                 /* found in this tick's tree walk */
	bool need_base;            /* new: its baseline is set after its first statm */
	bool forked;               /* began as a fork of a member (no exec since) */
	uint64_t startstack;
	pid_t ppid;
	uint64_t anon_base;        /* anonymous bytes at fork (0 for an exec) */
	uint64_t last_anon;        /* statm anonymous (rss - file - shmem) at the last tick */
	uint64_t first_rss, last_rss; /* statm RSS when first seen, and at the last tick */
	char comm[16];             /* its command name */
	uint64_t reads;            /* page walks seen */
	uint64_t minflt_walk;      /* minor faults at the last walk */
	bool have_walk;
	bool frozen;               /* gone: its copies are counted in its worker's cow_gone */
	int64_t term;              /* Pss_Anon - Anonymous + base, at the last walk */
	uint64_t uss, anon;        /* at the last walk */
	uint64_t pss_anon;         /* at the last walk, COHORT_MEM_UNKNOWN before Linux 5.9 */
	uint64_t rise_mark;        /* its worker's cow_rise when it was last known alive */
	/* Before Pss_Anon (kernels < 5.9): a baseline per process. */
	bool have_base;
	uint64_t uss0, shared0, copied;
	/* Who it is: read when first seen, again after 1, 2, 4, ... 32 ticks (an exec, a new name). */
	struct cohort_proc_identity id;
	unsigned long ident_next, ident_gap;
};

/* A process that left the trees, or died, as it was last seen. */
struct gone {
	struct cohort_proc_identity id;
	double t;                  /* when it left */
	uint64_t last_rss;
	bool blamed;               /* an OOM kill was attributed to it */
};

/* Deaths of one kind in one worker's tree: kind 0 child_exit (sig 0: exit codes), 1 oom_kill. */
struct death {
	int kind, sig;
	uint64_t count, said;      /* how many, how many told in detail */
	struct cohort_proc_identity last;
	pid_t last_reaper;
	int last_status;
	double last_t;
	const char *evidence;      /* oom_kill: how the last victim was found (static) */
};

struct wk {
	unsigned rank;
	pid_t pid;
	bool started, running, ended, child, by_cgroup, had_procs;
	int status;
	double start, end;
	char cg[COHORT_PATH_MAX];

	unsigned nprocs;
	uint64_t rss, pss, uss, swap, shmem, shared, est;
	double pss_age;
	uint64_t prev_rss;
	uint64_t peak_rss, peak_pss, peak_uss, peak_est, peak_cg;
	int64_t cow_live;          /* the sum of its live members' terms */
	int64_t cow_gone;          /* what its exited processes left: private less allocated, signed */
	uint64_t cow_base_gone;    /* their anonymous bytes at fork: with shared_anon, the most copied */
	uint64_t cow_old;          /* per-process measure (kernels without Pss_Anon), gone processes */
	uint64_t cow_old_live;     /* the same, live processes */
	bool cow_refresh;          /* its terms moved or a process exited: walk them all again */
	uint64_t cow_moved;        /* its terms' moves, summed, since cow_refresh was last set */
	/*
	 * When a process exits, its share of the pages it still shared moves
	 * to the others' PSS, which only their next walks show: that share is
	 * carried here, less what the tree's terms rose since it was last
	 * known alive (a walk between its exit and our seeing it), and the
	 * later rises of terms pay it off, so that it never counts twice.
	 * With no live process left nobody can show it, and it stays: the
	 * exited processes' figures are from walks before their sharers left.
	 */
	int64_t cow_pending;
	uint64_t cow_rise;         /* its members' term rises, walk to walk, beyond what paid cow_pending */
	uint64_t rise_tick0;       /* cow_rise before this tick's statm reads */

	struct cohort_trend trend;
	bool soft_warned, over_warned, leak_reported, cow_reported;
	int stop_stage;            /* 0, 1 SIGTERM sent, 2 SIGKILL sent (by the caller) */
	bool oom_killed;
	struct cohort_cgevent *cgev; /* the kernel's notifications of its cgroup, or NULL */
	bool kernel_oom_said;      /* later kills in its cgroup are recorded, not said again */
	uint64_t kernel_oom_kills; /* kills the kernel notified in its cgroup */

	/*
	 * Its own cgroup, read every tick (usage and memory.stat, one read
	 * each): what the kernel charges and kills by, which copy-on-write,
	 * tmpfs pages and page cache move while the processes' RSS does not.
	 */
	int cg_version;            /* 1 or 2; 0 not told yet, -1 not a memory cgroup */
	bool has_cgu;              /* the last tick read both files */
	uint64_t cg_usage;         /* usage at the last tick */
	uint64_t cg_work;          /* usage less inactive page cache: what reclaim cannot take */
	struct cohort_cgstat cgs;  /* memory.stat at the last tick */
	bool cg_based;             /* the baseline below is set (first read) */
	uint64_t cg_anon0, cg_shmem0, cg_cache0, rss0;
	int64_t cg_cow0;           /* cg anon less allocated anon at the first read */
	uint64_t alloc_anon;       /* live members' anonymous bytes less their share at fork */
	uint64_t shared_anon;      /* live members' anonymous bytes at fork: the most they can copy */
	uint64_t cg_cow;           /* copies after fork by the cgroup's count, at the last tick */
	unsigned cg_settle;        /* ticks to hold cg_cow: a process left, its pages may still be charged */
	uint64_t cg_cow_peak;
	bool shmem_reported, cache_reported;
	uint64_t use;              /* the figure judged: the larger of est and cg_work */
	bool use_cg;               /* use is the cgroup's */
	uint64_t peak_use;
	unsigned next_child;       /* child indexes given so far */
	uint64_t oom_base;         /* its cgroup's oom_kill counter when it started */
	uint64_t oom_pending;      /* kills notified and not attributed yet */
	double oom_pending_t;      /* when the first of them was notified */
	struct death *deaths;      /* malloc'd on the first death */
	int ndeaths;
};

struct cohort_watch {
	struct cohort_watch_opts o;
	struct cohort_probe probe;
	bool has_probe;
	struct cohort_alloc alloc;
	bool has_alloc;
	char job_cg[COHORT_PATH_MAX];
	char crash_dir[COHORT_PATH_MAX];
	char oom_levels[16][COHORT_PATH_MAX];
	int noom_levels;
	uint64_t oom_kill_seen;
	double t0;

	struct wk *w;
	unsigned nw, running;
	struct member *m;
	size_t nm, cap_m;
	/* pid -> index into m + 1 (0: empty), open addressing, linear probing. */
	uint32_t *slot;
	size_t nslots;

	struct cohort_sampler *sampler;
	unsigned long ticks;
	double tick_t;             /* when the current tick began */
	double last_tick, next_tick, dense_until;
	bool total_warned, slurm_risk_warned;
	struct cohort_watch_totals tot;
	bool pss_anon_known;       /* the kernel gives Pss_Anon */

	struct cohort_event *q;
	size_t qhead, qlen, qcap;

	/* Kernel notifications: the job's cgroup and each worker's, under one epoll descriptor. */
	int epfd;
	struct cohort_cgevent *job_ev;
	uint64_t job_limit;
	bool job_oom_said;
	uint64_t job_oom_pending;  /* kills in the job's cgroup not attributed yet (no worker cgroups) */
	double job_oom_pending_t;

	/* Identities. */
	char *envbuf;              /* COHORT_ENVIRON_MAX bytes, for reading environments */
	struct gone *gone;         /* ring of GONE_MAX */
	size_t ngone, gone_head;
	/* Deaths: the shim's records, the kernel log. */
	uint64_t exit_files;       /* records read over the run */
	int kmsg;                  /* /dev/kmsg, -1 when it cannot be read */
	struct { pid_t pid; char comm[16]; char memcg[256]; double t; bool used; } kkill[KKILL_MAX];
	size_t nkkill;
	struct { struct cohort_proc_identity id; double t; bool used; } killed[KILLED_MAX];
	size_t nkilled;
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double cohort_watch_now(const struct cohort_watch *w)
{
	return mono() - w->t0;
}

static const struct cohort_probe *probe_of(const struct cohort_watch *w)
{
	return w->has_probe ? &w->probe : NULL;
}

static const char *fmt_size(uint64_t v, char *buf, size_t size)
{
	return cohort_size_format(v, buf, size);
}

/* ---- the pid index ---- */

static size_t hash_pid(pid_t pid, size_t nslots)
{
	return ((uint32_t)pid * 2654435761u) & (nslots - 1);
}

static struct member *member_find(const struct cohort_watch *w, pid_t pid)
{
	if (!w->nslots)
		return NULL;
	for (size_t i = hash_pid(pid, w->nslots);; i = (i + 1) & (w->nslots - 1)) {
		uint32_t s = w->slot[i];

		if (s == 0)
			return NULL;
		if (w->m[s - 1].pid == pid)
			return &w->m[s - 1];
	}
}

static void slot_put(struct cohort_watch *w, pid_t pid, uint32_t value)
{
	size_t i = hash_pid(pid, w->nslots);

	while (w->slot[i] != 0 && w->m[w->slot[i] - 1].pid != pid)
		i = (i + 1) & (w->nslots - 1);
	w->slot[i] = value;
}

static int index_rebuild(struct cohort_watch *w, size_t nslots)
{
	uint32_t *s = calloc(nslots, sizeof(*s));

	if (!s)
		return -ENOMEM;
	free(w->slot);
	w->slot = s;
	w->nslots = nslots;
	for (size_t k = 0; k < w->nm; k++)
		slot_put(w, w->m[k].pid, (uint32_t)k + 1);
	return 0;
}

/* Remove pid's slot, shifting later entries of its run back (no tombstones). */
static void slot_del(struct cohort_watch *w, pid_t pid)
{
	size_t i = hash_pid(pid, w->nslots), j;

	while (w->slot[i] != 0 && w->m[w->slot[i] - 1].pid != pid)
		i = (i + 1) & (w->nslots - 1);
	if (w->slot[i] == 0)
		return;
	w->slot[i] = 0;
	for (j = (i + 1) & (w->nslots - 1); w->slot[j] != 0; j = (j + 1) & (w->nslots - 1)) {
		uint32_t v = w->slot[j];
		size_t home = hash_pid(w->m[v - 1].pid, w->nslots);

		/* Move v back to i when its home is not in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			w->slot[i] = v;
			w->slot[j] = 0;
			i = j;
		}
	}
}

static struct member *member_add(struct cohort_watch *w, pid_t pid)
{
	struct member *m;

	if (w->nm == w->cap_m) {
		size_t cap = w->cap_m ? w->cap_m * 2 : 64;
		struct member *nm = realloc(w->m, cap * sizeof(*nm));

		if (!nm)
			return NULL;
		w->m = nm;
		w->cap_m = cap;
	}
	if ((w->nm + 1) * 2 > w->nslots && index_rebuild(w, w->nslots ? w->nslots * 2 : 256) < 0)
		return NULL;
	(void)cohort_sampler_add(w->sampler, pid);   /* -EEXIST: already watched, which is as good */
	m = &w->m[w->nm++];
	memset(m, 0, sizeof(*m));
	m->pid = pid;
	m->need_base = true;
	slot_put(w, pid, (uint32_t)w->nm);
	return m;
}

static void member_remove(struct cohort_watch *w, size_t k)
{
	pid_t pid = w->m[k].pid;

	cohort_sampler_remove(w->sampler, pid);
	slot_del(w, pid);
	if (k != w->nm - 1) {
		w->m[k] = w->m[w->nm - 1];
		slot_put(w, w->m[k].pid, (uint32_t)k + 1);
	}
	w->nm--;
}

/* ---- events ---- */

static struct cohort_event *ev_new(struct cohort_watch *w, enum cohort_event_kind kind,
                                   const struct wk *k, int notice)
{
	struct cohort_event *ev;

	if (w->qlen == w->qcap) {
		size_t cap = w->qcap ? w->qcap * 2 : 16;
		struct cohort_event *nq = malloc(cap * sizeof(*nq));

		if (!nq)
			return NULL;
		for (size_t i = 0; i < w->qlen; i++)
			nq[i] = w->q[(w->qhead + i) % w->qcap];
		free(w->q);
		w->q = nq;
		w->qcap = cap;
		w->qhead = 0;
	}
	ev = &w->q[(w->qhead + w->qlen++) % w->qcap];
	memset(ev, 0, offsetof(struct cohort_event, backtrace));
	ev->backtrace[0] = ev->strings[0] = '\0';
	ev->kind = kind;
	ev->t = cohort_watch_now(w);
	ev->rank = k ? (int)k->rank : -1;
	ev->pid = k ? k->pid : 0;
	ev->notice = notice;
	return ev;
}

static void ev_msg(struct cohort_event *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ev_msg(struct cohort_event *ev, const char *fmt, ...)
{
	va_list ap;

	if (!ev)
		return;
	va_start(ap, fmt);
	vsnprintf(ev->message, sizeof(ev->message), fmt, ap);
	va_end(ap);
}

static struct cohort_event_field *ev_field(struct cohort_event *ev, const char *name,
                                           enum cohort_field_type type)
{
	struct cohort_event_field *f;

	if (!ev || ev->nfields == COHORT_EVENT_FIELDS)
		return NULL;
	f = &ev->fields[ev->nfields++];
	f->name = name;
	f->type = type;
	f->s = NULL;
	return f;
}

static void ev_u64(struct cohort_event *ev, const char *name, uint64_t v)
{
	struct cohort_event_field *f = ev_field(ev, name, COHORT_FIELD_U64);

	if (f)
		f->v.u = v;
}

static void ev_i64(struct cohort_event *ev, const char *name, int64_t v)
{
	struct cohort_event_field *f = ev_field(ev, name, COHORT_FIELD_I64);

	if (f)
		f->v.i = v;
}

static void ev_f64(struct cohort_event *ev, const char *name, double v)
{
	struct cohort_event_field *f = ev_field(ev, name, COHORT_FIELD_F64);

	if (f)
		f->v.f = isfinite(v) ? v : 0;
}

static void ev_bool(struct cohort_event *ev, const char *name, int v)
{
	struct cohort_event_field *f = ev_field(ev, name, COHORT_FIELD_BOOL);

	if (f)
		f->v.b = !!v;
}

static void ev_null(struct cohort_event *ev, const char *name)
{
	ev_field(ev, name, COHORT_FIELD_NULL);
}

/* A string field, stored in the event; dropped when its storage is full. */
static void ev_str(struct cohort_event *ev, const char *name, const char *s)
{
	size_t used = 0, len = strlen(s);
	struct cohort_event_field *f;

	if (!ev)
		return;
	for (int i = 0; i < ev->nfields; i++)
		if (ev->fields[i].type == COHORT_FIELD_STR)
			used += strlen(ev->fields[i].s) + 1;
	if (used + len + 1 > sizeof(ev->strings))
		return;
	f = ev_field(ev, name, COHORT_FIELD_STR);
	if (!f)
		return;
	memcpy(ev->strings + used, s, len + 1);
	f->s = ev->strings + used;
}

int cohort_watch_next_event(struct cohort_watch *w, struct cohort_event *ret)
{
	const struct cohort_event *ev;
	ptrdiff_t delta;

	if (!w->qlen)
		return 0;
	ev = &w->q[w->qhead];
	*ret = *ev;
	/* The string fields point into the copy's own storage. */
	delta = ret->strings - ev->strings;
	for (int i = 0; i < ret->nfields; i++)
		if (ret->fields[i].type == COHORT_FIELD_STR && ret->fields[i].s)
			ret->fields[i].s += delta;
	w->qhead = (w->qhead + 1) % w->qcap;
	w->qlen--;
	return 1;
}

int cohort_watch_note(struct cohort_watch *w, enum cohort_event_kind kind, int rank, int notice,
                      const char *message)
{
	struct cohort_event *ev;

	if (rank >= (int)w->nw)
		return -ERANGE;
	ev = ev_new(w, kind, rank >= 0 ? &w->w[rank] : NULL, notice);
	if (!ev)
		return -ENOMEM;
	ev_msg(ev, "%s", message);
	return 0;
}

/* ---- create ---- */

/* The cgroups from the watcher's own up to the job's: v1 counts an OOM kill only where the limit was hit. */
static void find_oom_levels(struct cohort_watch *w)
{
	const struct cohort_probe *probe = probe_of(w);
	struct cohort_cgmem cg;
	char dir[COHORT_PATH_MAX];
	size_t jlen = strlen(w->job_cg);

	if (!w->job_cg[0] || cohort_cgroup_read(probe, w->job_cg, &cg) < 0) {
		w->job_cg[0] = '\0';
		return;
	}
	if (cohort_cgroup_of_pid(probe, 0, dir, sizeof(dir), NULL) == 0 &&
	    strncmp(dir, w->job_cg, jlen) == 0 && (dir[jlen] == '/' || dir[jlen] == '\0')) {
		while (w->noom_levels < 16) {
			char *slash;

			cohort__strlcpy(w->oom_levels[w->noom_levels++], dir, COHORT_PATH_MAX);
			if (strlen(dir) <= jlen || !(slash = strrchr(dir, '/')))
				break;
			*slash = '\0';
		}
	} else {
		cohort__strlcpy(w->oom_levels[w->noom_levels++], w->job_cg, COHORT_PATH_MAX);
	}
}

static uint64_t oom_kills(const struct cohort_watch *w)
{
	struct cohort_cgmem cg;
	uint64_t n = 0;

	for (int i = 0; i < w->noom_levels; i++)
		if (cohort_cgroup_read(probe_of(w), w->oom_levels[i], &cg) == 0)
			n += cg.oom_kill;
	return n;
}

/* Add a cgroup's notifications to the watcher's epoll set; k NULL for the job's. */
static void watch_fd(struct cohort_watch *w, struct cohort_cgevent *ev, struct wk *k)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = k ? (void *)k : (void *)w };

	if (w->epfd >= 0)
		(void)epoll_ctl(w->epfd, EPOLL_CTL_ADD, cohort_cgevent_fd(ev), &e);
}

int cohort_watch_create(const struct cohort_watch_opts *opts, struct cohort_watch **ret)
{
	struct cohort_sampler_opts so = { 0 };
	struct cohort_watch *w;
	int r;

	if (!opts || opts->workers == 0 || opts->workers > 65536 || opts->soft < 0 || opts->soft > 1 ||
	    opts->interval < 0 || opts->pss_budget < 0 || opts->pss_budget > 1 ||
	    opts->dense_interval < 0 || opts->dense_window < 0)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->epfd = -1;
	w->kmsg = -1;
	w->o = *opts;
	if (!w->o.soft)
		w->o.soft = 0.9;
	if (!w->o.interval)
		w->o.interval = 1;
	if (!w->o.pss_budget)
		w->o.pss_budget = 0.006;
	if (!w->o.dense_interval)
		w->o.dense_interval = w->o.interval < 0.1 ? w->o.interval : 0.1;
	if (w->o.dense_interval > w->o.interval)
		w->o.dense_interval = w->o.interval;
	if (!w->o.dense_window)
		w->o.dense_window = 2;
	if (opts->probe) {
		w->probe = *opts->probe;
		w->has_probe = true;
	}
	w->o.probe = NULL;
	if (opts->alloc) {
		w->alloc = *opts->alloc;
		w->has_alloc = true;
	}
	w->o.alloc = NULL;
	if (opts->job_cgroup)
		cohort__strlcpy(w->job_cg, opts->job_cgroup, sizeof(w->job_cg));
	if (opts->crash_dir)
		cohort__strlcpy(w->crash_dir, opts->crash_dir, sizeof(w->crash_dir));
	w->o.job_cgroup = w->o.crash_dir = NULL;
	w->t0 = mono();
	w->tot.t = -1;
	w->nw = opts->workers;
	w->w = calloc(w->nw, sizeof(*w->w));
	so.cpu_budget = w->o.pss_budget;
	so.probe = probe_of(w);
	if (!w->w || (r = cohort_sampler_create(&so, &w->sampler)) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned k = 0; k < w->nw; k++) {
		w->w[k].rank = k;
		w->w[k].status = -1;
		cohort_trend_init(&w->w[k].trend, 0);
	}
	find_oom_levels(w);
	w->oom_kill_seen = oom_kills(w);
	/*
	 * The kernel log names the OOM killer's victims. Only records from now
	 * on are of this job: seek to the end. Reading it may be refused
	 * (kernel.dmesg_restrict); then victims are found otherwise.
	 */
	if (!w->has_probe || !w->probe.proc_root) {
		w->kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (w->kmsg >= 0 && lseek(w->kmsg, 0, SEEK_END) < 0) {
			close(w->kmsg);
			w->kmsg = -1;
		}
	}
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->job_cg[0] && w->epfd >= 0) {
		struct cohort_cgmem cg;
		uint64_t thr = 0;

		/* Notified at the soft share of the job's limit: sampling turns dense there. */
		if (cohort_cgroup_read(probe_of(w), w->job_cg, &cg) == 0 && cg.limit && cg.limit < (1ULL << 62)) {
			w->job_limit = cg.limit;
			thr = (uint64_t)(w->o.soft * (double)cg.limit);
		}
		if (cohort_cgevent_open(probe_of(w), w->job_cg, thr, &w->job_ev) == 0)
			watch_fd(w, w->job_ev, NULL);
	}
	*ret = w;
	return 0;
fail:
	cohort_watch_free(w);
	return r;
}

void cohort_watch_free(struct cohort_watch *w)
{
	if (!w)
		return;
	for (unsigned r = 0; w->w && r < w->nw; r++) {
		cohort_cgevent_close(w->w[r].cgev);
		free(w->w[r].deaths);
	}
	if (w->kmsg >= 0)
		close(w->kmsg);
	free(w->envbuf);
	free(w->gone);
	cohort_cgevent_close(w->job_ev);
	if (w->epfd >= 0)
		close(w->epfd);
	cohort_sampler_free(w->sampler);
	free(w->m);
	free(w->slot);
	free(w->w);
	free(w->q);
	free(w);
}

/* ---- starting and stopping ---- */

static int start_common(struct cohort_watch *w, unsigned rank, struct wk **ret)
{
	struct wk *k;

	if (rank >= w->nw)
		return -ERANGE;
	k = &w->w[rank];
	if (k->running)
		return -EBUSY;
	k->started = k->running = true;
	k->ended = false;
	k->status = -1;
	k->start = cohort_watch_now(w);
	cohort_trend_init(&k->trend, k->start);
	k->cg_version = 0;
	k->has_cgu = k->cg_based = k->use_cg = false;
	k->cg_cow = k->cg_cow_peak = k->use = k->peak_use = 0;
	k->cg_settle = 0;
	k->shmem_reported = k->cache_reported = false;
	w->running++;
	if (w->dense_until < k->start + w->o.dense_window)
		w->dense_until = k->start + w->o.dense_window;
	if (w->next_tick > k->start + w->o.dense_interval || w->ticks == 0)
		w->next_tick = k->start;
	*ret = k;
	return 0;
}

/* A worker with a cgroup of its own: the kernel tells of its OOM kills and of its soft threshold. */
static void open_worker_events(struct cohort_watch *w, struct wk *k)
{
	uint64_t thr = w->o.mem_per_worker ? (uint64_t)(w->o.soft * (double)w->o.mem_per_worker) : 0;

	cohort_cgevent_close(k->cgev);
	k->cgev = NULL;
	if (k->cg[0] && w->epfd >= 0 && cohort_cgevent_open(probe_of(w), k->cg, thr, &k->cgev) == 0)
		watch_fd(w, k->cgev, k);
}

int cohort_watch_start(struct cohort_watch *w, unsigned rank, pid_t pid, const char *cgroup_dir,
                       int flags)
{
	struct cohort_event *ev;
	struct wk *k;
	int r;

	if (pid <= 0)
		return -EINVAL;
	if ((r = start_common(w, rank, &k)) < 0)
		return r;
	k->pid = pid;
	k->child = flags & COHORT_WATCH_CHILD;
	k->by_cgroup = false;
	k->cg[0] = '\0';
	k->oom_base = 0;
	if (cgroup_dir) {
		struct cohort_cgmem cg;

		cohort__strlcpy(k->cg, cgroup_dir, sizeof(k->cg));
		/* Kills counted before it started (a cgroup reused) are not its. */
		if (cohort_cgroup_read(probe_of(w), k->cg, &cg) == 0)
			k->oom_base = cg.oom_kill;
	}
	open_worker_events(w, k);
	ev = ev_new(w, COHORT_EVENT_SPAWN, k, 0);
	ev_msg(ev, "rank %u started as pid %d", rank, (int)pid);
	return ev ? 0 : -ENOMEM;
}

int cohort_watch_start_cgroup(struct cohort_watch *w, unsigned rank, const char *dir)
{
	struct cohort_cgmem cg;
	struct cohort_event *ev;
	struct wk *k;
	int r;

	if (!dir)
		return -EINVAL;
	if ((r = cohort_cgroup_read(probe_of(w), dir, &cg)) < 0)
		return r;
	if ((r = start_common(w, rank, &k)) < 0)
		return r;
	k->pid = 0;
	k->child = false;
	k->by_cgroup = true;
	k->had_procs = false;
	k->oom_base = cg.oom_kill;
	cohort__strlcpy(k->cg, cg.dir, sizeof(k->cg));
	open_worker_events(w, k);
	ev = ev_new(w, COHORT_EVENT_SPAWN, k, 0);
	ev_msg(ev, "rank %u is the processes of cgroup %s", rank, k->cg);
	return ev ? 0 : -ENOMEM;
}

int cohort_watch_spawn_failed(struct cohort_watch *w, unsigned rank, pid_t pid, const char *command,
                              int errnum)
{
	struct cohort_event *ev;

	if (rank >= w->nw)
		return -ERANGE;
	w->w[rank].pid = pid;
	ev = ev_new(w, COHORT_EVENT_SPAWN_FAILED, &w->w[rank], 0);
	ev_msg(ev, "cannot run '%s': %s", command ? command : "?", strerror(errnum));
	ev_i64(ev, "errno", errnum);
	return ev ? 0 : -ENOMEM;
}

int cohort_watch_stopping(struct cohort_watch *w, unsigned rank, int kill_)
{
	if (rank >= w->nw)
		return -ERANGE;
	if (w->w[rank].stop_stage < (kill_ ? 2 : 1))
		w->w[rank].stop_stage = kill_ ? 2 : 1;
	return 0;
}

unsigned cohort_watch_running(const struct cohort_watch *w)
{
	return w->running;
}

/* ---- identities ---- */

/*
 * Who m is, from its stat, cmdline and environ: on first sight (a child
 * index below its worker's root), then again after 1, 2, 4, ... 32 ticks,
 * since a fork that execs, or renames itself (stress-ng-vm, a pool
 * worker's setproctitle), or an MPI rank whose launcher set the rank
 * before the exec, is only itself a little later.
 */
static void member_ident(struct cohort_watch *w, struct wk *k, struct member *m, bool first)
{
	struct cohort_proc_identity id;
	unsigned child = first ? 0 : m->id.child;

	if (first) {
		memset(&m->id, 0, sizeof(m->id));
		m->id.pid = m->pid;
		m->id.ppid = m->ppid;
		m->id.mpi_rank = m->id.slurm_procid = m->id.slurm_localid = -1;
		memcpy(m->id.comm, m->comm, sizeof(m->comm));
		if (m->pid != k->pid || k->by_cgroup)
			child = ++k->next_child;
		m->ident_gap = 1;
	}
	m->id.rank = (int)k->rank;
	m->id.child = child;
	if (!w->envbuf && !(w->envbuf = malloc(COHORT_ENVIRON_MAX)))
		return;
	if (cohort__proc_identity(probe_of(w), m->pid, w->envbuf, COHORT_ENVIRON_MAX, &id) == 0) {
		id.rank = (int)k->rank;
		id.child = child;
		/*
		 * What was once read stays when a later read finds nothing: a
		 * zombie's cmdline and environ are empty, a setuid exec's refused.
		 */
		if (id.mpi_rank < 0)
			id.mpi_rank = m->id.mpi_rank;
		if (id.slurm_procid < 0)
			id.slurm_procid = m->id.slurm_procid;
		if (id.slurm_localid < 0)
			id.slurm_localid = m->id.slurm_localid;
		if (!id.cmdline[0])
			memcpy(id.cmdline, m->id.cmdline, sizeof(id.cmdline));
		m->id = id;
		memcpy(m->comm, id.comm, sizeof(m->comm));
	}
	m->ident_next = w->ticks + m->ident_gap;
	m->ident_gap = m->ident_gap >= 32 ? 0 : m->ident_gap * 2;
}

/* A member leaves the trees: its identity is kept a while, to name it when its death is told. */
static void gone_push(struct cohort_watch *w, const struct member *m)
{
	struct gone *g;

	if (!w->gone && !(w->gone = calloc(GONE_MAX, sizeof(*w->gone))))
		return;
	g = &w->gone[w->gone_head];
	w->gone_head = (w->gone_head + 1) % GONE_MAX;
	if (w->ngone < GONE_MAX)
		w->ngone++;
	g->id = m->id;
	g->t = w->tick_t;
	g->last_rss = m->last_rss;
	g->blamed = false;
}

/* The newest gone record of pid, or NULL. */
static struct gone *gone_find(struct cohort_watch *w, pid_t pid)
{
	for (size_t i = 0; i < w->ngone; i++) {
		struct gone *g = &w->gone[(w->gone_head + GONE_MAX - 1 - i) % GONE_MAX];

		if (g->id.pid == pid)
			return g;
	}
	return NULL;
}

/* pid's identity: a member's, else the last one seen of a process that left. NULL: never seen. */
static const struct cohort_proc_identity *ident_of(struct cohort_watch *w, pid_t pid)
{
	const struct member *m = member_find(w, pid);
	const struct gone *g;

	if (m && m->id.pid == pid)
		return &m->id;
	g = gone_find(w, pid);
	return g ? &g->id : NULL;
}

/* The fields that name a process in an event. */
static void ev_process(struct cohort_event *ev, const struct cohort_proc_identity *id)
{
	char cmd[160];

	ev_i64(ev, "process_pid", id->pid);
	ev_str(ev, "process", id->comm[0] ? id->comm : "?");
	/* The event's strings are few hundred bytes: a long command line is cut. */
	cohort__strlcpy(cmd, id->cmdline, sizeof(cmd));
	if (cmd[0])
		ev_str(ev, "process_cmdline", cmd);
	if (id->mpi_rank >= 0)
		ev_i64(ev, "process_mpi_rank", id->mpi_rank);
	if (id->slurm_procid >= 0)
		ev_i64(ev, "process_slurm_procid", id->slurm_procid);
	if (id->child)
		ev_i64(ev, "process_child", id->child);
}


/* ---- trees ---- */

static uint64_t known(uint64_t v)
{
	return v == COHORT_MEM_UNKNOWN ? 0 : v;
}

/* Page cache other than shmem: v1 cache and v2 file both count shmem too. */
static uint64_t page_cache(const struct cohort_cgstat *cs)
{
	return known(cs->file) > known(cs->shmem) ? known(cs->file) - known(cs->shmem) : 0;
}

/* The anonymous bytes statm sees: resident less file and shmem pages. */
static uint64_t statm_anon(const struct cohort_statm *st)
{
	return st->rss > st->shared ? st->rss - st->shared : 0;
}

/*
 * What a process that leaves the tree leaves behind, at its last walk:
 * its private pages less what it allocated since fork. Signed: a parent
 * whose own pages its children still share holds fewer private pages
 * than it allocated, and the difference is in the children's terms.
 */
static int64_t member_frozen(const struct member *m)
{
	uint64_t grown;

	if (!m->have_walk || m->anon == COHORT_MEM_UNKNOWN)
		return 0;
	grown = m->anon > m->anon_base ? m->anon - m->anon_base : 0;
	return (int64_t)m->uss - (int64_t)grown;
}

/*
 * A process of k's tree exited. Its term was its private pages less its
 * allocations plus its share of the pages it shared: the first stays
 * counted, the second moves to the sharers' PSS and is carried until
 * their walks show it (see cow_pending), less what their terms already
 * rose since its last walk. A worker that ended keeps the figures of its
 * end: the processes it leaves are forgotten uncounted.
 */
static void member_freeze(struct cohort_watch *w, struct wk *k, struct member *m)
{
	uint64_t share, rose;

	if (m->frozen)
		return;
	m->frozen = true;
	if (!k->running)
		return;
	/*
	 * Its allocations left the tree's sum now, its pages leave the cgroup
	 * when the kernel has freed them (an OOM victim's a moment later):
	 * until then the cgroup's anon less the allocations would count them
	 * as copies. Hold the count for this tick and the next two.
	 */
	k->cg_settle = 3;
	k->cow_old += m->copied;
	if (!m->have_walk || m->pss_anon == COHORT_MEM_UNKNOWN || m->anon == COHORT_MEM_UNKNOWN)
		return;
	k->cow_gone += member_frozen(m);
	k->cow_base_gone += m->anon_base;
	share = m->pss_anon > m->uss ? m->pss_anon - m->uss : 0;
	rose = k->cow_rise - m->rise_mark;
	if (share > rose)
		k->cow_pending += (int64_t)(share - rose);
	k->cow_refresh = true;   /* walk the others at once: their terms take the share */
}

static void end_worker(struct cohort_watch *w, struct wk *k, int status);
static void collect_exits(struct cohort_watch *w, size_t max);
static void resolve_oom(struct cohort_watch *w, struct wk *k, bool final);

static void track_trees(struct cohort_watch *w)
{
	const struct cohort_probe *probe = probe_of(w);

	for (size_t i = 0; i < w->nm; i++)
		w->m[i].seen = false;
	for (unsigned r = 0; r < w->nw; r++) {
		struct wk *k = &w->w[r];
		pid_t *pids = NULL;
		size_t n = 0;
		int e;

		if (!k->running)
			continue;
		if (k->by_cgroup)
			e = cohort_pids_cgroup(probe, k->cg, &pids, &n);
		else
			/* Children forked by a worker's other threads: looked for every tenth tick. */
			e = cohort_pids_tree(probe, k->pid, w->ticks % 10 == 0 ? COHORT_TREE_ALL_THREADS : 0,
			                     &pids, &n);
		if (e < 0) {
			/* The root is gone: for a worker that is not the caller's child, that is its end. */
			if (!k->child && (e == -ESRCH || e == -ENOENT))
				end_worker(w, k, -1);
			continue;
		}
		if (k->by_cgroup) {
			if (n)
				k->had_procs = true;
			else if (k->had_procs) {
				end_worker(w, k, -1);
				cohort_pids_free(pids);
				continue;
			}
		}
		for (size_t i = 0; i < n; i++) {
			struct member *m = member_find(w, pids[i]);

			if (m && m->rank != r && m->seen)
				continue;   /* already another worker's this tick */
			if (!m) {
				struct cohort__stat st;

				m = member_add(w, pids[i]);
				if (!m)
					break;
				if (cohort__proc_stat(cohort__proc_root(probe), pids[i], &st) == 0) {
					struct member *parent = member_find(w, st.ppid);

					m->ppid = st.ppid;
					m->startstack = st.startstack;
					memcpy(m->comm, st.comm, sizeof(m->comm));
					m->forked = parent && pids[i] != k->pid && st.startstack != 0 &&
					            parent->startstack == st.startstack;
				}
				m->rank = r;
				member_ident(w, k, m, true);
			} else if (w->ticks >= m->ident_next && m->ident_gap) {
				member_ident(w, k, m, false);
			}
			m->rank = r;
			m->seen = true;
		}
		cohort_pids_free(pids);
	}
	/* Forget processes that left every tree; what they copied stays counted. */
	for (size_t i = 0; i < w->nm;) {
		struct member *m = &w->m[i];

		if (m->seen) {
			i++;
			continue;
		}
		member_freeze(w, &w->w[m->rank], m);
		gone_push(w, m);
		member_remove(w, i);
	}
}

/* ---- one sample ---- */

/*
 * In a tree of several processes, the one whose RSS grew most since it was
 * first seen, when that is not the worker's root: the pool or DataLoader
 * worker, the MPI rank that did it. Named in the event (fields and
 * message); returns 1 when there is one.
 */
/*
 * The figure a decision was taken on: est_bytes, the larger of the PSS
 * estimate and the worker cgroup's usage less its inactive page cache, and
 * which it was (source "cgroup" or "estimate"), with both beside it.
 */
static void used_fields(struct cohort_event *ev, const struct wk *k)
{
	ev_u64(ev, "est_bytes", k->use);
	ev_str(ev, "source", k->use_cg ? "cgroup" : "estimate");
	ev_u64(ev, "pss_est_bytes", k->est);
	if (k->has_cgu)
		ev_u64(ev, "cgroup_bytes", k->cg_work);
}

/*
 * What grew in a worker's cgroup that its processes' RSS does not show,
 * each kind said once (a cow_unshare event, kind_of_growth): anonymous
 * pages beyond what the processes allocated are copies after fork;
 * shmem is tmpfs and /dev/shm files (and shared anonymous mappings)
 * charged to the worker; page cache is said only when the cgroup is near
 * its limit, since the kernel reclaims it before it kills.
 */
static void check_cgroup_growth(struct cohort_watch *w, struct wk *k, uint64_t min)
{
	uint64_t limit = w->o.mem_per_worker, shmem, cache;
	struct cohort_event *ev;
	char a[32], b[32], c[32], d[32], e[32];

	if (!k->has_cgu)
		return;
	if (!k->cow_reported && k->cg_cow >= min) {
		k->cow_reported = true;
		ev = ev_new(w, COHORT_EVENT_COW_UNSHARE, k, 1);
		ev_str(ev, "kind_of_growth", "cow");
		ev_str(ev, "source", "cgroup");
		ev_u64(ev, "copied_bytes", k->cg_cow);
		ev_u64(ev, "cgroup_usage_bytes", k->cg_usage);
		ev_u64(ev, "cgroup_anon_bytes", k->cgs.anon);
		ev_u64(ev, "cgroup_shmem_bytes", known(k->cgs.shmem));
		ev_u64(ev, "cgroup_file_bytes", known(k->cgs.file));
		ev_u64(ev, "anon_growth_bytes", k->cgs.anon > k->cg_anon0 ? k->cgs.anon - k->cg_anon0 : 0);
		ev_u64(ev, "allocated_bytes", k->alloc_anon);
		ev_u64(ev, "rss_sum_bytes", k->rss);
		ev_i64(ev, "nprocs", k->nprocs);
		ev_msg(ev, "rank %u (pid %d): its cgroup holds %s of anonymous memory, %s more than its "
		       "processes allocated, while their RSS sum is %s: pages shared after fork are being "
		       "copied by writes (copy-on-write), which the kernel charges to the worker and RSS "
		       "does not show. Not a leak: share the data through a segment or arrays rather than "
		       "objects, load it after forking, or start workers with spawn",
		       k->rank, (int)k->pid, fmt_size(k->cgs.anon, a, sizeof(a)),
		       fmt_size(k->cg_cow, b, sizeof(b)), fmt_size(k->rss, c, sizeof(c)));
	}
	shmem = known(k->cgs.shmem);
	/* Grown since the first sample, which may come after the first writes. */
	/*
	 * Worth a word only when it weighs against the limit: a tenth of it,
	 * or the cgroup near it. 50 MiB of segments under a 22 GiB limit is
	 * how shared memory should be used, not a problem.
	 */
	if (!k->shmem_reported && shmem >= min && shmem >= k->cg_shmem0 + MiB && limit &&
	    (shmem >= limit / 10 || (double)k->cg_usage >= w->o.soft * (double)limit)) {
		k->shmem_reported = true;
		ev = ev_new(w, COHORT_EVENT_COW_UNSHARE, k, 1);
		ev_str(ev, "kind_of_growth", "shmem");
		ev_str(ev, "source", "cgroup");
		ev_u64(ev, "cgroup_shmem_bytes", shmem);
		ev_u64(ev, "shmem_growth_bytes", shmem - k->cg_shmem0);
		ev_u64(ev, "cgroup_usage_bytes", k->cg_usage);
		ev_u64(ev, "cgroup_anon_bytes", k->cgs.anon);
		ev_u64(ev, "cgroup_file_bytes", known(k->cgs.file));
		ev_u64(ev, "rss_sum_bytes", k->rss);
		ev_u64(ev, "limit_bytes", limit);
		if (w->tot.has_shm) {
			ev_u64(ev, "shm_size_bytes", w->tot.shm_size);
			ev_u64(ev, "shm_free_bytes", w->tot.shm_free);
		}
		ev_msg(ev, "rank %u (pid %d): %s of shared memory (files in /dev/shm or another tmpfs, "
		       "shared anonymous mappings) is charged to its cgroup (%s at its first sample); it "
		       "counts against the worker's %s limit whether or not a process still maps it",
		       k->rank, (int)k->pid, fmt_size(shmem, a, sizeof(a)),
		       fmt_size(k->cg_shmem0, b, sizeof(b)),
		       limit ? fmt_size(limit, c, sizeof(c)) : "(none set)");
	}
	cache = page_cache(&k->cgs);
	if (!k->cache_reported && limit && cache >= min &&
	    (double)k->cg_usage >= w->o.soft * (double)limit) {
		k->cache_reported = true;
		ev = ev_new(w, COHORT_EVENT_COW_UNSHARE, k, 0);
		ev_str(ev, "kind_of_growth", "page_cache");
		ev_str(ev, "source", "cgroup");
		ev_u64(ev, "page_cache_bytes", cache);
		ev_u64(ev, "page_cache_growth_bytes", cache - k->cg_cache0);
		ev_u64(ev, "inactive_file_bytes", known(k->cgs.inactive_file));
		ev_u64(ev, "active_file_bytes", known(k->cgs.active_file));
		ev_u64(ev, "cgroup_usage_bytes", k->cg_usage);
		ev_u64(ev, "cgroup_bytes", k->cg_work);
		ev_u64(ev, "cgroup_anon_bytes", k->cgs.anon);
		ev_u64(ev, "rss_sum_bytes", k->rss);
		ev_u64(ev, "limit_bytes", limit);
		ev_msg(ev, "rank %u (pid %d): its cgroup's usage, %s of its %s limit, includes %s of page "
		       "cache (files read or written), %s of it inactive; the kernel reclaims page cache "
		       "before it kills, so it counts against the limit only when it cannot be dropped "
		       "(%s without the inactive part)", k->rank, (int)k->pid,
		       fmt_size(k->cg_usage, a, sizeof(a)), fmt_size(limit, b, sizeof(b)),
		       fmt_size(cache, c, sizeof(c)), fmt_size(known(k->cgs.inactive_file), d, sizeof(d)),
		       fmt_size(k->cg_work, e, sizeof(e)));
	}
}

static int name_grower(const struct cohort_watch *w, const struct wk *k, struct cohort_event *ev)
{
	const struct member *best = NULL;
	char a[32], who[160];
	size_t len;

	/* A cgroup's worker (a SLURM task) has no root process: its one process is named too. */
	if (!ev || (k->nprocs < 2 && k->pid > 0))
		return 0;
	for (size_t i = 0; i < w->nm; i++) {
		const struct member *m = &w->m[i];

		if (m->rank == k->rank && !m->frozen && m->last_rss > m->first_rss &&
		    (!best || m->last_rss - m->first_rss > best->last_rss - best->first_rss))
			best = m;
	}
	if (!best || best->pid == k->pid || best->last_rss - best->first_rss < 16 * MiB)
		return 0;
	ev_process(ev, &best->id);
	ev_u64(ev, "process_growth_bytes", best->last_rss - best->first_rss);
	len = strlen(ev->message);
	snprintf(ev->message + len, sizeof(ev->message) - len, "; most of it is %s, a process it "
	         "started, which grew by %s", cohort_proc_identity_describe(&best->id, who, sizeof(who)),
	         fmt_size(best->last_rss - best->first_rss, a, sizeof(a)));
	return 1;
}

static void check_worker(struct cohort_watch *w, struct wk *k, double t)
{
	const struct cohort_watch_opts *o = &w->o;
	char a[32], b[32], c[32], d[32];
	struct cohort_event *ev;
	struct cohort_leak leak;
	uint64_t cow_min;

	/* Leak: the floor of the tree's RSS rises (copy-on-write does not move RSS). */
	cohort_trend_add(&k->trend, t, k->rss);
	if (!k->leak_reported && cohort_trend_leak(&k->trend, NULL, &leak)) {
		double eta = o->mem_per_worker && k->use < o->mem_per_worker ?
		             (double)(o->mem_per_worker - k->use) / leak.rate : 0;

		k->leak_reported = true;
		ev = ev_new(w, COHORT_EVENT_LEAK, k, 1);
		ev_f64(ev, "rate_bytes_per_s", leak.rate);
		ev_f64(ev, "window_s", leak.window);
		ev_u64(ev, "floor_first_bytes", leak.floor_first);
		ev_u64(ev, "floor_last_bytes", leak.floor_last);
		ev_u64(ev, "current_bytes", k->use);
		ev_str(ev, "source", k->use_cg ? "cgroup" : "estimate");
		ev_u64(ev, "budget_bytes", o->mem_per_worker);
		ev_f64(ev, "eta_s", eta);
		if (o->mem_per_worker)
			ev_msg(ev, "rank %u (pid %d) is leaking: its memory floor rose from %s to %s in %.0f s "
			       "(%s/s); at this rate it reaches its %s budget in %.0f s",
			       k->rank, (int)k->pid, fmt_size(leak.floor_first, a, sizeof(a)),
			       fmt_size(leak.floor_last, b, sizeof(b)), leak.window,
			       fmt_size((uint64_t)leak.rate, c, sizeof(c)),
			       fmt_size(o->mem_per_worker, d, sizeof(d)), eta);
		else
			ev_msg(ev, "rank %u (pid %d) is leaking: its memory floor rose from %s to %s in %.0f s "
			       "(%s/s)", k->rank, (int)k->pid, fmt_size(leak.floor_first, a, sizeof(a)),
			       fmt_size(leak.floor_last, b, sizeof(b)), leak.window,
			       fmt_size((uint64_t)leak.rate, c, sizeof(c)));
		name_grower(w, k, ev);
	}

	/*
	 * Copy-on-write: said once it is worth a mention; the figure at the
	 * end is in the exit event. With a cgroup of its own, the kernel's
	 * count says it (and tells shared memory and page cache apart);
	 * without, the page walks do.
	 */
	cow_min = k->use / 10 > 16 * MiB ? k->use / 10 : 16 * MiB;
	if (k->cg_based) {
		check_cgroup_growth(w, k, cow_min);
	} else {
		struct cohort_worker_state st;

		cohort_watch_worker(w, k->rank, &st);
		if (!k->cow_reported && st.cow_copied >= cow_min) {
			k->cow_reported = true;
			ev = ev_new(w, COHORT_EVENT_COW_UNSHARE, k, 1);
			ev_str(ev, "kind_of_growth", "cow");
			ev_str(ev, "source", "estimate");
			ev_u64(ev, "copied_bytes", st.cow_copied);
			ev_u64(ev, "rss_sum_bytes", k->rss);
			ev_i64(ev, "nprocs", k->nprocs);
			ev_msg(ev, "rank %u (pid %d): %s of pages shared after fork have been copied by writes "
			       "(copy-on-write), and counting; its processes' private memory grows while their "
			       "RSS does not. Not a leak: share the data through a segment or arrays rather than "
			       "objects, load it after forking, or start workers with spawn",
			       k->rank, (int)k->pid, fmt_size(st.cow_copied, a, sizeof(a)));
		}
	}

	/* Thresholds on the worker's share. */
	if (o->mem_per_worker && k->use > o->mem_per_worker && o->enforce == COHORT_ENFORCE_WATCH &&
	    !k->stop_stage) {
		ev = ev_new(w, COHORT_EVENT_LIMIT, k, 1);
		if (!ev)
			return;   /* out of memory: decided again at the next tick */
		ev->action = COHORT_ACTION_STOP;
		ev_str(ev, "action", "stop");
		used_fields(ev, k);
		ev_u64(ev, "limit_bytes", o->mem_per_worker);
		ev_msg(ev, "rank %u (pid %d) uses %s, above its %s budget: stopped by cohort (SIGTERM, "
		       "then SIGKILL after %.0f s) before the kernel's OOM killer picks a victim",
		       k->rank, (int)k->pid, fmt_size(k->use, a, sizeof(a)),
		       fmt_size(o->mem_per_worker, b, sizeof(b)), o->grace);
		name_grower(w, k, ev);
		k->stop_stage = 1;
	} else if (o->mem_per_worker && k->use > o->mem_per_worker && o->enforce == COHORT_ENFORCE_NONE &&
	           !k->over_warned) {
		/* Nothing is stopped: said once, with the figures, for the findings to quote. */
		k->over_warned = k->soft_warned = true;
		ev = ev_new(w, COHORT_EVENT_WARNING, k, 1);
		used_fields(ev, k);
		ev_u64(ev, "limit_bytes", o->mem_per_worker);
		ev_bool(ev, "over", 1);
		ev_msg(ev, "rank %u (pid %d) uses %s, above its %s budget; not stopped (--enforce none)",
		       k->rank, (int)k->pid, fmt_size(k->use, a, sizeof(a)),
		       fmt_size(o->mem_per_worker, b, sizeof(b)));
	} else if (o->mem_per_worker && !k->soft_warned && k->use > o->soft * (double)o->mem_per_worker) {
		k->soft_warned = true;
		ev = ev_new(w, COHORT_EVENT_WARNING, k, 1);
		used_fields(ev, k);
		ev_u64(ev, "limit_bytes", o->mem_per_worker);
		ev_msg(ev, "rank %u (pid %d) uses %s, %.0f%% of its %s budget", k->rank, (int)k->pid,
		       fmt_size(k->use, a, sizeof(a)), 100.0 * (double)k->use / (double)o->mem_per_worker,
		       fmt_size(o->mem_per_worker, b, sizeof(b)));
	}
}

/* The budget as a whole: stop the largest worker before the kernel kills one at random. */
static void check_budget(struct cohort_watch *w, uint64_t use_sum)
{
	const struct cohort_watch_opts *o = &w->o;
	uint64_t staying = 0;
	struct wk *big = NULL;
	struct cohort_event *ev;
	char a[32], b[32], c[32];

	if (!o->budget)
		return;
	/* Workers already being stopped will give their memory back: count only the others. */
	for (unsigned r = 0; r < w->nw; r++)
		if (w->w[r].running && !w->w[r].stop_stage) {
			staying += w->w[r].use;
			if (!big || w->w[r].use > big->use)
				big = &w->w[r];
		}
	if (o->enforce == COHORT_ENFORCE_WATCH && staying > o->budget && big) {
		ev = ev_new(w, COHORT_EVENT_LIMIT, big, 1);
		if (!ev)
			return;   /* out of memory: decided again at the next tick */
		ev->action = COHORT_ACTION_STOP;
		ev_str(ev, "action", "stop");
		used_fields(ev, big);
		ev_u64(ev, "total_bytes", use_sum);
		ev_u64(ev, "limit_bytes", o->budget);
		ev_msg(ev, "the workers use %s together, above the %s budget: cohort stopped the largest, "
		       "rank %u (pid %d, %s)", fmt_size(use_sum, a, sizeof(a)),
		       fmt_size(o->budget, b, sizeof(b)), big->rank, (int)big->pid,
		       fmt_size(big->use, c, sizeof(c)));
		big->stop_stage = 1;
	} else if (!w->total_warned && use_sum > o->soft * (double)o->budget) {
		big = NULL;
		for (unsigned r = 0; r < w->nw; r++)
			if (w->w[r].running && (!big || w->w[r].use > big->use))
				big = &w->w[r];
		w->total_warned = true;
		ev = ev_new(w, COHORT_EVENT_WARNING, big, 1);
		ev_u64(ev, "est_bytes", use_sum);
		ev_u64(ev, "limit_bytes", o->budget);
		ev_msg(ev, "the workers use %s together, %.0f%% of the %s budget; the largest is rank %u (%s)",
		       fmt_size(use_sum, a, sizeof(a)), 100.0 * (double)use_sum / (double)o->budget,
		       fmt_size(o->budget, b, sizeof(b)), big ? big->rank : 0,
		       fmt_size(big ? big->use : 0, c, sizeof(c)));
	}
}

/* SLURM's jobacct_gather/linux sums RSS: shared pages are charged once per process. */
static void check_slurm(struct cohort_watch *w, uint64_t rss_sum, uint64_t pss_sum)
{
	uint64_t limit = w->alloc.mem_limit;
	struct cohort_event *ev;
	char a[32], b[32], c[32];

	if (!w->has_alloc || !w->alloc.slurm.present || w->slurm_risk_warned || w->o.slurm_sums_rss == 0 ||
	    cohort_slurm_rss_level(rss_sum, pss_sum, limit) == COHORT_SLURM_RSS_FITS)
		return;
	w->slurm_risk_warned = true;
	ev = ev_new(w, COHORT_EVENT_SLURM_RSS_RISK, NULL, 1);
	ev_u64(ev, "rss_sum_bytes", rss_sum);
	ev_u64(ev, "pss_sum_bytes", pss_sum);
	ev_u64(ev, "limit_bytes", limit);
	ev_msg(ev, "the workers' RSS sum is %s, near the job's %s limit, while their PSS sum (what they "
	       "really use) is %s: %s counts shared pages once per process and may kill the job (ask "
	       "for JobAcctGatherParams=UsePss, or --mem=%lluM)",
	       fmt_size(rss_sum, a, sizeof(a)), fmt_size(limit, b, sizeof(b)), fmt_size(pss_sum, c, sizeof(c)),
	       w->o.slurm_sums_rss == 1 ? "SLURM's jobacct_gather/linux" :
	       "SLURM's jobacct_gather/linux, if the cluster uses it,",
	       (unsigned long long)((rss_sum + rss_sum / 10) / MiB + 1));
}

/* The figures of one walk into the member's copy-on-write term. */
static void member_walked(struct cohort_watch *w, struct wk *k, struct member *m,
                          const struct cohort_sample *sm)
{
	const struct cohort_probe *probe = probe_of(w);
	uint64_t shared = sm->mem.shared_clean + sm->mem.shared_dirty;
	struct cohort__stat st;
	int64_t old = m->term;

	if (cohort__proc_stat(cohort__proc_root(probe), m->pid, &st) == 0) {
		m->minflt_walk = st.minflt;
		/* An exec since the last look: a new address space, its own base. */
		if (m->have_walk && st.startstack != 0 && st.startstack != m->startstack) {
			m->startstack = st.startstack;
			m->forked = false;
			m->anon_base = 0;
			m->have_base = false;
		}
	}
	m->reads = sm->mem_reads;
	m->uss = sm->mem.uss;
	m->anon = sm->mem.anon;
	m->pss_anon = sm->mem.pss_anon;
	if (sm->mem.pss_anon != COHORT_MEM_UNKNOWN && sm->mem.anon != COHORT_MEM_UNKNOWN) {
		w->pss_anon_known = true;
		m->term = (int64_t)sm->mem.pss_anon - (int64_t)sm->mem.anon + (int64_t)m->anon_base;
		if (m->have_walk) {
			k->cow_moved += (uint64_t)llabs(m->term - old);
			if (k->cow_moved >= COW_MOVED) {
				k->cow_refresh = true;
				k->cow_moved = 0;
			}
		}
		/*
		 * A rise may be an exited sharer's share arriving: it pays off
		 * what is carried for it first, so that no share counts twice
		 * (copies made meanwhile are then counted late, never twice). A
		 * new process's first term is a rise too: its parent's term fell
		 * by as much, which may have hidden the parent's intake of a
		 * share (a pool that replaces a worker that exited).
		 */
		if (m->term > (m->have_walk ? old : 0)) {
			uint64_t rise = (uint64_t)(m->term - (m->have_walk ? old : 0)), paid;

			paid = (uint64_t)k->cow_pending < rise ? (uint64_t)k->cow_pending : rise;
			k->cow_pending -= (int64_t)paid;
			k->cow_rise += rise - paid;
		}
	}
	m->rise_mark = k->cow_rise;
	m->have_walk = true;
	/* The per-process measure, for kernels without Pss_Anon. */
	if (!m->have_base) {
		m->have_base = true;
		m->uss0 = m->forked ? 0 : sm->mem.uss;
		m->shared0 = m->forked ? sm->mem.rss : shared;
	} else {
		m->copied = cohort_cow_copied(m->uss0, m->shared0, sm->mem.uss, shared);
	}
}

/*
 * Fresh page walks, beyond the budget: a worker at a new RSS peak (the
 * figures at a peak are the ones a report quotes), a process that faulted
 * much since its walk, and every process of a tree whose copy-on-write
 * terms moved or one of whose processes exited. At most REFRESH_MAX walks
 * a tick; a tree that did not get them all keeps its request for the next.
 */
static void refresh(struct cohort_watch *w)
{
	size_t count = cohort_sampler_count(w->sampler);
	uint64_t *rss = calloc(w->nw, sizeof(*rss));
	bool *cut = calloc(w->nw, sizeof(*cut));
	int left = REFRESH_MAX;

	if (!rss || !cut) {
		free(rss);
		free(cut);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		struct cohort_sample sm;
		struct member *m;

		if (cohort_sampler_get(w->sampler, i, &sm) == 0 && !sm.gone && (m = member_find(w, sm.pid)))
			rss[m->rank] += sm.statm.rss;
	}
	for (size_t i = 0; i < w->nm; i++) {
		struct member *m = &w->m[i];
		struct wk *k = &w->w[m->rank];
		uint64_t margin = k->peak_rss / 20 > 4 * MiB ? k->peak_rss / 20 : 4 * MiB;
		bool at_peak = k->peak_rss && rss[m->rank] >= k->peak_rss + margin, faulted = false;
		struct cohort__stat st;

		if (!k->running)
			continue;
		if (left == 0) {
			cut[m->rank] = true;
			continue;
		}
		/* In a tree of several processes, one that faulted much since its walk may be copying. */
		if (!at_peak && !k->cow_refresh && k->nprocs > 1 && m->have_walk &&
		    cohort__proc_stat(cohort__proc_root(probe_of(w)), m->pid, &st) == 0)
			faulted = st.minflt >= m->minflt_walk + FAULTS_STALE;
		if ((at_peak || k->cow_refresh || faulted) && cohort_sampler_refresh(w->sampler, m->pid) == 0)
			left--;
	}
	for (unsigned r = 0; r < w->nw; r++)
		if (!cut[r])
			w->w[r].cow_refresh = false;
	free(rss);
	free(cut);
}

/* Read a worker cgroup's exact peak (one small file, the right one once the version is known). */
static uint64_t cgroup_peak(const struct wk *k)
{
	char buf[64];
	uint64_t v;

	if ((k->cg_version == 2 || cohort__slurpf(buf, sizeof(buf), "%s/memory.max_usage_in_bytes", k->cg) <= 0) &&
	    (k->cg_version == 1 || cohort__slurpf(buf, sizeof(buf), "%s/memory.peak", k->cg) <= 0))
		return 0;
	return cohort__parse_u64(buf, &v, NULL) < 0 ? 0 : v;
}

/* Which version a worker's cgroup is, told once from the files it has. */
static void cgroup_version(struct wk *k)
{
	char path[COHORT_PATH_MAX + 32];

	k->cg_version = -1;
	if (cohort__pathf(path, sizeof(path), "%s/memory.current", k->cg) >= 0 && access(path, F_OK) == 0)
		k->cg_version = 2;
	else if (cohort__pathf(path, sizeof(path), "%s/memory.usage_in_bytes", k->cg) >= 0 &&
	         access(path, F_OK) == 0)
		k->cg_version = 1;
}

/*
 * A worker's own cgroup, once a tick: its usage and memory.stat (one read
 * each), the figure judged against its budget, and the copies after fork
 * by the kernel's count: the cgroup's anonymous pages less those its
 * processes allocated (their anonymous RSS less what they shared at fork),
 * against the same at the first read. A process that escaped the tree
 * (reparented to init) but stays in the cgroup is counted as copies.
 */
static void read_worker_cgroup(struct cohort_watch *w, struct wk *k)
{
	struct cohort_cgstat cs;
	uint64_t usage;
	int64_t cow;

	(void)w;
	k->has_cgu = false;
	if (!k->cg[0] || k->cg_version < 0)
		return;
	if (k->cg_version == 0)
		cgroup_version(k);
	if (k->cg_version < 0 || cohort_cgroup_read_usage(k->cg, k->cg_version, &usage, &cs) < 0)
		return;
	k->has_cgu = true;
	k->cg_usage = usage;
	k->cgs = cs;
	k->cg_work = usage > known(cs.inactive_file) ? usage - known(cs.inactive_file) : 0;
	/* Signed, and bounded so that an absurd file cannot overflow it. */
	if (cs.anon >= k->alloc_anon)
		cow = cs.anon - k->alloc_anon > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(cs.anon - k->alloc_anon);
	else
		cow = k->alloc_anon - cs.anon > (uint64_t)INT64_MAX ? -INT64_MAX : -(int64_t)(k->alloc_anon - cs.anon);
	if (!k->cg_based) {
		/*
		 * Only a positive offset is a baseline (pages of processes outside
		 * the tree); a negative one is a root still running the
		 * supervisor's copy before its exec, whose pages are not charged here.
		 */
		k->cg_based = true;
		k->cg_cow0 = cow > 0 ? cow : 0;
		k->cg_anon0 = cs.anon;
		k->cg_shmem0 = known(cs.shmem);
		k->cg_cache0 = page_cache(&cs);
		k->rss0 = k->rss;
	}
	if (k->cg_settle) {
		k->cg_settle--;
		return;
	}
	k->cg_cow = cow > k->cg_cow0 ? (uint64_t)(cow - k->cg_cow0) : 0;
	/*
	 * A process copies at most what it shared at fork. The bound also
	 * keeps out the pages of processes that just left the tree but not
	 * yet the cgroup (killed, or orphaned when their parent died).
	 */
	if (k->cg_cow > k->shared_anon)
		k->cg_cow = k->shared_anon;
	if (k->cg_cow > k->cg_cow_peak)
		k->cg_cow_peak = k->cg_cow;
}

static void aggregate(struct cohort_watch *w)
{
	size_t count = cohort_sampler_count(w->sampler);

	for (unsigned r = 0; r < w->nw; r++) {
		struct wk *k = &w->w[r];

		if (!k->running)
			continue;   /* an ended worker keeps its last figures */
		k->prev_rss = k->rss;
		k->nprocs = 0;
		k->rss = k->pss = k->uss = k->swap = k->shmem = k->shared = k->est = 0;
		k->alloc_anon = k->shared_anon = 0;
		k->pss_age = 0;
		k->cow_live = 0;
		k->cow_old_live = 0;
	}
	for (size_t i = 0; i < count; i++) {
		struct cohort_sample sm;
		struct member *m;
		struct wk *k;

		if (cohort_sampler_get(w->sampler, i, &sm) < 0 || !(m = member_find(w, sm.pid)))
			continue;
		k = &w->w[m->rank];
		if (sm.gone) {
			/* Exited (a zombie, or reaped): what it copied stays counted from now on. */
			member_freeze(w, k, m);
			continue;
		}
		if (!k->running)
			continue;
		if (m->need_base) {
			/* A forked child's anonymous size at fork: its first statm, or its parent's last if smaller. */
			struct member *parent = m->forked ? member_find(w, m->ppid) : NULL;
			uint64_t anon = statm_anon(&sm.statm);

			m->need_base = false;
			m->anon_base = 0;
			if (m->forked)
				m->anon_base = parent && parent->last_anon && parent->last_anon < anon ?
				               parent->last_anon : anon;
		}
		m->last_anon = statm_anon(&sm.statm);
		/* What it allocated itself: pages it shared at fork are its parent's, until copied. */
		k->alloc_anon += m->last_anon > m->anon_base ? m->last_anon - m->anon_base : 0;
		k->shared_anon += m->anon_base;
		if (!m->first_rss)
			m->first_rss = sm.statm.rss;
		m->last_rss = sm.statm.rss;
		k->nprocs++;
		k->rss += sm.statm.rss;
		if (!sm.have_pss) {
			/*
			 * No page walk yet. For the worker's root (a fresh exec) RSS less
			 * its file and shmem pages is its own. A descendant was forked
			 * inside the tree and shares most of its pages with its parent,
			 * which statm cannot tell: count nothing until its first walk
			 * (the sampler walks never-read processes first) rather than
			 * counting shared pages again and stopping a worker that fits.
			 */
			if (sm.pid == k->pid || !m->forked)
				k->est += statm_anon(&sm.statm);
			continue;
		}
		/*
		 * Its statm of this tick was read before this tick's walks, so
		 * it was alive then: a share it leaves can only show in later walks.
		 */
		if (k->rise_tick0 > m->rise_mark)
			m->rise_mark = k->rise_tick0;
		if (sm.mem_reads != m->reads)
			member_walked(w, k, m, &sm);
		/*
		 * The walk's PSS and USS, never above the RSS the process has now:
		 * a process that gave memory back since its walk (stress-ng's
		 * workers map and unmap in cycles) cannot have a share larger
		 * than what it holds, and a sum of such stale figures came out
		 * above the cgroup's own peak.
		 */
		k->pss += sm.mem.pss < sm.statm.rss ? sm.mem.pss : sm.statm.rss;
		k->uss += sm.mem.uss < sm.statm.rss ? sm.mem.uss : sm.statm.rss;
		/*
		 * What moved since the page walk: RSS gained is counted as the
		 * process's own, RSS given back (freed, so private) comes off.
		 */
		if (sm.statm.rss >= sm.mem.rss)
			k->est += sm.mem.pss + (sm.statm.rss - sm.mem.rss);
		else
			k->est += sm.mem.pss > sm.mem.rss - sm.statm.rss ? sm.mem.pss - (sm.mem.rss - sm.statm.rss) : 0;
		k->shared += sm.mem.shared_clean + sm.mem.shared_dirty;
		if (sm.mem.swap != COHORT_MEM_UNKNOWN)
			k->swap += sm.mem.swap;
		if (sm.mem.pss_shmem != COHORT_MEM_UNKNOWN)
			k->shmem += sm.mem.pss_shmem;
		if (sm.mem_age_ns / 1e9 > k->pss_age)
			k->pss_age = sm.mem_age_ns / 1e9;
		k->cow_live += m->term;
		k->cow_old_live += m->copied;
	}
	for (unsigned r = 0; r < w->nw; r++)
		w->w[r].rise_tick0 = w->w[r].cow_rise;   /* no walk before the next tick's statm reads */
}

static void read_system(struct cohort_watch *w)
{
	const struct cohort_probe *probe = probe_of(w);
	struct cohort_cgmem cg;
	struct cohort_psi psi;
	struct cohort_meminfo mi;
	struct statvfs sv;

	w->tot.has_cgroup = 0;
	if (w->job_cg[0] && cohort_cgroup_read(probe, w->job_cg, &cg) == 0) {
		w->tot.has_cgroup = 1;
		w->tot.cg_usage = cg.usage;
		w->tot.cg_peak = cg.peak;
		w->tot.cg_limit = cg.limit;
		w->tot.cg_shmem = cg.shmem;
		w->tot.cg_swap = cg.swap;
		w->tot.cg_oom_kill = cg.oom_kill;
	}
	w->tot.has_shm = statvfs(probe && probe->shm_path ? probe->shm_path : "/dev/shm", &sv) == 0;
	if (w->tot.has_shm) {
		w->tot.shm_free = (uint64_t)sv.f_bavail * sv.f_frsize;
		w->tot.shm_size = (uint64_t)sv.f_blocks * sv.f_frsize;
	}
	w->tot.has_swap = cohort_meminfo_read(probe, &mi) == 0;
	if (w->tot.has_swap)
		w->tot.swap_used = mi.swap_total > mi.swap_free ? mi.swap_total - mi.swap_free : 0;
	w->tot.has_psi = cohort_psi_read(probe, NULL, &psi) == 0;
	if (w->tot.has_psi) {
		w->tot.psi_some10 = psi.some_avg10;
		w->tot.psi_full10 = psi.full_avg10;
	}
}

int cohort_watch_tick(struct cohort_watch *w)
{
	double t = cohort_watch_now(w);
	uint64_t rss_sum = 0, pss_sum = 0, uss_sum = 0, est_sum = 0;
	bool fast = false;
	struct cohort_sampler_stats st;

	w->tick_t = t;
	collect_exits(w, EXIT_FILES_TICK);   /* before the walk: the dead are still members */
	track_trees(w);
	for (unsigned r = 0; r < w->nw; r++)
		if (w->w[r].oom_pending)
			resolve_oom(w, &w->w[r], false);
	if (w->job_oom_pending)
		resolve_oom(w, NULL, false);
	w->ticks++;
	cohort_sampler_tick(w->sampler);
	refresh(w);
	aggregate(w);
	for (unsigned r = 0; r < w->nw; r++) {
		struct wk *k = &w->w[r];

		if (!k->running)
			continue;
		if (k->rss > k->peak_rss) k->peak_rss = k->rss;
		if (k->pss > k->peak_pss) k->peak_pss = k->pss;
		if (k->uss > k->peak_uss) k->peak_uss = k->uss;
		if (k->est > k->peak_est) k->peak_est = k->est;
		if (k->cg[0]) {
			uint64_t p = cgroup_peak(k);

			if (p > k->peak_cg)
				k->peak_cg = p;
		}
		read_worker_cgroup(w, k);
		k->use_cg = k->has_cgu && k->cg_work > k->est;
		k->use = k->use_cg ? k->cg_work : k->est;
		if (k->use > k->peak_use) k->peak_use = k->use;
		if (k->rss > k->prev_rss + FAST_GROWTH)
			fast = true;
		rss_sum += k->rss;
		pss_sum += k->pss;
		uss_sum += k->uss;
		est_sum += k->est;
		check_worker(w, k, t);
	}
	/* A worker's own cgroup sees copies statm does not: its usage moving makes its processes' PSS stale. */
	for (size_t i = 0; i < w->nm; i++) {
		const struct wk *k = &w->w[w->m[i].rank];

		if (k->running && k->has_cgu)
			(void)cohort_sampler_set_usage(w->sampler, w->m[i].pid, k->cg_usage);
	}
	check_budget(w, est_sum);
	check_slurm(w, rss_sum, pss_sum);
	read_system(w);
	w->tot.t = t;
	w->tot.rss_sum = rss_sum;
	w->tot.pss_sum = pss_sum;
	w->tot.uss_sum = uss_sum;
	w->tot.est_sum = est_sum;
	w->tot.ticks = w->ticks;
	cohort_sampler_stats(w->sampler, &st);
	w->tot.sampler_cpu_s = st.cpu_ns / 1e9;
	/* Dense while a worker is young or one grows fast: that is when kills come. */
	if (fast && w->dense_until < t + w->o.dense_interval * 5)
		w->dense_until = t + w->o.dense_interval * 5;
	w->last_tick = t;
	w->next_tick = t + (t < w->dense_until ? w->o.dense_interval : w->o.interval);
	return 0;
}

double cohort_watch_next_tick(const struct cohort_watch *w)
{
	return w->next_tick;
}

size_t cohort_watch_fds(const struct cohort_watch *w, int *fds, size_t size)
{
	if (w->epfd < 0 || size == 0)
		return w->epfd < 0 ? 0 : 1;
	fds[0] = w->epfd;
	return 1;
}

/* Whether any worker has a cgroup of its own. */
static bool worker_cgroups(const struct cohort_watch *w)
{
	for (unsigned r = 0; r < w->nw; r++)
		if (w->w[r].cg[0])
			return true;
	return false;
}

/* What one cgroup's notification said: events, and a sample now. */
static void cgroup_notified(struct cohort_watch *w, struct wk *k, struct cohort_cgevent *cev)
{
	struct cohort_cgevent_info in;
	struct cohort_event *ev;
	char a[32], b[32], c[32];
	double now = cohort_watch_now(w);

	if (cohort_cgevent_read(cev, &in) <= 0)
		return;
	/* Whatever it was, the figures of this moment are the ones to have. */
	w->next_tick = now;
	if (w->dense_until < now + w->o.dense_interval * 10)
		w->dense_until = now + w->o.dense_interval * 10;
	if (in.oom_kill_new) {
		bool *said = k ? &k->kernel_oom_said : &w->job_oom_said;

		ev = ev_new(w, COHORT_EVENT_KERNEL, k, !*said);
		*said = true;
		if (k) {
			/*
			 * The victim's pages go from its statm at once (the OOM
			 * reaper) and from the cgroup's count a moment later: hold
			 * the cgroup's copy-on-write count meanwhile.
			 */
			k->cg_settle = 3;
			k->kernel_oom_kills += in.oom_kill_new;
			if (!k->oom_pending)
				k->oom_pending_t = now;
			k->oom_pending += in.oom_kill_new;
		} else if (!worker_cgroups(w)) {
			/* With worker cgroups their own notifications tell (v2 counts a kill in each level). */
			if (!w->job_oom_pending)
				w->job_oom_pending_t = now;
			w->job_oom_pending += in.oom_kill_new;
		}
		ev_str(ev, "what", "oom_kill");
		ev_u64(ev, "oom_kill_new", in.oom_kill_new);
		ev_u64(ev, "usage_bytes", in.usage);
		ev_u64(ev, "peak_bytes", in.peak);
		ev_str(ev, "cgroup", k ? k->cg : w->job_cg);
		if (k)
			ev_msg(ev, "the kernel's OOM killer killed %llu process%s in rank %u's cgroup (peak %s)",
			       (unsigned long long)in.oom_kill_new, in.oom_kill_new == 1 ? "" : "es", k->rank,
			       fmt_size(in.peak, a, sizeof(a)));
		else
			ev_msg(ev, "the kernel's OOM killer killed %llu process%s in the job's cgroup (peak %s "
			       "of %s)", (unsigned long long)in.oom_kill_new, in.oom_kill_new == 1 ? "" : "es",
			       fmt_size(in.peak, a, sizeof(a)), fmt_size(w->job_limit, b, sizeof(b)));
	}
	if (in.threshold_crossed) {
		uint64_t limit = k ? w->o.mem_per_worker : w->job_limit;

		ev = ev_new(w, COHORT_EVENT_KERNEL, k, 0);
		ev_str(ev, "what", "threshold");
		ev_u64(ev, "usage_bytes", in.usage);
		ev_u64(ev, "limit_bytes", limit);
		ev_str(ev, "cgroup", k ? k->cg : w->job_cg);
		if (in.peak)
			ev_u64(ev, "peak_bytes", in.peak);
		ev_msg(ev, "%s cgroup's usage passed %.0f%% of its %s limit (peak %s, %s in use now)",
		       k ? "the worker's" : "the job's", 100 * w->o.soft, fmt_size(limit, b, sizeof(b)),
		       fmt_size(in.peak ? in.peak : in.usage, a, sizeof(a)), fmt_size(in.usage, c, sizeof(c)));
	}
}

int cohort_watch_ready(struct cohort_watch *w, int fd)
{
	struct epoll_event evs[16];
	int n;

	if (fd != w->epfd || w->epfd < 0)
		return -EINVAL;
	n = epoll_wait(w->epfd, evs, 16, 0);
	for (int i = 0; i < n; i++) {
		struct wk *k = evs[i].data.ptr == (void *)w ? NULL : evs[i].data.ptr;
		struct cohort_cgevent *cev = k ? k->cgev : w->job_ev;

		if (cev)
			cgroup_notified(w, k, cev);
	}
	return 0;
}

void cohort_watch_totals(const struct cohort_watch *w, struct cohort_watch_totals *ret)
{
	*ret = w->tot;
}

int cohort_watch_worker(const struct cohort_watch *w, unsigned rank, struct cohort_worker_state *ret)
{
	const struct wk *k;
	int64_t total;

	if (rank >= w->nw)
		return -ERANGE;
	k = &w->w[rank];
	memset(ret, 0, sizeof(*ret));
	ret->rank = rank;
	ret->pid = k->pid;
	ret->running = k->running;
	ret->ended = k->ended;
	ret->status = k->status;
	ret->stopped_by_cohort = k->stop_stage > 0;
	ret->oom_killed = k->oom_killed;
	ret->oom_kills_below = k->kernel_oom_kills;
	ret->nprocs = k->nprocs;
	ret->rss = k->rss;
	ret->pss = k->pss;
	ret->uss = k->uss;
	ret->est = k->est;
	ret->shared = k->shared;
	ret->swap = k->swap;
	ret->shmem = k->shmem;
	ret->pss_age = k->pss_age;
	if (k->cg_based) {
		ret->cow_copied = k->cg_cow_peak;   /* the kernel's count: exact at each sample */
	} else if (w->pss_anon_known) {
		/*
		 * Never less than nothing, and never more than the tree's
		 * processes shared at fork: a page shared at a fork is copied
		 * at most once for that fork.
		 */
		uint64_t most = k->shared_anon + k->cow_base_gone;

		total = k->cow_live + k->cow_pending + k->cow_gone;
		ret->cow_copied = total <= 0 ? 0 : (uint64_t)total < most ? (uint64_t)total : most;
	} else {
		ret->cow_copied = k->cow_old + k->cow_old_live;
	}
	ret->peak_rss = k->peak_rss;
	ret->peak_pss = k->peak_pss;
	ret->peak_uss = k->peak_uss;
	ret->peak_est = k->peak_est;
	ret->peak_cgroup = k->peak_cg;
	ret->used = k->use;
	ret->used_by_cgroup = k->use_cg;
	ret->peak_used = k->peak_use;
	ret->has_cgroup_usage = k->has_cgu;
	if (k->has_cgu) {
		ret->cg_usage = k->cg_usage;
		ret->cg_work = k->cg_work;
		ret->cg_anon = k->cgs.anon;
		ret->cg_file = known(k->cgs.file);
		ret->cg_shmem = known(k->cgs.shmem);
		ret->cg_inactive_file = known(k->cgs.inactive_file);
	}
	ret->start = k->start;
	ret->end = k->end;
	cohort__strlcpy(ret->cgroup, k->cg, sizeof(ret->cgroup));
	return 0;
}

/* ---- ends ---- */

/* ---- deaths below the roots ---- */

/* The count of deaths of a kind (0 child_exit, 1 oom_kill) and signal in k, the new one included. */
static struct death *death_count(struct wk *k, int kind, int sig, const struct cohort_proc_identity *id,
                                 pid_t reaper, int status, double t)
{
	struct death *d = NULL;

	for (int i = 0; i < k->ndeaths && !d; i++)
		if (k->deaths[i].kind == kind && k->deaths[i].sig == sig)
			d = &k->deaths[i];
	if (!d) {
		/* 32 kinds at most: signals 1-31, exits and OOM kills are fewer than that in practice. */
		if (!k->deaths && !(k->deaths = calloc(32, sizeof(*k->deaths))))
			return NULL;
		if (k->ndeaths == 32)
			return NULL;
		d = &k->deaths[k->ndeaths++];
		d->kind = kind;
		d->sig = sig;
	}
	d->count++;
	d->last = *id;
	d->last_reaper = reaper;
	d->last_status = status;
	d->last_t = t;
	return d;
}

static const char *ordinal(uint64_t n, char *buf, size_t size)
{
	const char *suf = n % 100 >= 11 && n % 100 <= 13 ? "th" : n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" :
	                  n % 10 == 3 ? "rd" : "th";

	snprintf(buf, size, "%llu%s", (unsigned long long)n, suf);
	return buf;
}

/* Signals that mean the process itself went wrong, said at once; others are how processes are stopped. */
static bool fault_signal(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGABRT ||
	       sig == SIGSYS || sig == SIGTRAP;
}

/* One child_exit event: a death in detail, or (summary) the count of a kind at the end. */
static void child_exit_event(struct cohort_watch *w, struct wk *k, const struct death *d, bool summary)
{
	const struct cohort_proc_identity *reaper = ident_of(w, d->last_reaper);
	char who[160], how[96], by[80] = "", nth[24];
	int st = d->last_status;
	struct cohort_event *ev;

	ev = ev_new(w, COHORT_EVENT_CHILD_EXIT, k, !summary && d->count == 1 && fault_signal(d->sig));
	if (!ev)
		return;
	ev_process(ev, &d->last);
	if (WIFSIGNALED(st)) {
		ev_i64(ev, "signal", WTERMSIG(st));
		ev_null(ev, "exit_code");
	} else {
		ev_null(ev, "signal");
		ev_i64(ev, "exit_code", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	}
	cohort_status_describe(st, how, sizeof(how));
	ev_str(ev, "status", how);
	ev_i64(ev, "reaper_pid", d->last_reaper);
	if (reaper && reaper->comm[0])
		ev_str(ev, "reaper", reaper->comm);
	ev_u64(ev, "count", d->count);
	if (summary)
		ev_u64(ev, "summary", 1);   /* a number: readers take numbers */
	if (d->last_reaper > 0)
		snprintf(by, sizeof(by), "; its parent, pid %d (%s), reaped it", (int)d->last_reaper,
		         reaper && reaper->comm[0] ? reaper->comm : "?");
	if (d->last.comm[0])
		cohort_proc_identity_describe(&d->last, who, sizeof(who));
	else
		snprintf(who, sizeof(who), "pid %d, a process of rank %u that lived less than a sample",
		         (int)d->last.pid, k->rank);
	if (summary)
		ev_msg(ev, "rank %u: %llu processes below its root ended with %s%s in all; the last was %s%s",
		       k->rank, (unsigned long long)d->count, d->sig ? "signal " : "a non-zero exit", d->sig ?
		       sigabbrev_np(d->sig) ? sigabbrev_np(d->sig) : "?" : "", who, by);
	else
		ev_msg(ev, "%s ended: %s%s%s%s", who, how, by, d->count > 1 ? "; the " : "",
		       d->count > 1 ? ordinal(d->count, nth, sizeof(nth)) : "");
	if (!summary && d->count > 1) {
		size_t len = strlen(ev->message);

		snprintf(ev->message + len, sizeof(ev->message) - len, " such end in rank %u%s", k->rank,
		         d->count == DEATH_DETAIL ? " (later ones are counted, not told)" : "");
	}
}

/* The kernel's OOM killer killed victim, of k's tree: an oom_kill event, with the evidence. */
static void oom_event(struct cohort_watch *w, struct wk *k, const struct cohort_proc_identity *victim,
                      const char *evidence, bool summary, struct death *d)
{
	static const char *const words[][2] = {
		{ "kernel_log", "the kernel log names it" },
		{ "reaper_status", "its parent reaped it killed by SIGKILL as the kill was counted" },
		{ "vanished", "it vanished as the kill was counted" },
	};
	uint64_t limit = k->cg[0] && w->o.mem_per_worker ? w->o.mem_per_worker :
	                 w->has_alloc ? w->alloc.mem_limit : 0;
	const char *why = evidence;
	char who[160], a[32];
	struct cohort_event *ev;

	if (!d && !(d = death_count(k, 1, SIGKILL, victim, 0, SIGKILL, w->tick_t)))
		return;
	if (!summary)
		d->evidence = evidence;
	else if (d->evidence)
		evidence = d->evidence;
	if (!summary && d->count > DEATH_DETAIL)
		return;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(words[i][0], evidence) == 0)
			why = words[i][1];
	ev = ev_new(w, COHORT_EVENT_OOM_KILL, k, d->count == 1 && !summary);
	if (!ev)
		return;
	ev_process(ev, victim);
	ev_bool(ev, "descendant", 1);
	ev_str(ev, "evidence", evidence);
	ev_u64(ev, "count", d->count);
	ev_u64(ev, "limit_bytes", limit);
	ev_str(ev, "cgroup", k->cg[0] ? k->cg : w->job_cg);
	if (summary)
		ev_u64(ev, "summary", 1);   /* a number: readers take numbers */
	cohort_proc_identity_describe(victim, who, sizeof(who));
	if (summary)
		ev_msg(ev, "the kernel's OOM killer killed %llu processes below rank %u's root in all; the "
		       "last was %s", (unsigned long long)d->count, k->rank, who);
	else
		ev_msg(ev, "the kernel's OOM killer killed %s (%s); %s limit is %s%s", who, why,
		       k->cg[0] ? "the worker's cgroup" : "the job's", fmt_size(limit, a, sizeof(a)),
		       d->count == DEATH_DETAIL ? "; later kills are counted, not told" : "");
	if (!summary)
		d->said = d->count;
}

/* A record of the crash shim: a process of the trees was reaped with status by reaper. */
static void exit_record(struct cohort_watch *w, pid_t pid, int status, pid_t reaper)
{
	const struct cohort_proc_identity *id = ident_of(w, pid), *rid = ident_of(w, reaper);
	struct cohort_proc_identity tmp;
	struct death *d;
	struct wk *k;
	int rank = id ? id->rank : rid ? rid->rank : -1;

	if (rank < 0 || rank >= (int)w->nw)
		return;   /* not of the job's trees */
	k = &w->w[rank];
	if (pid == k->pid)
		return;   /* the root: the caller reports its end */
	if (!id) {
		memset(&tmp, 0, sizeof(tmp));
		tmp.pid = pid;
		tmp.ppid = reaper;
		tmp.rank = rank;
		tmp.mpi_rank = tmp.slurm_procid = tmp.slurm_localid = -1;
		id = &tmp;
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		/* For the OOM killer's victims: kept until attributed, the oldest dropped. */
		if (w->nkilled == KILLED_MAX) {
			memmove(w->killed, w->killed + 1, (KILLED_MAX - 1) * sizeof(w->killed[0]));
			w->nkilled--;
		}
		w->killed[w->nkilled].id = *id;
		w->killed[w->nkilled].t = cohort_watch_now(w);
		w->killed[w->nkilled].used = false;
		w->nkilled++;
	}
	d = death_count(k, 0, WIFSIGNALED(status) ? WTERMSIG(status) : 0, id, reaper, status,
	                cohort_watch_now(w));
	if (d && d->count <= DEATH_DETAIL) {
		child_exit_event(w, k, d, false);
		d->said = d->count;
	}
}

/* Read a small regular file (never through a symlink) into buf; its length, or -errno. */
static ssize_t read_record(const char *path, char *buf, size_t size)
{
	struct stat sb;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

/* The number after "key " on a line of text, or def. */
static long record_num(const char *text, const char *key, long def)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		uint64_t v;

		if (strncmp(p, key, klen) == 0 && p[klen] == ' ' &&
		    cohort__parse_u64(p + klen + 1, &v, NULL) == 0 && v <= INT32_MAX)
			return (long)v;
	}
	return def;
}

/*
 * The crash shim's records of deaths below the roots (exit.<pid>[.n],
 * shim/catch.c: a parent's wait returned a signal or a non-zero exit): at
 * most max files read, each removed. Past EXIT_FILES_RUN over the run they
 * are only removed: a program that restarts its children for ever must
 * not make the watcher's work grow with it.
 */
static void collect_exits(struct cohort_watch *w, size_t max)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	if (!w->crash_dir[0] || !(d = opendir(w->crash_dir)))
		return;
	while (n < max && (de = readdir(d)) != NULL) {
		char path[COHORT_PATH_MAX + 300], buf[256];
		long pid, status, reaper;

		if (strncmp(de->d_name, COHORT_EXITFILE_PREFIX, sizeof(COHORT_EXITFILE_PREFIX) - 1) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", w->crash_dir, de->d_name);
		n++;
		if (w->exit_files++ >= EXIT_FILES_RUN || read_record(path, buf, sizeof(buf)) < 0) {
			unlink(path);
			continue;
		}
		unlink(path);
		pid = record_num(buf, COHORT_EXIT_PID, 0);
		status = record_num(buf, COHORT_EXIT_STATUS, -1);
		reaper = record_num(buf, COHORT_EXIT_REAPER, 0);
		if (pid > 0 && status >= 0 && status <= 0xffff)
			exit_record(w, (pid_t)pid, (int)status, (pid_t)reaper);
	}
	closedir(d);
}

/* New records of the kernel log: the OOM killer's victims, kept until attributed. */
static void kmsg_drain(struct cohort_watch *w)
{
	char rec[8192];

	for (int i = 0; w->kmsg >= 0 && i < 1024; i++) {
		ssize_t n = read(w->kmsg, rec, sizeof(rec) - 1);
		char comm[16], memcg[256];
		size_t j;
		pid_t pid;

		if (n < 0) {
			if (errno == EINTR || errno == EPIPE)
				continue;   /* EPIPE: records overwritten before they were read */
			if (errno != EAGAIN) {
				close(w->kmsg);
				w->kmsg = -1;
			}
			return;
		}
		if (n == 0)
			return;
		rec[n] = '\0';
		if (!cohort__kmsg_oom(rec, (size_t)n, &pid, comm, sizeof(comm), memcg, sizeof(memcg)))
			continue;
		/* Both lines of one kill (oom-kill: then Killed process) make one victim. */
		for (j = 0; j < w->nkkill; j++)
			if (w->kkill[j].pid == pid && !w->kkill[j].used)
				break;
		if (j == w->nkkill) {
			if (w->nkkill == KKILL_MAX) {
				memmove(w->kkill, w->kkill + 1, (KKILL_MAX - 1) * sizeof(w->kkill[0]));
				w->nkkill--;
			}
			j = w->nkkill++;
			memset(&w->kkill[j], 0, sizeof(w->kkill[j]));
			w->kkill[j].pid = pid;
			w->kkill[j].t = cohort_watch_now(w);
		}
		if (comm[0])
			cohort__strlcpy(w->kkill[j].comm, comm, sizeof(w->kkill[j].comm));
		if (memcg[0])
			cohort__strlcpy(w->kkill[j].memcg, memcg, sizeof(w->kkill[j].memcg));
	}
}

/* Whether the victim's memory cgroup, as the kernel log spells it (from the hierarchy's root), is dir. */
static bool memcg_is(const char *dir, const char *memcg)
{
	size_t dl = strlen(dir), ml = strlen(memcg);

	return ml > 1 && dl >= ml && strcmp(dir + dl - ml, memcg) == 0;
}

/* Every record of pid's death is used: one kill is attributed once. */
static void blame(struct cohort_watch *w, pid_t pid)
{
	struct gone *g = gone_find(w, pid);

	for (size_t i = 0; i < w->nkkill; i++)
		if (w->kkill[i].pid == pid)
			w->kkill[i].used = true;
	for (size_t i = 0; i < w->nkilled; i++)
		if (w->killed[i].id.pid == pid)
			w->killed[i].used = true;
	if (g)
		g->blamed = true;
}

/* Whether a process identity is of k's tree, or (k NULL) of any worker's tree. */
static bool of_worker(const struct cohort_watch *w, const struct wk *k, const struct cohort_proc_identity *id)
{
	return id && (k ? id->rank == (int)k->rank : id->rank >= 0 && id->rank < (int)w->nw);
}

/*
 * OOM kills the kernel counted in k's cgroup (k NULL: in the job's, when
 * no worker has a cgroup of its own), attributed to their victims: the
 * kernel log's record of a process of k (or of k's cgroup), else, after a
 * second (or at the end), a process of k its parent reaped killed by
 * SIGKILL, else the largest process of k that vanished since the kill.
 * The root's own kill is end_worker()'s to tell: it is consumed here
 * without an event.
 */
static void resolve_oom(struct cohort_watch *w, struct wk *k, bool final)
{
	uint64_t *pending = k ? &k->oom_pending : &w->job_oom_pending;
	double *since = k ? &k->oom_pending_t : &w->job_oom_pending_t;
	double now = cohort_watch_now(w);

	kmsg_drain(w);
	while (*pending) {
		const struct cohort_proc_identity *victim = NULL;
		struct cohort_proc_identity tmp;
		const char *evidence = NULL;
		bool late = final || now - *since >= 1.0;
		struct wk *vk;

		for (size_t i = 0; i < w->nkkill && !evidence; i++) {
			const struct cohort_proc_identity *id = ident_of(w, w->kkill[i].pid);

			if (w->kkill[i].used || !(of_worker(w, k, id) ||
			                          (k && k->cg[0] && memcg_is(k->cg, w->kkill[i].memcg))))
				continue;
			evidence = "kernel_log";
			if (id) {
				tmp = *id;
			} else {
				memset(&tmp, 0, sizeof(tmp));
				tmp.pid = w->kkill[i].pid;
				tmp.rank = (int)k->rank;   /* k: only its cgroup matches without an identity */
				tmp.mpi_rank = tmp.slurm_procid = tmp.slurm_localid = -1;
			}
			/* The name the kernel gives is the one at the kill (after exec and renames). */
			if (w->kkill[i].comm[0])
				cohort__strlcpy(tmp.comm, w->kkill[i].comm, sizeof(tmp.comm));
			victim = &tmp;
		}
		for (size_t i = 0; i < w->nkilled && !evidence && late; i++)
			if (!w->killed[i].used && of_worker(w, k, &w->killed[i].id) &&
			    w->killed[i].t >= *since - 2 * w->o.interval - 1) {
				evidence = "reaper_status";
				victim = &w->killed[i].id;
			}
		if (!evidence && late) {
			const struct gone *best = NULL;

			for (size_t i = 0; i < w->ngone; i++) {
				const struct gone *g = &w->gone[i];

				if (!g->blamed && of_worker(w, k, &g->id) && g->id.pid != w->w[g->id.rank].pid &&
				    g->t >= *since - 2 * w->o.interval - 1 && (!best || g->last_rss > best->last_rss))
					best = g;
			}
			if (best) {
				evidence = "vanished";
				victim = &best->id;
			}
		}
		if (!evidence) {
			if (final)
				*pending = 0;   /* no victim found: the kernel event tells of the kill */
			return;
		}
		tmp = *victim;
		blame(w, tmp.pid);
		(*pending)--;
		*since = now;
		vk = &w->w[tmp.rank];
		if (tmp.pid == vk->pid)
			continue;
		oom_event(w, vk, &tmp, evidence, false, NULL);
		/* The job's counter rose for this one: not the root's when it dies of SIGKILL. */
		if (!k) {
			w->oom_kill_seen++;
			vk->kernel_oom_kills++;
		}
	}
}

/* At a worker's end and at the run's: the counts of deaths told only in part. */
static void death_summaries(struct cohort_watch *w, struct wk *k)
{
	for (int i = 0; i < k->ndeaths; i++) {
		struct death *d = &k->deaths[i];

		if (d->count <= d->said)
			continue;
		if (d->kind == 0)
			child_exit_event(w, k, d, true);
		else
			oom_event(w, k, &d->last, d->evidence ? d->evidence : "vanished", true, d);
		d->said = d->count;
	}
}

/* The path of a /proc/PID/maps line: what follows the fifth field, or "". */
static const char *maps_path(const char *line)
{
	const char *p = line;

	for (int field = 0; field < 5; field++) {
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
	}
	return p;
}

/*
 * Crash files the preload shim wrote (crash.<pid>, shim/catch.c): one
 * crash_info event each, attributed to the worker whose tree held the pid.
 */
static void collect_crashes(struct cohort_watch *w)
{
	struct dirent *de;
	DIR *d;

	if (!w->crash_dir[0] || !(d = opendir(w->crash_dir)))
		return;
	while ((de = readdir(d)) != NULL) {
		char path[COHORT_PATH_MAX + 300], line[600], fault[512] = "", below[512] = "", where[512] = "";
		char addr[64] = "";
		const struct cohort_proc_identity *id;
		const struct wk *k = NULL;
		struct cohort_event *ev;
		bool in_frames = false, guard = false;
		long sig = 0, code = 0;
		size_t bt = 0;
		char backtrace[2048] = "";
		FILE *f;
		pid_t pid;

		if (strncmp(de->d_name, COHORT_CRASHFILE_PREFIX, sizeof(COHORT_CRASHFILE_PREFIX) - 1) != 0)
			continue;
		pid = (pid_t)atoi(de->d_name + sizeof(COHORT_CRASHFILE_PREFIX) - 1);
		snprintf(path, sizeof(path), "%s/%s", w->crash_dir, de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			if (in_frames) {
				int n = snprintf(backtrace + bt, sizeof(backtrace) - bt, "%s%s", bt ? "\n" : "", line);

				if (n > 0 && (size_t)n < sizeof(backtrace) - bt)
					bt += (size_t)n;
			} else if (strcmp(line, COHORT_CRASH_FRAMES) == 0) {
				in_frames = true;
			} else if (strncmp(line, COHORT_CRASH_SIGNAL " ", COHORT_CRASH_KEYLEN(COHORT_CRASH_SIGNAL)) == 0) {
				sig = strtol(line + COHORT_CRASH_KEYLEN(COHORT_CRASH_SIGNAL), NULL, 10);
			} else if (strncmp(line, COHORT_CRASH_CODE " ", COHORT_CRASH_KEYLEN(COHORT_CRASH_CODE)) == 0) {
				code = strtol(line + COHORT_CRASH_KEYLEN(COHORT_CRASH_CODE), NULL, 10);
			} else if (strncmp(line, COHORT_CRASH_ADDR " ", COHORT_CRASH_KEYLEN(COHORT_CRASH_ADDR)) == 0) {
				snprintf(addr, sizeof(addr), "%s", line + COHORT_CRASH_KEYLEN(COHORT_CRASH_ADDR));
			} else if (strncmp(line, COHORT_CRASH_FAULT " ", COHORT_CRASH_KEYLEN(COHORT_CRASH_FAULT)) == 0) {
				snprintf(fault, sizeof(fault), "%s", line + COHORT_CRASH_KEYLEN(COHORT_CRASH_FAULT));
			} else if (strncmp(line, COHORT_CRASH_MAP " ", COHORT_CRASH_KEYLEN(COHORT_CRASH_MAP)) == 0) {
				snprintf(below, sizeof(below), "%s", line + COHORT_CRASH_KEYLEN(COHORT_CRASH_MAP));
			}
		}
		fclose(f);
		unlink(path);
		/*
		 * A maps line: "lo-hi perms offset dev inode   path", the path
		 * perhaps with spaces and " (deleted)". The address is in a
		 * segment's guard page when the mapping holding it has no access
		 * and the one just below is a /dev/shm file.
		 */
		{
			const char *fpath = maps_path(fault), *bpath = maps_path(below);
			const char *fperm = strchr(fault, ' ');

			if (fault[0] && fperm && strncmp(fperm + 1, "---p", 4) == 0 && strstr(bpath, "/dev/shm/")) {
				guard = true;
				snprintf(where, sizeof(where), "segment %s", bpath);
			} else if (fault[0]) {
				snprintf(where, sizeof(where), "%s", fpath[0] ? fpath : "an anonymous mapping");
			}
		}
		/* A process that left the trees before its file was read is found by its kept identity. */
		id = ident_of(w, pid);
		for (unsigned r = 0; r < w->nw && !k; r++)
			if (w->w[r].pid == pid || (id && id->rank == (int)r))
				k = &w->w[r];
		ev = ev_new(w, COHORT_EVENT_CRASH_INFO, k, 0);
		if (!ev)
			continue;
		ev_i64(ev, "signal", sig);
		ev_i64(ev, "code", code);
		ev_str(ev, "fault_addr", addr);
		ev_bool(ev, "in_guard", guard);
		ev_str(ev, "where", where);
		ev_i64(ev, "crashed_pid", pid);
		if (id && k && pid != k->pid)
			ev_process(ev, id);
		cohort__strlcpy(ev->backtrace, backtrace, sizeof(ev->backtrace));
		{
			char who[160];

			if (id)
				cohort_proc_identity_describe(id, who, sizeof(who));
			else
				snprintf(who, sizeof(who), "pid %d", (int)pid);
			ev_msg(ev, "%s: fatal signal %ld at %s%s%s", who, sig, addr[0] ? addr : "?",
			       where[0] ? " in " : "", where);
		}
	}
	closedir(d);
}

char *cohort_status_describe(int st, char *buf, size_t size)
{
	if (st < 0)
		snprintf(buf, size, "ended (status not known)");
	else if (WIFEXITED(st))
		snprintf(buf, size, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, size, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, size, "status %d", st);
	return buf;
}

static void end_worker(struct cohort_watch *w, struct wk *k, int st)
{
	const struct cohort_probe *probe = probe_of(w);
	struct cohort_worker_state ws;
	struct cohort_event *ev;
	struct cohort_cgmem cg;
	char how[96], a[32], b[32], c[32];
	const char *oom_evidence = NULL;
	bool oom = false;

	k->running = false;
	k->ended = true;
	k->status = st;
	k->end = cohort_watch_now(w);
	w->running--;
	if (k->cg[0]) {
		uint64_t p = cgroup_peak(k);

		if (p > k->peak_cg)
			k->peak_cg = p;
	}
	if (k->cgev) {
		cgroup_notified(w, k, k->cgev);
		if (w->epfd >= 0)
			(void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, cohort_cgevent_fd(k->cgev), NULL);
		cohort_cgevent_close(k->cgev);
		k->cgev = NULL;
	}
	if (st < 0 || WIFSIGNALED(st))
		collect_crashes(w);
	collect_exits(w, SIZE_MAX);
	/*
	 * Kills below the root first: the kernel log names their victims (and
	 * may name the root itself, which resolve_oom() leaves to this end).
	 */
	if (k->oom_pending)
		resolve_oom(w, k, false);
	if (w->job_oom_pending)
		resolve_oom(w, NULL, false);
	kmsg_drain(w);
	for (size_t i = 0; i < w->nkkill; i++)
		if (w->kkill[i].pid == k->pid)
			oom_evidence = "kernel_log";
	/* The kernel's OOM killer: the log, the worker's own cgroup, or the job's counter says so. */
	if (st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && k->stop_stage < 2) {
		uint64_t below = 0;

		for (int i = 0; i < k->ndeaths; i++)
			if (k->deaths[i].kind == 1)
				below += k->deaths[i].count;
		bool cg_read = k->cg[0] && cohort_cgroup_read(probe, k->cg, &cg) == 0;

		if (oom_evidence) {
			oom = true;
		} else if (cg_read && cg.oom_kill > k->oom_base + below) {
			/* More kills counted than those of processes below the root: one was the root's. */
			oom = true;
			if (k->oom_pending)
				k->oom_pending--;
		} else if ((!cg_read || cg.oom_kill == k->oom_base) && w->noom_levels) {
			/* v1 counts a kill where the limit was hit: the job's cgroup, perhaps. */
			uint64_t n = oom_kills(w);

			if (n > w->oom_kill_seen) {
				w->oom_kill_seen = n;
				oom = true;
			}
		}
	} else {
		oom_evidence = NULL;
	}
	if (k->oom_pending)
		resolve_oom(w, k, true);
	death_summaries(w, k);
	cohort_status_describe(st, how, sizeof(how));
	cohort_watch_worker(w, k->rank, &ws);
	ev = ev_new(w, COHORT_EVENT_EXIT, k, 0);
	ev_str(ev, "status", how);
	if (st >= 0 && WIFEXITED(st))
		ev_i64(ev, "exit_code", WEXITSTATUS(st));
	else
		ev_null(ev, "exit_code");
	if (st >= 0 && WIFSIGNALED(st))
		ev_i64(ev, "signal", WTERMSIG(st));
	else
		ev_null(ev, "signal");
	ev_bool(ev, "stopped_by_cohort", k->stop_stage > 0);
	ev_u64(ev, "peak_pss", k->peak_pss);
	ev_u64(ev, "peak_uss", k->peak_uss);
	ev_u64(ev, "peak_rss", k->peak_rss);
	ev_u64(ev, "peak_est", k->peak_est);
	if (k->peak_cg)
		ev_u64(ev, "peak_cgroup", k->peak_cg);
	ev_u64(ev, "last_est", k->est);
	ev_u64(ev, "last_used", k->use);
	ev_u64(ev, "peak_used", k->peak_use);
	ev_str(ev, "source", k->use_cg ? "cgroup" : "estimate");
	ev_u64(ev, "cow_copied", ws.cow_copied);
	ev_str(ev, "cow_source", k->cg_based ? "cgroup" : "estimate");
	ev_f64(ev, "runtime_s", k->end - k->start);
	ev_msg(ev, "rank %u (pid %d) ended: %s", k->rank, (int)k->pid, how);
	if (oom) {
		uint64_t limit = k->cg[0] && w->o.mem_per_worker ? w->o.mem_per_worker :
		                 w->has_alloc ? w->alloc.mem_limit : 0;

		k->oom_killed = true;
		ev = ev_new(w, COHORT_EVENT_OOM_KILL, k, 1);
		ev_u64(ev, "limit_bytes", limit);
		ev_u64(ev, "last_est", k->est);
		ev_u64(ev, "last_used", k->use);
		ev_str(ev, "source", k->use_cg ? "cgroup" : "estimate");
		if (k->has_cgu)
			ev_u64(ev, "last_cgroup", k->cg_usage);
		if (k->peak_cg)
			ev_u64(ev, "peak_cgroup", k->peak_cg);
		ev_str(ev, "cgroup", k->cg[0] ? k->cg : w->job_cg);
		/* The caller reaped it killed by SIGKILL while the counter rose, unless the log names it. */
		ev_str(ev, "evidence", oom_evidence ? oom_evidence : "reaper_status");
		{
			const struct cohort_proc_identity *id = ident_of(w, k->pid);

			if (id)
				ev_process(ev, id);
		}
		/* The cgroup's own count, what the kernel killed by, when the worker has one. */
		if (k->has_cgu || k->peak_cg)
			ev_msg(ev, "rank %u (pid %d) was killed by the kernel's OOM killer: its cgroup limit is "
			       "%s, its cgroup held %s at the last sample and %s at its peak (cgroup)",
			       k->rank, (int)k->pid, fmt_size(limit, a, sizeof(a)),
			       fmt_size(k->has_cgu ? k->cg_usage : k->use, b, sizeof(b)),
			       fmt_size(k->peak_cg ? k->peak_cg : k->cg_usage, c, sizeof(c)));
		else
			ev_msg(ev, "rank %u (pid %d) was killed by the kernel's OOM killer: its %s limit is %s, "
			       "it last used %s", k->rank, (int)k->pid, k->cg[0] ? "cgroup" : "job's",
			       fmt_size(limit, a, sizeof(a)), fmt_size(k->use, b, sizeof(b)));
	}
}

int cohort_watch_exited(struct cohort_watch *w, unsigned rank, int status)
{
	if (rank >= w->nw)
		return -ERANGE;
	if (!w->w[rank].running)
		return -ESRCH;
	end_worker(w, &w->w[rank], status);
	return 0;
}

int cohort_watch_signal(struct cohort_watch *w, int sig, pid_t sender_pid, long sender_uid,
                        const char *what)
{
	struct cohort_event *ev = ev_new(w, COHORT_EVENT_SIGNAL, NULL, 1);
	const char *abbrev = sigabbrev_np(sig);
	char name[32];

	if (!ev)
		return -ENOMEM;
	snprintf(name, sizeof(name), "SIG%s", abbrev ? abbrev : "?");
	ev_i64(ev, "signal", sig);
	ev_str(ev, "signal_name", name);
	if (sender_pid > 0)
		ev_i64(ev, "sender_pid", sender_pid);
	else
		ev_null(ev, "sender_pid");
	if (sender_pid > 0 && sender_uid >= 0)
		ev_i64(ev, "sender_uid", sender_uid);
	else
		ev_null(ev, "sender_uid");
	if (sender_pid > 0)
		ev_msg(ev, "the supervisor got %s from pid %d%s%s", name, (int)sender_pid, what ? ": " : "",
		       what ? what : "");
	else
		ev_msg(ev, "the supervisor got %s%s%s", name, what ? ": " : "", what ? what : "");
	return 0;
}

int cohort_watch_finish(struct cohort_watch *w)
{
	collect_crashes(w);
	collect_exits(w, SIZE_MAX);
	if (w->job_oom_pending)
		resolve_oom(w, NULL, true);
	for (unsigned r = 0; r < w->nw; r++) {
		if (w->w[r].oom_pending)
			resolve_oom(w, &w->w[r], true);
		death_summaries(w, &w->w[r]);
	}
	return 0;
}
