/*
 * cohort/recording.h - recordings of cohort run, and their diagnosis.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 */
#ifndef COHORT_RECORDING_H
#define COHORT_RECORDING_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- recordings and diagnosis ---- */

/*
 * A recording written by `cohort run` (docs/recording.md), read back. Every
 * string is NUL-terminated and truncated to its buffer; every figure the
 * recording lacks is 0 (or -1 where 0 is meaningful).
 */
#define COHORT_EVENT_NUMS 16

struct cohort_rec_event {
	double t;
	char kind[24];
	int rank;                        /* -1: no single worker */
	pid_t pid;
	char message[COHORT_MSG_MAX];
	int nnums;                       /* the event's numeric fields, by name */
	struct { char name[32]; double value; } nums[COHORT_EVENT_NUMS];
	/* A crash's details (kind "crash_info"): */
	uint64_t fault_addr;
	int in_guard;                    /* the address lies in a segment's guard page */
	char where[256];                 /* the mapping that holds the address, or "" */
	char backtrace[2048];            /* frames, one per line */
	char process[16];                /* "process": the command of the process in the tree that did it, or "" */
	char process_cmdline[COHORT_CMDLINE_MAX]; /* "process_cmdline", or "" */
	char evidence[16];               /* kind "oom_kill": how its victim was found ("kernel_log", "reaper_status", "vanished"), or "" */
	/* The signal the supervisor got (kind "signal"), or "": */
	char signal_name[16];            /* "SIGTERM"; its number, sender_pid, sender_uid are in nums */
};

struct cohort_rec_worker {
	int rank;
	pid_t pid;
	int ended;                       /* 0 while the recording says it still ran */
	int exit_code;                   /* 0-255; -1 when it died of a signal, or unknown */
	int signal;                      /* 1-127; 0 when it exited */
	int stopped_by_cohort;
	/*
	 * Peaks: the largest of the samples and of the exit event's figures.
	 * last_est: the exit event's, else the last sample's. cow_copied: the
	 * final copy-on-write total, the exit event's, else (a recording cut
	 * before the worker ended) the last sample's for this rank.
	 */
	uint64_t peak_rss, peak_pss, peak_uss, peak_est, last_est, cow_copied;
	double start, end;
	uint64_t peak_cgroup;            /* exact peak of the worker's own memory cgroup (exit event), 0: none */
	uint64_t last_rss;               /* RSS in the last sample that had this rank */
};

struct cohort_rec_sample {
	double t;
	uint64_t rss_sum, pss_sum, uss_sum, est_sum;
	uint64_t cg_usage, cg_limit, cg_shmem, cg_swap, cg_oom_kill;  /* 0 without a cgroup */
	int has_cgroup;
	double psi_some10, psi_full10;   /* -1 without PSI */
	uint64_t shm_free;               /* /dev/shm free space, 0 if unknown */
	uint64_t swap_used;              /* node swap in use, 0 if unknown */
};

struct cohort_recording {
	char path[COHORT_PATH_MAX];
	int format;
	char host[COHORT_ID_MAX];
	char job[COHORT_ID_MAX];
	char command[512];               /* the worker command, words joined by spaces */
	double start;                    /* Unix time */
	unsigned nworkers;
	uint64_t budget, mem_per_worker, mem_limit;
	char mem_limit_source[32];
	char enforce[16];
	double interval;
	int slurm;                       /* 1 inside a SLURM job */
	char slurm_job[COHORT_ID_MAX], slurm_step[COHORT_ID_MAX];
	long slurm_proc;                 /* SLURM_PROCID, -1 */
	char jobacct[64], jobacct_params[128];
	uint64_t shm_free_start, shm_size;

	struct cohort_rec_worker *workers;   /* nworkers, by rank */
	struct cohort_rec_sample *samples;
	size_t nsamples;
	/* Per-sample, per-rank series: index sample * nworkers + rank. */
	uint64_t *w_pss, *w_uss, *w_rss;
	struct cohort_rec_event *events;
	size_t nevents;

	int ended;                       /* the "end" line is there */
	int exit_status;                 /* from the "end" line, -1 without it */
	int cut;                         /* the last line was cut mid-way */
	size_t bad_lines;                /* lines that were not JSON objects of a known type */
	double duration;                 /* time of the last line */

	/*
	 * The first signal the supervisor itself got (a "signal" event): its
	 * number, -1 when the event lacks a valid one, 0 when there is none.
	 */
	int signal;
	char signal_name[16];            /* "SIGTERM", or "" when unknown */
	double signal_t;
	long signal_sender_pid;          /* -1: unknown */
	long signal_sender_uid;          /* -1: unknown */
};

/*
 * Read a recording. A last line cut mid-way (a supervisor killed while
 * writing) is skipped and flagged in ->cut; other malformed lines are
 * counted in ->bad_lines and skipped. Returns 0 and *ret (free it with
 * cohort_recording_free()), -errno when the file cannot be read,
 * COHORT_EBADREC when it is not a cohort recording (no header first, or a
 * format newer than this library knows). err (may be NULL) receives a
 * sentence naming the file and the problem.
 */
COHORT_EXPORT int cohort_recording_load(const char *path, struct cohort_recording **ret,
                                        char *err, size_t errsize);

/* Free a recording. Accepts NULL. */
COHORT_EXPORT void cohort_recording_free(struct cohort_recording *rec);

/* The value of an event's numeric field, or def when it has none of that name. */
COHORT_EXPORT double cohort_rec_event_num(const struct cohort_rec_event *e, const char *name,
                                          double def);

enum cohort_finding_kind {
	COHORT_FINDING_OOM_KILL = 1,     /* the kernel's OOM killer ended a worker */
	COHORT_FINDING_BUDGET_KILL,      /* cohort stopped a worker at its budget */
	COHORT_FINDING_SLURM_RSS_OVERCOUNT, /* SLURM's RSS sum over the limit while the PSS sum fitted */
	COHORT_FINDING_SHM_EXHAUSTED,    /* SIGBUS or failure while /dev/shm or the job could not hold the segments */
	COHORT_FINDING_SEGFAULT,         /* SIGSEGV */
	COHORT_FINDING_BUS_ERROR,        /* SIGBUS not explained by /dev/shm */
	COHORT_FINDING_LEAK,             /* sustained growth in one worker */
	COHORT_FINDING_COW_UNSHARE,      /* pages copied after fork */
	COHORT_FINDING_OVERSUBSCRIBED,   /* swap or memory pressure while the workers ran */
	COHORT_FINDING_CRASH,            /* another fatal signal */
	COHORT_FINDING_EXIT_NONZERO,     /* a worker exited with a non-zero code */
	COHORT_FINDING_CUT,              /* the recording ends without the supervisor's end */
	COHORT_FINDING_SIGNALLED,        /* cohort itself, or a worker from outside, got SIGTERM, SIGINT or SIGHUP */
	COHORT_FINDING_SPAWN_FAILED      /* a worker could not be started (the others were stopped) */
};

/* A short stable name for a finding kind: "oom_kill", "leak", ... Static. */
COHORT_EXPORT const char *cohort_finding_name(enum cohort_finding_kind kind);

#define COHORT_EVIDENCE_MAX 8

struct cohort_finding {
	enum cohort_finding_kind kind;
	int rank;                        /* -1: the job as a whole */
	pid_t pid;                       /* 0 with rank -1 */
	char host[COHORT_ID_MAX];        /* the recording's host */
	char message[COHORT_MSG_MAX];    /* what happened, with the figures */
	char fix[COHORT_MSG_MAX];        /* what to change */
	int nevidence;
	struct { char name[32]; double value; char unit[8]; } evidence[COHORT_EVIDENCE_MAX];
	double t;                        /* when, seconds from the start; -1 for the whole run */
	char backtrace[2048];            /* a crash's frames, innermost first, one per line, or "" */
};

/*
 * Diagnose one or more recordings (one per node or task of a job). Fills a
 * malloc'd array of findings, most important first (a worker that could not
 * be started, kills, crashes, the job stopped by a signal, trends, other
 * exits, a cut recording), and its count. A recording in which the
 * supervisor got a signal, or a worker died of one, always gives at least
 * one finding. Returns 0 or -ENOMEM. Free the array with free().
 */
COHORT_EXPORT int cohort_diagnose(struct cohort_recording *const *recs, size_t nrecs,
                                  struct cohort_finding **ret, size_t *ret_n);

/* ---- writing a recording ---- */

/*
 * The writer of a recording (docs/recording.md): one JSON object per line,
 * every line formed whole and written with one write(2) on a descriptor
 * opened with O_APPEND, so a writer killed with SIGKILL leaves at most one
 * cut line, the last. A failed write (disk full, quota) stops the
 * recording for good: that call returns -errno, later ones do nothing and
 * return 0, and cohort_recorder_error() tells why.
 */
struct cohort_recorder;
struct cohort_watch;
struct cohort_event;
struct cohort_alloc;

/* The format number written in the header; a reader refuses a larger one. */
#define COHORT_RECORDING_FORMAT 1

/*
 * Create (or truncate) the recording at path, 0644, never through a
 * symlink; path NULL keeps it in memory only (a memfd), which still lets
 * the caller read it back for its findings. Returns 0 and *ret (close it
 * with cohort_recorder_close()), or -errno.
 */
COHORT_EXPORT int cohort_recorder_open(const char *path, struct cohort_recorder **ret);

/* Close a recorder. Accepts NULL. */
COHORT_EXPORT void cohort_recorder_close(struct cohort_recorder *rec);

/* Its descriptor (for reading it back through /proc/self/fd), its path ("(not recorded)" in memory). */
COHORT_EXPORT int cohort_recorder_fd(const struct cohort_recorder *rec);
COHORT_EXPORT const char *cohort_recorder_path(const struct cohort_recorder *rec);

/* 1 when the recording lives in memory only. */
COHORT_EXPORT int cohort_recorder_in_memory(const struct cohort_recorder *rec);

/* The errno that stopped the recording, or 0 while it records. */
COHORT_EXPORT int cohort_recorder_error(const struct cohort_recorder *rec);

/* What the header line says; NULL strings are written as null. */
struct cohort_rec_header_info {
	const char *host;
	double start;                     /* Unix time */
	pid_t supervisor_pid;
	const char *job;
	char *const *argv;                /* the worker command, NULL-terminated */
	unsigned workers;
	const struct cohort_alloc *alloc;
	uint64_t budget;
	const char *budget_source;
	uint64_t mem_per_worker;
	const char *enforce;              /* "cgroup", "rlimit", "watch" */
	double soft, interval, pss_budget, grace;
	const char *jobacct_type;         /* SLURM's JobAcctGatherType, NULL outside SLURM or unknown */
	const char *jobacct_params;
	const char *job_cgroup;
	int catch_on;                     /* the crash shim is preloaded */
	const char *catch_off;            /* why not */
};

/* Write the header line. Returns 0 or -errno (see above). */
COHORT_EXPORT int cohort_recorder_header(struct cohort_recorder *rec,
                                         const struct cohort_rec_header_info *h);

/* Write a sample line from the watcher's last tick. Returns 0 or -errno. */
COHORT_EXPORT int cohort_recorder_sample(struct cohort_recorder *rec, const struct cohort_watch *w);

/* Write an event line. Returns 0 or -errno. */
COHORT_EXPORT int cohort_recorder_event(struct cohort_recorder *rec, const struct cohort_event *ev);

/* Write the end line: the supervisor's exit status. Returns 0 or -errno. */
COHORT_EXPORT int cohort_recorder_end(struct cohort_recorder *rec, const struct cohort_watch *w,
                                      int exit_status);

#ifdef __cplusplus
}
#endif

#endif /* COHORT_RECORDING_H */
