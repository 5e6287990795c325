/*
 * cohort/recording.h - recordings of cohort run, and their diagnosis.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 */
#ifndef COHORT_RECORDING_H
#define COHORT_RECORDING_H

#include "base.h"

/* From alloc.h: this header needs only the name, and so compiles alone. */
struct cohort_alloc;

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tasks of a job ---- */

/*
 * Which task of a job a supervisor is: one of the tasks of a SLURM step
 * (`srun -n 4 cohort run`), or one rank of `mpirun ... cohort run`. Every
 * figure not known is -1, every string not known "".
 */
struct cohort_task {
	int known;                       /* 1: one task of several (or of a step) with an id */
	char source[8];                  /* "slurm" (SLURM_PROCID), "mpi" (OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK), "" */
	char job[COHORT_ID_MAX];         /* the job: SLURM_JOB_ID, else the MPI job (OMPI_MCA_ess_base_jobid, PMIX_NAMESPACE) */
	char step[COHORT_ID_MAX];        /* SLURM_STEP_ID, "batch" in a batch script, "mpi" for ranks mpirun started */
	long id;                         /* the task: SLURM_PROCID, else the MPI rank */
	long ntasks;                     /* tasks in the step: SLURM_NTASKS, else OMPI_COMM_WORLD_SIZE */
	char node[COHORT_ID_MAX];        /* SLURMD_NODENAME, else the host name */
	long node_id;                    /* SLURM_NODEID */
	long tasks_on_node;              /* tasks of the step on this node */
	long local_id;                   /* SLURM_LOCALID, else OMPI_COMM_WORLD_LOCAL_RANK */
	/*
	 * The job-wide rank of this task's worker 0: id x the task's workers
	 * (`-n K` per task: global rank = id x K + local rank; every task of a
	 * step runs the same command, so the same K). 0 when not a task.
	 */
	long rank_offset;
};

/*
 * Tell which task of a job the caller is, from the environment of probe
 * (NULL: the process's own) and the allocation already detected (its
 * SLURM ids and cgroup). job is the job's name for recordings (`COHORT_JOB`,
 * the SLURM job id, "local-<pid>"), used when the environment names no job;
 * workers is the number of workers per task (for rank_offset). An MPI rank
 * in the environment names the task when SLURM's ids do not tell tasks
 * apart (mpirun inside an allocation: every rank sees the same
 * SLURM_PROCID or none). Returns 0 and *ret (known 0 when the caller is no
 * task of several); -EINVAL when an argument is NULL.
 */
COHORT_EXPORT int cohort_task_detect(const struct cohort_probe *probe, const struct cohort_alloc *alloc,
                                     const char *job, unsigned workers, struct cohort_task *ret);

/*
 * The default recording's file name for a job and task:
 * "cohort-<job>.<step>.<id>.ndjson" for a task, "cohort-<job>.<step>.ndjson"
 * for a step without task id, "cohort-<job>.ndjson" otherwise. task may be
 * NULL. A job or step that could climb out of the directory ('/', or
 * starting with '.') is refused. Returns the length, -EINVAL on a bad name,
 * -ENAMETOOLONG when buf is too small.
 */
COHORT_EXPORT int cohort_recording_name(const char *job, const struct cohort_task *task,
                                        char *buf, size_t size);

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
	char source[16];                 /* "source": "cgroup" or "estimate", the figure's origin, or "" */
	char growth[16];                 /* "kind_of_growth" of cow_unshare: "cow", "shmem", "page_cache", or "" */
	char process_cmdline[COHORT_CMDLINE_MAX]; /* "process_cmdline", or "" */
	char evidence[16];               /* kind "oom_kill": how its victim was found ("kernel_log", "reaper_status", "vanished"), or "" */
	/* The signal the supervisor got (kind "signal"), or "": */
	char signal_name[16];            /* "SIGTERM"; its number, sender_pid, sender_uid are in nums */
};

/* A worker's figures in one sample that listed it. */
struct cohort_rec_point {
	size_t sample;                   /* index into cohort_recording.samples */
	uint64_t pss, uss, rss;
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
	/*
	 * The samples that listed this worker, in order (one point per
	 * sample): allocated only for workers the samples name, so memory
	 * follows the file, not the header's worker count.
	 */
	struct cohort_rec_point *series;
	size_t nseries;
	/*
	 * The figure judged against its budget (the larger of the estimate and
	 * its cgroup's usage less inactive page cache), at the end and its
	 * largest; used_by_cgroup 1 when the last one was the cgroup's; 0 in
	 * recordings from before it was recorded. last_cgroup: its cgroup's
	 * usage in the last sample, 0 without.
	 */
	uint64_t last_used, peak_used, last_cgroup;
	int used_by_cgroup;
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
	struct cohort_rec_event *events;
	size_t nevents;
	/* Event indices sorted by (kind, rank, order) and by (kind, order): see cohort_rec_find_event. */
	size_t *by_kind_rank, *by_kind;

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

	/*
	 * Which task of its job the recording is: the header's "task", or for
	 * recordings made before it was written, what the header's SLURM ids
	 * say (task.known 0 when nothing does).
	 */
	struct cohort_task task;
	int task_from_header;            /* 1: the header had "task" */
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
                                        char *why, size_t why_size);

/* Free a recording. Accepts NULL. */
COHORT_EXPORT void cohort_recording_free(struct cohort_recording *rec);

/*
 * The first event (in the file's order) of kind for worker rank, or of any
 * rank when rank is -2; NULL when there is none. O(log n): the reader
 * indexes the events, so a diagnosis never walks them once per worker.
 */
COHORT_EXPORT const struct cohort_rec_event *cohort_rec_find_event(const struct cohort_recording *rec,
                                                                   const char *kind, int rank);

/*
 * The events of kind for rank (>= -1), in the file's order, as a range
 * [*ret_first, *ret_end) of rec->by_kind_rank. Returns the count.
 */
COHORT_EXPORT size_t cohort_rec_events_of(const struct cohort_recording *rec, const char *kind,
                                          int rank, size_t *ret_first, size_t *ret_end);

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
	COHORT_FINDING_SPAWN_FAILED,     /* a worker could not be started (the others were stopped) */
	COHORT_FINDING_SHMEM_CHARGED,    /* tmpfs (/dev/shm) pages charged to a worker's cgroup */
	COHORT_FINDING_PAGE_CACHE,       /* page cache made up a worker cgroup's usage near its limit */
	COHORT_FINDING_NODE_IMBALANCE    /* one node's tasks used several times the other nodes' (job-level) */
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
	/*
	 * In a job of several tasks: the recording's task id (-1 when it is
	 * no task), and the worker's rank in the whole job (the recording's
	 * task.rank_offset + rank; -1 with rank -1). Messages name workers by
	 * their job-wide rank.
	 */
	long task;
	int global_rank;
	char node[COHORT_ID_MAX];        /* the task's node (SLURMD_NODENAME), else the host */
};

/*
 * Diagnose one or more recordings (one per node or task of a job). Fills a
 * malloc'd array of findings, most important first (a worker that could not
 * be started, kills, crashes, the job stopped by a signal, trends, other
 * exits, a cut recording), and its count. A recording in which the
 * supervisor got a signal, or a worker died of one, always gives at least
 * one finding. Returns 0 or -ENOMEM. Free the array with
 * cohort_findings_free().
 */
COHORT_EXPORT int cohort_diagnose(struct cohort_recording *const *recs, size_t nrecs,
                                  struct cohort_finding **ret, size_t *ret_n);

/* Free the findings of cohort_diagnose(). Accepts NULL. */
COHORT_EXPORT void cohort_findings_free(struct cohort_finding *findings);

/* ---- one job from the recordings of its tasks ---- */

/* What keeps recordings from merging into one job, or was found merging them. */
enum cohort_merge_problem_kind {
	COHORT_MERGE_MISSING = 1,        /* a task of the step has no recording among those given */
	COHORT_MERGE_DUPLICATE,          /* two recordings say they are the same task */
	COHORT_MERGE_MIXED,              /* a recording of another job or step (merged with COHORT_MERGE_FORCE) */
	COHORT_MERGE_RENUMBERED,         /* the tasks' ranks overlapped (different -n per task): renumbered in task order */
	COHORT_MERGE_CUT                 /* a task's recording ends without its end line: its supervisor or node was lost */
};

struct cohort_merge_problem {
	enum cohort_merge_problem_kind kind;
	long task;                       /* the task it concerns, -1: none */
	char message[COHORT_MSG_MAX];    /* a sentence with the names and figures */
};

/*
 * A job's recordings as one: its tasks in order, each recording's
 * task.rank_offset set so that every worker has one job-wide rank
 * (recording's offset + its rank), and what could not be merged.
 */
struct cohort_job {
	char job[COHORT_ID_MAX];         /* the first recording's job */
	char step[COHORT_ID_MAX];        /* its step, "" when it names none */
	long ntasks;                     /* the step's tasks as the headers say, -1: not known */
	struct cohort_recording **recs;  /* nrecs, by task (recordings without a task last); borrowed */
	size_t nrecs;
	unsigned nworkers;               /* all recordings' workers */
	struct cohort_merge_problem *problems;
	size_t nproblems;
};

/* Merge recordings of different jobs or steps anyway (each problem is still listed). */
#define COHORT_MERGE_FORCE 1u

/*
 * Merge the recordings of one job's tasks (`srun -n 4 cohort run`, or
 * `mpirun ... cohort run`: one recording per task) into one view: orders
 * them by task, gives every worker its job-wide rank (in
 * recs[i]->task.rank_offset, which this sets), and lists the tasks of the
 * step that have no recording (with the name it would have), duplicate
 * tasks, ranks renumbered because the tasks' ranges overlapped, and the
 * recordings of the step cut short (each with its task and node). A
 * missing task is placed on its node when the other tasks' headers show
 * SLURM's block distribution (task id / tasks per node = node index).
 * Recordings that name no task are kept after the tasks, with offsets
 * after theirs. The recordings stay the caller's and must outlive *ret.
 *
 * Returns 0 and *ret (free with cohort_job_free()); COHORT_EMIXEDJOB when
 * the recordings are of different jobs or steps and flags lacks
 * COHORT_MERGE_FORCE (err names two of them): every recording is of its
 * task's job, or of its header's "job" when it names no task (a local
 * run's local-<pid>), so two unrelated local runs are refused too; -EINVAL when n is 0;
 * -ENOMEM. err may be NULL.
 */
COHORT_EXPORT int cohort_job_merge(struct cohort_recording *const *recs, size_t n, unsigned flags,
                                   struct cohort_job **ret, char *why, size_t why_size);

/* Free a merged job (not its recordings). Accepts NULL. */
COHORT_EXPORT void cohort_job_free(struct cohort_job *job);

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
 * Create (or truncate) the recording at path, 0644; path NULL keeps it in
 * memory only (a memfd), which still lets the caller read it back for its
 * findings. Same as cohort_recorder_open_flags(path, 0, ret).
 */
COHORT_EXPORT int cohort_recorder_open(const char *path, struct cohort_recorder **ret);

/* Create the file, and fail with -EEXIST when anything has the name already. */
#define COHORT_RECORDER_EXCL 1u

/*
 * Open the recording at path once, for the whole run: never through a
 * symlink, never blocking (a FIFO planted at the name is refused, not
 * waited on), and only a regular file the caller owns, so that a file
 * another user placed in a shared directory is never written, nor handed
 * root's recording. With COHORT_RECORDER_EXCL the file is created and
 * must not exist (the way to make a name this writer's alone); without,
 * an existing file of the caller's is truncated. path NULL: in memory.
 *
 * Returns 0 and *ret (close it with cohort_recorder_close()); -EEXIST
 * (EXCL: the name exists, whatever it is), -ELOOP (a symlink), -ENXIO or
 * -EINVAL (a FIFO, a device, a socket: not a regular file), -EISDIR,
 * -EPERM (a file another user owns), or another -errno of open(2).
 */
COHORT_EXPORT int cohort_recorder_open_flags(const char *path, unsigned flags,
                                             struct cohort_recorder **ret);

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
	const struct cohort_task *task;   /* which task of the job this is; NULL or not known: "task" is null */
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
