/*
 * cohort/watch.h - the watcher: a cohort's workers, their process trees,
 * their memory, and the decisions about them, as typed events.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 *
 * A watcher follows N workers (ranks 0..N-1). Each worker is a root
 * process and every process below it, or every process of a cgroup. The
 * caller starts the workers (or is handed them), tells the watcher when
 * one started and, when it is the parent, how it ended; calls
 * cohort_watch_tick() when cohort_watch_next_tick() says; and takes the
 * events the watcher queued with cohort_watch_next_event(). Events that
 * ask the caller to act say so in their action field (stop a rank); the
 * watcher itself never sends a signal, never prints and never forks, so
 * it may live in a process with threads (a SLURM plugin, Python) and in a
 * process that did not start the workers.
 *
 * One thread at a time may use a watcher.
 */
#ifndef COHORT_WATCH_H
#define COHORT_WATCH_H

#include "alloc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- events ---- */

enum cohort_event_kind {
	COHORT_EVENT_SPAWN = 1,         /* a worker started */
	COHORT_EVENT_SPAWN_FAILED,      /* its command could not be executed */
	COHORT_EVENT_EXIT,              /* a worker ended */
	COHORT_EVENT_WARNING,           /* near a limit, or --kill-on-bad-exit stops the rest */
	COHORT_EVENT_LIMIT,             /* a worker over its limit, or the largest over the budget: stop it */
	COHORT_EVENT_OOM_KILL,          /* the kernel's OOM killer ended a worker */
	COHORT_EVENT_LEAK,              /* a worker's RSS floor rises steadily (first seen) */
	COHORT_EVENT_COW_UNSHARE,       /* a worker's processes copy pages shared after fork (first seen) */
	COHORT_EVENT_SLURM_RSS_RISK,    /* SLURM's summed RSS near the limit while the PSS sum is not */
	COHORT_EVENT_CRASH_INFO,        /* the crash shim's record of a fatal signal */
	COHORT_EVENT_SEGMENTS_REMOVED,  /* the job's leftover segments were removed */
	COHORT_EVENT_SIGNAL,            /* the supervisor itself received a signal */
	COHORT_EVENT_KERNEL,            /* a cgroup notification: a limit crossed, an OOM in the job */
	COHORT_EVENT_CHILD_EXIT,        /* a process below a worker's root died of a signal or exited non-zero */
	COHORT_EVENT_KIND_MAX
};

/*
 * The name of a kind as the recording spells it ("oom_kill", "signal",
 * ...). Static; "unknown" for a value out of range.
 */
COHORT_EXPORT const char *cohort_event_name(enum cohort_event_kind kind);

/* The kind of a recorded name, or 0 when the name is not one. */
COHORT_EXPORT enum cohort_event_kind cohort_event_kind_of(const char *name);

enum cohort_field_type {
	COHORT_FIELD_U64 = 1,           /* bytes, counts */
	COHORT_FIELD_I64,
	COHORT_FIELD_F64,               /* seconds, rates */
	COHORT_FIELD_BOOL,
	COHORT_FIELD_STR,
	COHORT_FIELD_NULL               /* known to be absent */
};

struct cohort_event_field {
	const char *name;               /* static */
	enum cohort_field_type type;
	union { uint64_t u; int64_t i; double f; int b; } v;
	const char *s;                  /* COHORT_FIELD_STR: inside the event's own storage */
};

/* What the caller must do about an event. */
enum cohort_action {
	COHORT_ACTION_NONE = 0,
	COHORT_ACTION_STOP              /* stop the event's rank: SIGTERM to its group, SIGKILL after the grace */
};

#define COHORT_EVENT_FIELDS 16

struct cohort_event {
	enum cohort_event_kind kind;
	double t;                       /* seconds on the watcher's clock */
	int rank;                       /* -1: no single worker */
	pid_t pid;                      /* the worker's root pid, 0 with rank -1 */
	int notice;                     /* 1: people should hear of it now (a warning or worse) */
	enum cohort_action action;
	char message[COHORT_MSG_MAX];   /* the sentence, with the figures */
	int nfields;
	struct cohort_event_field fields[COHORT_EVENT_FIELDS];
	char backtrace[2048];           /* COHORT_EVENT_CRASH_INFO: frames, one per line */
	char strings[1024];             /* storage of the STR fields */
};

/* The numeric value of a field (U64, I64, F64, BOOL), or def. */
COHORT_EXPORT double cohort_event_num(const struct cohort_event *ev, const char *name, double def);

/* The string of a STR field, or NULL. */
COHORT_EXPORT const char *cohort_event_str(const struct cohort_event *ev, const char *name);

/* ---- the watcher ---- */

enum cohort_enforce {
	COHORT_ENFORCE_NONE = 0,        /* observe only */
	COHORT_ENFORCE_CGROUP,          /* the kernel enforces through per-worker cgroups */
	COHORT_ENFORCE_RLIMIT,          /* RLIMIT_DATA in each worker */
	COHORT_ENFORCE_WATCH            /* the watcher decides: COHORT_ACTION_STOP events */
};

struct cohort_watch_opts {
	const struct cohort_probe *probe; /* NULL: the real system; kept by pointer */
	unsigned workers;               /* ranks 0..workers-1; 1 to 65536 */
	uint64_t budget;                /* all workers together; 0: none */
	uint64_t mem_per_worker;        /* each worker's limit; 0: none */
	enum cohort_enforce enforce;
	double soft;                    /* warn at this share of a limit; 0: 0.9 */
	double interval;                /* seconds between samples; 0: 1 */
	double pss_budget;              /* fraction of a core for page walks; 0: 0.006 */
	double dense_interval;          /* seconds between samples in a worker's first seconds
	                                   and while one grows fast; 0: min(0.1, interval) */
	double dense_window;            /* how long after a start sampling stays dense; 0: 2 s */
	const struct cohort_alloc *alloc; /* copied; NULL: none (no SLURM check) */
	int slurm_sums_rss;             /* 1: SLURM's accounting sums RSS (jobacct_gather/linux
	                                   without UsePss); 0: it does not; -1: not known */
	const char *job_cgroup;         /* the cgroup whose limit binds the job, or NULL; copied */
	const char *crash_dir;          /* where the crash shim writes crash.<pid>, or NULL; copied */
	double grace;                   /* seconds from SIGTERM to SIGKILL, for the messages */
};

struct cohort_watch;

/*
 * Create a watcher. Returns 0 and *ret (free it with cohort_watch_free()),
 * -EINVAL for options out of range, -ENOMEM. The watcher's clock starts
 * now (CLOCK_MONOTONIC); every t below is seconds on it.
 */
COHORT_EXPORT int cohort_watch_create(const struct cohort_watch_opts *opts,
                                      struct cohort_watch **ret);

/* Free a watcher. Accepts NULL. */
COHORT_EXPORT void cohort_watch_free(struct cohort_watch *w);

/* Seconds since the watcher was created. */
COHORT_EXPORT double cohort_watch_now(const struct cohort_watch *w);

/* How the watcher learns that a worker ended. */
#define COHORT_WATCH_CHILD 1            /* the caller is its parent and reports the wait status */

/*
 * Rank started as pid (the root of its tree), its processes in cgroup_dir
 * when it has a cgroup of its own (NULL otherwise: the exact peak then comes
 * from the job's cgroup only). flags: COHORT_WATCH_CHILD when the caller
 * will call cohort_watch_exited(); without it the watcher notices the end
 * itself. Queues a spawn event. Returns 0, -ERANGE for a bad rank,
 * -EBUSY when the rank runs, -ENOMEM.
 */
COHORT_EXPORT int cohort_watch_start(struct cohort_watch *w, unsigned rank, pid_t pid,
                                     const char *cgroup_dir, int flags);

/*
 * Rank is every process of the cgroup at dir (and below), however they
 * were started: a SLURM task, say. It ends when the cgroup empties after
 * it held a process. Returns 0, -ERANGE, -EBUSY, -ENOENT, -ENOMEM.
 */
COHORT_EXPORT int cohort_watch_start_cgroup(struct cohort_watch *w, unsigned rank, const char *dir);

/* Rank's command could not be executed (errnum: the exec's errno). Queues spawn_failed. */
COHORT_EXPORT int cohort_watch_spawn_failed(struct cohort_watch *w, unsigned rank, pid_t pid,
                                            const char *command, int errnum);

/*
 * The caller stops rank (it sent SIGTERM, or SIGKILL when kill is 1),
 * because of an event or of its own accord: the worker's memory is then no
 * longer counted against the budget, and its end is recorded as cohort's
 * doing. Returns 0 or -ERANGE.
 */
COHORT_EXPORT int cohort_watch_stopping(struct cohort_watch *w, unsigned rank, int kill);

/*
 * The caller reaped rank's root process with wait status status. Takes a
 * last look at its tree and cgroup, the crash shim's files and the
 * cgroups' OOM counters, then queues the exit event (and oom_kill,
 * crash_info). Returns 0, -ERANGE, -ESRCH when the rank was not running.
 */
COHORT_EXPORT int cohort_watch_exited(struct cohort_watch *w, unsigned rank, int status);

/*
 * The caller (the supervisor) received signal sig from sender_pid (0 when
 * unknown; sender_uid -1 when unknown) and does what `what` says (may be
 * NULL). Queues a signal event. Call cohort_watch_tick() first so that
 * the recording holds the figures of that moment. Returns 0 or -ENOMEM.
 */
COHORT_EXPORT int cohort_watch_signal(struct cohort_watch *w, int sig, pid_t sender_pid,
                                      long sender_uid, const char *what);

/*
 * One sample: every live worker's tree, statm of each process, PSS within
 * the CPU budget (fresh walks for a worker at a new peak), the estimate
 * checked against the limits, leaks, copy-on-write, the job's cgroup and
 * pressure. Queues the events it finds. Returns 0, or -ENOMEM.
 */
COHORT_EXPORT int cohort_watch_tick(struct cohort_watch *w);

/* When the next sample is due, on the watcher's clock: dense after starts and during fast growth. */
COHORT_EXPORT double cohort_watch_next_tick(const struct cohort_watch *w);

/*
 * Descriptors the watcher wants polled for POLLIN (kernel cgroup
 * notifications). Fills up to size of fds, returns how many there are.
 */
COHORT_EXPORT size_t cohort_watch_fds(const struct cohort_watch *w, int *fds, size_t size);

/* One of those descriptors is readable: read it and queue what it says. Returns 0. */
COHORT_EXPORT int cohort_watch_ready(struct cohort_watch *w, int fd);

/* Queue an event of the caller's (kind, rank or -1, message) with no fields. */
COHORT_EXPORT int cohort_watch_note(struct cohort_watch *w, enum cohort_event_kind kind, int rank,
                                    int notice, const char *message);

/*
 * The oldest queued event into *ret, removed from the queue. Returns 1,
 * or 0 when none is queued.
 */
COHORT_EXPORT int cohort_watch_next_event(struct cohort_watch *w, struct cohort_event *ret);

/* A worker as the watcher sees it now. */
struct cohort_worker_state {
	unsigned rank;
	pid_t pid;                      /* 0 before it started */
	int running;
	int ended;                      /* 1 once it ended; status then holds how */
	int status;                     /* wait status, -1 when not known (not the caller's child) */
	int stopped_by_cohort;
	int oom_killed;                 /* the root was OOM-killed */
	uint64_t oom_kills_below;       /* OOM kills the kernel notified in its cgroup, the root's included,
	                                   and kills in the job's cgroup whose victim was of its tree */
	unsigned nprocs;                /* the root and its descendants, at the last sample */
	/* The last sample, summed over the tree: */
	uint64_t rss, pss, uss, est, shared, swap, shmem;
	double pss_age;                 /* seconds: the oldest PSS figure used */
	/*
	 * Pages copied after fork: without a cgroup of its own, so far by its
	 * live and gone processes (page walks); with one, the most its
	 * cgroup's anonymous memory held beyond what its processes allocated
	 * (the kernel's count, at a sample).
	 */
	uint64_t cow_copied;
	/* Peaks over the run: */
	uint64_t peak_rss, peak_pss, peak_uss, peak_est;
	uint64_t peak_cgroup;           /* the worker cgroup's exact peak (max_usage / memory.peak), 0 without */
	double start, end;              /* watcher clock */
	char cgroup[COHORT_PATH_MAX];   /* its own cgroup, "" without */
	/*
	 * The figure judged against its budget: the larger of est and its
	 * cgroup's usage less inactive page cache (used_by_cgroup 1 when the
	 * cgroup's), and the largest it was.
	 */
	uint64_t used, peak_used;
	int used_by_cgroup;
	/* Its own cgroup at the last sample (has_cgroup_usage 0: not read): */
	int has_cgroup_usage;
	uint64_t cg_usage;              /* v1 memory.usage_in_bytes, v2 memory.current */
	uint64_t cg_work;               /* usage less inactive_file */
	uint64_t cg_anon, cg_file, cg_shmem, cg_inactive_file; /* memory.stat */
};

/* Rank's state into *ret. Returns 0 or -ERANGE. */
COHORT_EXPORT int cohort_watch_worker(const struct cohort_watch *w, unsigned rank,
                                      struct cohort_worker_state *ret);

/* The last sample of the whole job. */
struct cohort_watch_totals {
	double t;                       /* when; -1 before the first */
	uint64_t rss_sum, pss_sum, uss_sum, est_sum;
	int has_cgroup;                 /* the job's cgroup was read */
	uint64_t cg_usage, cg_peak, cg_limit, cg_shmem, cg_swap, cg_oom_kill;
	int has_psi;
	double psi_some10, psi_full10;
	int has_shm;
	uint64_t shm_free, shm_size;
	int has_swap;
	uint64_t swap_used;
	uint64_t ticks;
	double sampler_cpu_s;           /* CPU the sampler spent reading /proc */
};

/* The last sample's totals into *ret. Cannot fail. */
COHORT_EXPORT void cohort_watch_totals(const struct cohort_watch *w, struct cohort_watch_totals *ret);

/*
 * The end of the run, after the last worker was reaped: the crash shim's
 * files of processes that died after their worker (crash_info events).
 * Returns 0.
 */
COHORT_EXPORT int cohort_watch_finish(struct cohort_watch *w);

/*
 * A wait status in words: "exit 3", "signal 9 (Killed)", or "ended
 * (status not known)" for -1 (a process the caller did not reap). Writes
 * at most size bytes to buf and returns buf.
 */
COHORT_EXPORT char *cohort_status_describe(int status, char *buf, size_t size);

/* Ranks running now. */
COHORT_EXPORT unsigned cohort_watch_running(const struct cohort_watch *w);

#ifdef __cplusplus
}
#endif

#endif /* COHORT_WATCH_H */
