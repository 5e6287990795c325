/*
 * cohort.h - the public API of libcohort.
 *
 * libcohort runs the worker processes of one job as a cohort: it reads the
 * allocation the job really has (cgroup, SLURM, RAM, /dev/shm), measures
 * processes correctly, and gives them shared memory that cannot race, hang
 * or SIGBUS.
 *
 * Conventions, everywhere in this header:
 *   - Functions return int: >= 0 on success, a negative error code on
 *     failure: -errno for system errors, or one of the COHORT_E* codes below.
 *     cohort_strerror() names every code.
 *   - Output parameters are named ret_*, and are written only on success.
 *   - The library never prints and never exits.
 *   - Objects that live in shared memory are placed by the caller.
 *
 * Thread safety: unless a function says otherwise, it may be called from
 * several threads at once on different objects.
 */
#ifndef COHORT_H
#define COHORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define COHORT_EXPORT __attribute__((visibility("default")))
#else
#define COHORT_EXPORT
#endif

/* Alignment of objects placed in shared memory (one cache line). */
#ifdef __cplusplus
#define COHORT_ALIGN64 alignas(64)
#else
#define COHORT_ALIGN64 _Alignas(64)
#endif

/* ------------------------------------------------------------------------
 * Version and errors
 * ------------------------------------------------------------------------ */

#define COHORT_VERSION_MAJOR 0
#define COHORT_VERSION_MINOR 1
#define COHORT_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH". The string is static. */
COHORT_EXPORT const char *cohort_version(void);

/*
 * cohort's own error codes. They lie far below any -errno value, so a
 * negative return is either -errno or one of these.
 */
enum {
	COHORT_EFIRST          = -10000,
	COHORT_ESIZE_SYNTAX    = -10000, /* not a size: "4Q", "", "1..5G" */
	COHORT_ESIZE_RANGE     = -10001, /* a size above 2^64-1 bytes */
	COHORT_ESIZE_FRACTION  = -10002, /* a fraction that is not a whole byte */
	COHORT_EPARSE          = -10003, /* a /proc or cgroup file with odd contents */
	COHORT_ENOCGROUP       = -10004, /* no memory cgroup found for the process */
	COHORT_EPLAN           = -10005, /* a plan with impossible figures */
	COHORT_EBADSEG         = -10006, /* a segment whose header is not cohort's or is corrupt */
	COHORT_EOWNERDEAD      = -10007, /* the holder of a lock died; data may need repair */
	COHORT_ENOTRECOVERABLE = -10008, /* a lock whose data was never repaired */
	COHORT_EPEERDEAD       = -10009, /* a participant died while others waited */
	COHORT_ETIMEDOUT       = -10010, /* a timed wait ran out */
	COHORT_ELOST           = -10011, /* a message was lost with its dead sender */
	COHORT_ECORRUPT        = -10012, /* shared data failed a bounds or canary check */
	COHORT_ENOSPACE        = -10013, /* a segment, queue or arena is full */
	COHORT_EBADREC         = -10014, /* not a cohort recording, or a newer format */
	COHORT_ELAST           = -10099
};

/*
 * A short English description of an error code returned by any cohort call
 * (a negative -errno value or a COHORT_E* code). The string is static.
 * Unknown codes give "unknown error".
 */
COHORT_EXPORT const char *cohort_strerror(int err);

/* ------------------------------------------------------------------------
 * Sizes
 * ------------------------------------------------------------------------ */

/*
 * Parse a memory size written as SLURM writes them: a decimal number with an
 * optional fraction and an optional unit suffix K, M, G or T (either case,
 * optionally followed by "B" or "iB"). Units are binary (1K = 1024). A bare
 * number means megabytes, as in `srun --mem=500`.
 *
 * Examples: "500M" = 524288000, "4G", "1.5T", "2048" = 2 GiB, "64KiB".
 *
 * On success stores the number of bytes in *ret_bytes and returns 0. On
 * failure returns COHORT_ESIZE_SYNTAX (not a size), COHORT_ESIZE_RANGE (more
 * than 2^64-1 bytes) or COHORT_ESIZE_FRACTION (a fraction that does not
 * come to a whole number of bytes, such as "0.1K"); nothing is rounded or
 * truncated silently.
 */
COHORT_EXPORT int cohort_size_parse(const char *text, uint64_t *ret_bytes);

/*
 * Write a size for people into buf, with a binary unit and one decimal
 * where it helps: "512 B", "1.5 KiB", "300.0 MiB", "4.0 GiB". Always
 * NUL-terminates when size > 0. Returns buf.
 */
COHORT_EXPORT char *cohort_size_format(uint64_t bytes, char *buf, size_t size);

/* ------------------------------------------------------------------------
 * The allocation: what this job may really use on this node
 * ------------------------------------------------------------------------ */

/* Where a figure came from. */
enum cohort_source {
	COHORT_SRC_NONE = 0,        /* not known */
	COHORT_SRC_CGROUP,          /* a cgroup limit (v1 memory.limit_in_bytes, v2 memory.max or memory.high) */
	COHORT_SRC_SLURM_MEM_PER_NODE, /* SLURM_MEM_PER_NODE */
	COHORT_SRC_SLURM_MEM_PER_CPU,  /* SLURM_MEM_PER_CPU x CPUs */
	COHORT_SRC_MEMTOTAL,        /* /proc/meminfo MemTotal: no other limit */
	COHORT_SRC_AFFINITY,        /* the CPU affinity mask (Cpus_allowed_list) */
	COHORT_SRC_SLURM_CPUS,      /* SLURM_CPUS_ON_NODE */
	COHORT_SRC_NPROC            /* the configured processors, no mask readable */
};

/* A short name for a source ("cgroup", "SLURM_MEM_PER_NODE", ...). Static. */
COHORT_EXPORT const char *cohort_source_name(enum cohort_source src);

/* Where to read from. Zero-initialise, then override roots to replay fixtures. */
struct cohort_probe {
	const char *proc_root;    /* default "/proc" */
	const char *cgroup_root;  /* default "/sys/fs/cgroup" */
	const char *shm_path;     /* default "/dev/shm" */
	const char *const *envp;  /* default: the process environment */
};

#define COHORT_PATH_MAX 512
#define COHORT_ID_MAX 64

/* SLURM's view of the job, from its environment variables. */
struct cohort_slurm {
	int present;                      /* 1 when SLURM_JOB_ID is set */
	char job_id[COHORT_ID_MAX];       /* SLURM_JOB_ID */
	char step_id[COHORT_ID_MAX];      /* SLURM_STEP_ID, "" when unset */
	char node[COHORT_ID_MAX];         /* SLURMD_NODENAME, "" when unset */
	long local_id;                    /* SLURM_LOCALID, -1 when unset */
	long proc_id;                     /* SLURM_PROCID, -1 when unset */
	long ntasks;                      /* SLURM_NTASKS, -1 when unset */
	long cpus_on_node;                /* SLURM_CPUS_ON_NODE, -1 when unset */
	uint64_t mem_per_node;            /* SLURM_MEM_PER_NODE in bytes, 0 when unset */
	uint64_t mem_per_cpu;             /* SLURM_MEM_PER_CPU in bytes, 0 when unset */
};

/* Everything cohort_alloc_detect() finds. Sizes are bytes. */
struct cohort_alloc {
	unsigned cpus;                    /* CPUs usable by the job's workers */
	enum cohort_source cpus_source;
	unsigned cpus_affinity;           /* CPUs in the affinity mask, 0 if unknown */

	uint64_t mem_limit;               /* the tightest memory limit */
	enum cohort_source mem_limit_source;
	char mem_limit_where[COHORT_PATH_MAX]; /* the file the limit was read from, or the variable */

	int cgroup_version;               /* 1, 2, or 0 when no memory cgroup was found */
	char cgroup_path[COHORT_PATH_MAX];/* the process's memory cgroup, relative to its hierarchy */
	uint64_t cgroup_usage;            /* usage of the cgroup holding the limit (or of the process's own), 0 if unknown */
	int cgroup_usage_known;

	uint64_t ram_total;               /* MemTotal */
	uint64_t ram_available;           /* MemAvailable */
	uint64_t swap_total;              /* SwapTotal */
	uint64_t swap_free;               /* SwapFree */

	uint64_t shm_size;                /* size of the /dev/shm filesystem */
	uint64_t shm_free;                /* space free on it for this user */
	int shm_known;                    /* 0 when /dev/shm could not be read */

	struct cohort_slurm slurm;
};

/*
 * Find the allocation of the calling process. probe may be NULL for the
 * real system. The memory limit is the tightest found walking up from the
 * process's own memory cgroup (named in <proc>/self/cgroup) to the root of
 * its hierarchy; without a cgroup limit it is SLURM_MEM_PER_NODE, then
 * SLURM_MEM_PER_CPU x CPUs, then MemTotal.
 *
 * Files that cannot be read leave their figures at zero (or "unknown"):
 * only an unreadable <proc>/meminfo is an error, since without it there is
 * no limit at all. Returns 0 on success, a negative error code otherwise;
 * *ret is written only on success.
 */
COHORT_EXPORT int cohort_alloc_detect(const struct cohort_probe *probe,
                                      struct cohort_alloc *ret);

/* The node's memory from <proc>/meminfo, cheaply (one file), for sampling. */
struct cohort_meminfo {
	uint64_t total, available, swap_total, swap_free;
};

/*
 * Read <proc>/meminfo. Returns 0, -errno when it cannot be read, or
 * COHORT_EPARSE when MemTotal is missing or odd. Other missing fields are 0.
 */
COHORT_EXPORT int cohort_meminfo_read(const struct cohort_probe *probe, struct cohort_meminfo *ret);

/* ------------------------------------------------------------------------
 * Plans: will N workers fit?
 * ------------------------------------------------------------------------ */

/* What a job intends to run. */
struct cohort_plan {
	unsigned workers;          /* number of worker processes; 0 means alloc->cpus */
	uint64_t mem_per_worker;   /* bytes each worker needs; 0 when unknown */
	uint64_t shm;              /* bytes of shared segments in /dev/shm (charged to the job too) */
};

enum cohort_problem_kind {
	COHORT_PROBLEM_MEM_LIMIT = 1, /* workers + shm above the memory limit */
	COHORT_PROBLEM_SHM,           /* /dev/shm cannot hold the segments */
	COHORT_PROBLEM_RAM,           /* above the node's RAM: it would swap or OOM */
	COHORT_PROBLEM_CPUS           /* more workers than usable CPUs (a warning) */
};

/* A short stable name for a problem kind: "mem_limit", "shm", "ram", "cpus". */
COHORT_EXPORT const char *cohort_problem_name(enum cohort_problem_kind kind);

#define COHORT_MSG_MAX 1024
#define COHORT_PROBLEMS_MAX 8

struct cohort_problem {
	enum cohort_problem_kind kind;
	int fatal;                       /* 1: the plan does not fit; 0: a warning */
	char message[COHORT_MSG_MAX];    /* what is wrong, with the figures */
	char fix[COHORT_MSG_MAX];        /* what to change */
};

struct cohort_verdict {
	unsigned workers;                /* the plan's worker count after defaults */
	uint64_t total;                  /* workers x mem_per_worker + shm */
	uint64_t per_worker_fit;         /* largest mem_per_worker that fits, 0 if none */
	unsigned workers_fit;            /* most workers of mem_per_worker that fit (when known) */
	int fits;                        /* 1 when no fatal problem */
	int nproblems;
	struct cohort_problem problems[COHORT_PROBLEMS_MAX];
};

/*
 * Judge a plan against an allocation. Fills *ret with a verdict and every
 * problem found, each with a message naming the figures and a concrete fix.
 * Returns 0 (whether or not the plan fits), or COHORT_EPLAN when the plan
 * itself is impossible (total above 2^64 bytes).
 */
COHORT_EXPORT int cohort_plan_check(const struct cohort_alloc *alloc,
                                    const struct cohort_plan *plan,
                                    struct cohort_verdict *ret);

/* ---- shared memory: segments, mutex, barrier, semaphore, queue, arena ---- */

/*
 * Timeouts: every call below that can wait takes timeout_ms: a negative
 * value waits without limit, 0 does not wait at all, and a positive value
 * waits at most that many milliseconds (CLOCK_MONOTONIC).
 */

#define COHORT_SEG_NAME_MAX 64      /* longest segment name, [A-Za-z0-9_-] */
#define COHORT_SEG_ABI 1            /* the segment header's layout version */
#define COHORT_SEG_HEADER_SIZE 4096 /* the header page before the data */

/* A mapped segment. Process-local: each process opens its own. */
struct cohort_seg;

/*
 * How to create or open a segment. Zero-initialise, then set what you need;
 * a NULL options pointer means all defaults.
 */
struct cohort_seg_options {
	const char *dir;     /* directory of the segment files; NULL: probe->shm_path, else /dev/shm */
	const char *job;     /* job scope; NULL: COHORT_JOB, else SLURM_JOB_ID, else local-<pid> */
	uint32_t layout;     /* the caller's layout tag: stored by create, checked by open (0 on open: any) */
	mode_t mode;         /* file mode at creation; 0 means 0600 */
	int no_check;        /* 1: skip the free-space and headroom check (pages are still reserved) */
	const struct cohort_probe *probe; /* where the capacity check reads; NULL: the real system */
	char *why;           /* when not NULL, a failure writes a sentence with the figures here */
	size_t why_size;
};

/*
 * The job scope segment names use: options->job when set, else COHORT_JOB,
 * else SLURM_JOB_ID, else "local-<pid>" of the first process of the program
 * that asked (children forked afterwards inherit it; a program started with
 * exec in another process must be given COHORT_JOB). Writes it into buf
 * (size bytes). Returns 0, or -EINVAL when the scope holds a character
 * other than [A-Za-z0-9_-] or is longer than 63 characters, or
 * -ENAMETOOLONG when buf is too small.
 */
COHORT_EXPORT int cohort_seg_job(const struct cohort_seg_options *options, char *buf, size_t size);

/*
 * The file path of segment name: <dir>/cohort.<uid>.<job>.<name>. Returns
 * 0, -EINVAL for a bad name (empty, longer than COHORT_SEG_NAME_MAX, or a
 * character outside [A-Za-z0-9_-]), or -ENAMETOOLONG.
 */
COHORT_EXPORT int cohort_seg_path(const char *name, const struct cohort_seg_options *options,
                                  char *buf, size_t size);

/*
 * Create segment name with size bytes of data, and map it. The file is
 * created with O_EXCL, O_NOFOLLOW and mode 0600 (options->mode), so an
 * existing segment or a planted symlink is never reused. Before creating,
 * the size (plus the header page) is checked against the free space of the
 * segment directory and against the job's memory headroom (cgroup limit
 * minus usage, since tmpfs pages are charged to the job's cgroup; MemAvailable
 * when there is no cgroup limit). Then every page is reserved with
 * posix_fallocate: a segment that cannot fit fails here, never with a SIGBUS
 * later. The data is zero-filled, page aligned, and followed by an
 * inaccessible guard page, so a write past its end faults at once.
 *
 * On success stores a handle in *ret_seg (free it with cohort_seg_close)
 * and returns 0. Errors: -EINVAL (bad name, size 0), -EEXIST (the segment
 * exists), COHORT_ENOSPACE (it does not fit: options->why names both
 * figures), or another -errno. On failure nothing is left behind.
 */
COHORT_EXPORT int cohort_seg_create(const char *name, size_t size,
                                    const struct cohort_seg_options *options,
                                    struct cohort_seg **ret_seg);

/*
 * Open and map an existing segment of this user and job. The header is
 * validated first: magic, ABI version, checksum, sizes against the file's
 * size, owner, name and job, and options->layout when it is not 0. Errors:
 * -ENOENT (no such segment), COHORT_EBADSEG (not a cohort segment, a
 * foreign layout or ABI, or a corrupt header: options->why says which),
 * -EAGAIN (its creator has not finished creating it yet; retry), -ELOOP
 * (a symlink), or another -errno. On success *ret_seg holds a handle to
 * free with cohort_seg_close.
 */
COHORT_EXPORT int cohort_seg_open(const char *name, const struct cohort_seg_options *options,
                                  struct cohort_seg **ret_seg);

/* Unmap a segment and free its handle. The file stays. NULL is accepted. Returns 0. */
COHORT_EXPORT int cohort_seg_close(struct cohort_seg *seg);

/*
 * Remove segment name of this user and job. Processes that have it mapped
 * keep their mapping; the memory returns when the last one unmaps it.
 * Returns 0, -ENOENT, -EINVAL for a bad name, or another -errno.
 */
COHORT_EXPORT int cohort_seg_unlink(const char *name, const struct cohort_seg_options *options);

/*
 * Remove every segment of this user and job (options->job, or the job
 * scope as for create) from the segment directory: what a supervisor does
 * when the job ends, so that no segment outlives it. Only files named
 * cohort.<uid>.<job>.<name> with a valid name are touched, never followed
 * if symlinks. Returns the number removed (>= 0), or -errno when the
 * directory cannot be read; *ret_failed, when not NULL, gets the number
 * that could not be removed.
 */
COHORT_EXPORT int cohort_seg_unlink_job(const struct cohort_seg_options *options,
                                        unsigned *ret_failed);

/* The data of a segment (page aligned), and its size in bytes as created. */
COHORT_EXPORT void *cohort_seg_data(const struct cohort_seg *seg);
COHORT_EXPORT size_t cohort_seg_size(const struct cohort_seg *seg);

/* What a segment file's header says, for listings. */
struct cohort_seg_info {
	char name[COHORT_SEG_NAME_MAX + 1];
	char job[COHORT_ID_MAX];
	uint32_t abi;            /* header ABI version */
	uint32_t layout;         /* the creator's layout tag */
	uid_t uid;               /* the creating user */
	pid_t creator_pid;
	uint64_t creator_start;  /* the creator's start time, clock ticks since boot */
	uint64_t size;           /* data bytes */
	uint64_t file_size;      /* header + data + padding, all reserved */
	uint64_t created;        /* creation time, seconds since the epoch */
	int creator_alive;       /* 1 when the creator process still runs */
};

/*
 * Read and validate the header of the segment file at path without mapping
 * it. Returns 0 and fills *ret_info, COHORT_EBADSEG for a file that is not a
 * valid cohort segment, -EAGAIN for one still being created, or -errno.
 */
COHORT_EXPORT int cohort_seg_stat(const char *path, struct cohort_seg_info *ret_info);

/*
 * cohort_mutex: a process-shared, robust mutex to place in a segment.
 * When its owner dies holding it, the next locker gets COHORT_EOWNERDEAD
 * and owns the mutex: it repairs the protected data, calls
 * cohort_mutex_consistent(), and the mutex is usable as before. Unlocking
 * without marking it consistent makes it COHORT_ENOTRECOVERABLE for good.
 * The owner's death is seen by the kernel (the robust futex list), at any
 * instruction, not guessed.
 */
typedef struct cohort_mutex {
	COHORT_ALIGN64 unsigned char opaque[64];
} cohort_mutex_t;

/* Initialise a mutex in caller-placed memory (once, before any process uses it). Returns 0 or -errno. */
COHORT_EXPORT int cohort_mutex_init(cohort_mutex_t *m);

/*
 * Lock, waiting at most timeout_ms. Returns 0, COHORT_EOWNERDEAD (the lock
 * is held and the previous owner died: repair, then cohort_mutex_consistent),
 * COHORT_ENOTRECOVERABLE, COHORT_ETIMEDOUT (-EBUSY when timeout_ms is 0), or
 * -EDEADLK when the caller already holds it.
 */
COHORT_EXPORT int cohort_mutex_lock(cohort_mutex_t *m, int timeout_ms);

/* Mark the data consistent after COHORT_EOWNERDEAD. Returns 0 or -EINVAL. */
COHORT_EXPORT int cohort_mutex_consistent(cohort_mutex_t *m);

/* Unlock. Returns 0, or -EPERM when the caller does not hold it. */
COHORT_EXPORT int cohort_mutex_unlock(cohort_mutex_t *m);

/* The pid of the process holding the mutex, or 0 when free (for diagnostics; it may change at once). */
COHORT_EXPORT pid_t cohort_mutex_owner(const cohort_mutex_t *m);

/*
 * The pid of the last owner that died holding the mutex; 0 if none, or if
 * it cannot be told for sure (a death in the few instructions around
 * taking or releasing the lock). It never names a process that is alive.
 */
COHORT_EXPORT pid_t cohort_mutex_last_dead(const cohort_mutex_t *m);

#define COHORT_MEMBERS_MAX 64   /* processes in one barrier or semaphore */

/*
 * A barrier for n processes, placed in a segment. Members attach (wait
 * attaches too); a waiter checks the members' liveness while it waits, so
 * when a member dies the waiters return COHORT_EPEERDEAD instead of hanging,
 * and cohort_barrier_dead() names the dead process. A broken barrier stays
 * broken until it is initialised again.
 */
typedef struct cohort_barrier {
	COHORT_ALIGN64 unsigned char opaque[1152];
} cohort_barrier_t;

/* Initialise for n processes (1..COHORT_MEMBERS_MAX). Returns 0 or -EINVAL. */
COHORT_EXPORT int cohort_barrier_init(cohort_barrier_t *b, unsigned n);

/*
 * Join the barrier's members so that others see this process if it dies
 * before it reaches the barrier. Idempotent. Returns 0, or -ENOSPC when
 * COHORT_MEMBERS_MAX processes are already members.
 */
COHORT_EXPORT int cohort_barrier_attach(cohort_barrier_t *b);

/*
 * Leave the barrier for good, cleanly: the barrier now waits for one
 * process fewer (releasing the round if everyone else is already there),
 * and this process's exit will not be taken for a death. Returns 0, or
 * -ENOENT when the caller is not a member.
 */
COHORT_EXPORT int cohort_barrier_detach(cohort_barrier_t *b);

/*
 * Wait until n members have arrived. Returns 1 in exactly one process of
 * each round, 0 in the others, or COHORT_EPEERDEAD (a member died: see
 * cohort_barrier_dead), COHORT_ETIMEDOUT (the barrier is then broken for
 * all: others get COHORT_EPEERDEAD with dead pid 0), or -ENOSPC.
 */
COHORT_EXPORT int cohort_barrier_wait(cohort_barrier_t *b, int timeout_ms);

/* The pid of the member whose death broke the barrier, or 0. */
COHORT_EXPORT pid_t cohort_barrier_dead(const cohort_barrier_t *b);

/*
 * A counting semaphore placed in a segment. Members attach (wait attaches
 * too), and each member's holdings (waits not yet matched by its
 * posts) are tracked, so that when a member dies waiters get
 * COHORT_EPEERDEAD naming it instead of waiting forever for units the dead
 * process took with it. cohort_sem_reap() then removes dead members and
 * gives back what they held.
 */
typedef struct cohort_sem {
	COHORT_ALIGN64 unsigned char opaque[1152];
} cohort_sem_t;

/* Initialise with value units. Returns 0 or -EINVAL. */
COHORT_EXPORT int cohort_sem_init(cohort_sem_t *s, unsigned value);

/* Join the members. Idempotent. Returns 0, or -ENOSPC. */
COHORT_EXPORT int cohort_sem_attach(cohort_sem_t *s);

/*
 * Leave the members cleanly, so that this process's exit is not taken for
 * a death; units it still holds are posted back. Returns the number of
 * units given back (>= 0), or -ENOENT when the caller is not a member.
 */
COHORT_EXPORT int cohort_sem_detach(cohort_sem_t *s);

/*
 * Take one unit, waiting at most timeout_ms. Returns 0, COHORT_ETIMEDOUT
 * (-EAGAIN when timeout_ms is 0 and no unit is free), COHORT_EPEERDEAD
 * when a member has died (see cohort_sem_dead and cohort_sem_reap), or
 * -ENOSPC when the caller cannot become a member.
 */
COHORT_EXPORT int cohort_sem_wait(cohort_sem_t *s, int timeout_ms);

/*
 * Give one unit back. Any process may post; a member's post first settles
 * a unit it holds. Returns 0, or -EOVERFLOW at 2^31-1 units.
 */
COHORT_EXPORT int cohort_sem_post(cohort_sem_t *s);

/* The units free now. */
COHORT_EXPORT unsigned cohort_sem_value(const cohort_sem_t *s);

/* The pid of a dead member found by the last failed wait, or 0. */
COHORT_EXPORT pid_t cohort_sem_dead(const cohort_sem_t *s);

/*
 * Remove every dead member and post back the units each held. Returns the
 * number of dead members removed (>= 0); *ret_units, when not NULL, gets
 * the units given back.
 */
COHORT_EXPORT int cohort_sem_reap(cohort_sem_t *s, unsigned *ret_units);

/*
 * cohort_queue: a bounded multi-producer multi-consumer queue of
 * variable-size messages in a caller-placed region of a segment. Producers
 * serialise among themselves, and consumers among themselves, on two
 * locks whose word names the holder (pid and start time); a message
 * becomes visible only when its producer publishes the new tail, and is
 * gone only when its consumer publishes the new head. A process killed in
 * the middle of an operation therefore leaves no hole: the next producer
 * or consumer sees the holder dead, takes the lock over and goes on, and
 * at most the dead process's own message is lost, which the queue's
 * statistics report. Waits spin adaptively, then sleep on a futex.
 * Liveness is per process: a thread that exits while inside an operation
 * of a process that lives on blocks that side of the queue.
 */
typedef struct cohort_queue cohort_queue_t;

#define COHORT_QUEUE_HEADER 1024  /* bytes of queue bookkeeping before the ring */

/* Bytes of memory a queue with a ring of capacity bytes needs. */
COHORT_EXPORT size_t cohort_queue_footprint(size_t capacity);

/*
 * Build a queue in mem (size bytes, 64-byte aligned, at least
 * cohort_queue_footprint(1024)). Every process then uses the same memory
 * through cohort_queue_attach. Returns 0 and the queue in *ret_q, or -EINVAL.
 */
COHORT_EXPORT int cohort_queue_init(void *mem, size_t size, cohort_queue_t **ret_q);

/*
 * Use a queue another process built in mem. Checks its header against
 * size. Returns 0, or COHORT_EBADSEG when mem holds no valid queue.
 */
COHORT_EXPORT int cohort_queue_attach(void *mem, size_t size, cohort_queue_t **ret_q);

/*
 * Append a message of len bytes (1..cohort_queue_max_message), waiting at
 * most timeout_ms for room. Returns 0, -EAGAIN (full, timeout_ms 0),
 * COHORT_ETIMEDOUT, -EMSGSIZE, or COHORT_ECORRUPT when the queue's
 * bookkeeping fails its checks.
 */
COHORT_EXPORT int cohort_queue_send(cohort_queue_t *q, const void *msg, size_t len, int timeout_ms);

/*
 * Take the oldest message into buf (size bytes), waiting at most
 * timeout_ms for one. Returns its length (> 0), -EAGAIN (empty, timeout_ms
 * 0), COHORT_ETIMEDOUT, -EMSGSIZE when buf is too small (the message stays
 * queued; cohort_queue_max_message bounds every length), or
 * COHORT_ECORRUPT.
 */
COHORT_EXPORT int cohort_queue_recv(cohort_queue_t *q, void *buf, size_t size, int timeout_ms);

/* The longest message the queue accepts. */
COHORT_EXPORT size_t cohort_queue_max_message(const cohort_queue_t *q);

struct cohort_queue_stats {
	uint64_t capacity;      /* ring bytes */
	uint64_t used;          /* ring bytes holding messages now */
	uint64_t sent;          /* messages published */
	uint64_t received;      /* messages taken */
	uint64_t lost_send;     /* messages a producer died writing (never published) */
	uint64_t lost_recv;     /* messages a consumer died holding (taken, never returned) */
	uint64_t recovered;     /* dead lock holders recovered from */
	pid_t last_dead;        /* the last dead producer or consumer, 0 if none */
};

/* A snapshot of the queue's counters. Returns 0. */
COHORT_EXPORT int cohort_queue_stats(const cohort_queue_t *q, struct cohort_queue_stats *ret);

/*
 * cohort_arena: an allocator inside a caller-placed region of a segment.
 * Allocations are named by offset handles (each process maps the segment
 * at its own address); every handle is bounds-checked, and a canary after
 * each allocation catches a write past its end at free or check time.
 * Allocation takes a robust mutex. Every change to the block chain is a
 * single 8-byte store, so a process that dies inside the arena leaves a
 * valid chain and the next caller goes on (a block it had just allocated
 * stays allocated; the statistics count the recovery).
 */
typedef struct cohort_arena cohort_arena_t;

/* Offset of an allocation from the arena's start; 0 is never valid. */
typedef uint64_t cohort_off_t;

/* Build an arena in mem (size bytes, 64-byte aligned, at least 4 KiB). Returns 0 or -EINVAL. */
COHORT_EXPORT int cohort_arena_init(void *mem, size_t size, cohort_arena_t **ret_a);

/* Use an arena built in mem by another process. Returns 0 or COHORT_EBADSEG. */
COHORT_EXPORT int cohort_arena_attach(void *mem, size_t size, cohort_arena_t **ret_a);

/*
 * Allocate size bytes (16-byte aligned). Returns 0 and the handle in
 * *ret_off, COHORT_ENOSPACE when no free block is large enough, -EINVAL for
 * size 0, or COHORT_ECORRUPT when the arena's block chain is damaged.
 */
COHORT_EXPORT int cohort_arena_alloc(cohort_arena_t *a, size_t size, cohort_off_t *ret_off);

/*
 * Free an allocation. Returns 0, COHORT_ECORRUPT when the handle is not a
 * live allocation (out of bounds, double free) or its canary was
 * overwritten (the block is then not freed).
 */
COHORT_EXPORT int cohort_arena_free(cohort_arena_t *a, cohort_off_t off);

/* The address of an allocation in this process, or NULL for an invalid handle. */
COHORT_EXPORT void *cohort_arena_ptr(cohort_arena_t *a, cohort_off_t off);

/*
 * Check one allocation's header and canary. Returns its usable size
 * (INT_MAX for larger ones), or COHORT_ECORRUPT.
 */
COHORT_EXPORT int cohort_arena_check(cohort_arena_t *a, cohort_off_t off);

struct cohort_arena_stats {
	uint64_t size;          /* bytes managed */
	uint64_t used;          /* bytes in live allocations, headers included */
	uint64_t free;          /* bytes free */
	uint64_t largest_free;  /* the largest single free block */
	uint64_t allocations;   /* live allocations */
	uint64_t total_allocs;  /* allocations ever made */
	uint64_t failed;        /* allocations refused for lack of space */
	uint64_t recovered;     /* times a dead holder's lock was recovered */
};

/* Walk the arena and fill *ret. Returns 0 or COHORT_ECORRUPT. */
COHORT_EXPORT int cohort_arena_stats(cohort_arena_t *a, struct cohort_arena_stats *ret);

/* ---- measuring processes and cgroups ---- */

/*
 * Every reader below takes a probe (NULL: the real system) whose proc_root,
 * cgroup_root and shm_path can point at a captured tree. Sizes are bytes.
 * A process that exits while it is read gives -ESRCH: callers that measure
 * a set of processes treat it as gone, not as a failure.
 */

/* /proc/PID/statm: cheap (no page table walk) and approximate. */
struct cohort_statm {
	uint64_t size;       /* virtual size */
	uint64_t rss;        /* resident: anon + file + shmem pages */
	uint64_t shared;     /* resident file and shmem pages (shared or not) */
};

/*
 * Read <proc>/PID/statm. Returns 0, -ESRCH when the process is gone,
 * COHORT_EPARSE on odd contents, or another -errno.
 */
COHORT_EXPORT int cohort_proc_statm(const struct cohort_probe *probe, pid_t pid,
                                    struct cohort_statm *ret);

/* Where a cohort_procmem came from. */
enum cohort_smaps_source {
	COHORT_SMAPS_ROLLUP = 1,     /* /proc/PID/smaps_rollup (Linux 4.14+) */
	COHORT_SMAPS_SUMMED          /* /proc/PID/smaps, every mapping summed */
};

/*
 * A process's memory from a page table walk. USS (unique set size) is what
 * the process alone holds: private_clean + private_dirty. PSS charges each
 * shared page 1/N to each of its N mappers, so the PSS of every process
 * sums to the memory really used. Figures the kernel does not give (the
 * Pss_* split before Linux 5.9, SwapPss before 4.3) are UINT64_MAX.
 */
struct cohort_procmem {
	uint64_t rss, pss, uss;
	uint64_t pss_anon, pss_file, pss_shmem;
	uint64_t shared_clean, shared_dirty, private_clean, private_dirty;
	uint64_t swap, swap_pss;
	enum cohort_smaps_source source;
};

/*
 * Read <proc>/PID/smaps_rollup, or sum <proc>/PID/smaps where the kernel
 * has no smaps_rollup. This walks the process's page tables: it costs about
 * 1 ms per 100 MB resident, against microseconds for cohort_proc_statm().
 * Returns 0, -ESRCH when the process is gone or has no address space
 * (a zombie or a kernel thread), -EACCES for another user's process
 * without the right, COHORT_EPARSE on odd contents.
 */
COHORT_EXPORT int cohort_proc_smaps(const struct cohort_probe *probe, pid_t pid,
                                    struct cohort_procmem *ret);

/*
 * Parse the text of an smaps_rollup or smaps file (both have the same
 * "Key: N kB" lines; smaps repeats them per mapping and they are summed).
 * Returns 0 or COHORT_EPARSE. Exposed for fuzzing and fixture replay.
 */
COHORT_EXPORT int cohort_smaps_parse(const char *text, struct cohort_procmem *ret);

/* /proc/PID/status: the kernel's counters, with the peak. */
struct cohort_procstatus {
	char name[COHORT_ID_MAX];   /* the command name (Name:) */
	pid_t ppid;
	uint64_t vm_rss;            /* VmRSS */
	uint64_t vm_hwm;            /* VmHWM: peak RSS */
	uint64_t rss_anon, rss_file, rss_shmem; /* UINT64_MAX before Linux 4.5 */
	uint64_t vm_swap;           /* VmSwap, UINT64_MAX when absent */
};

/*
 * Read <proc>/PID/status. Returns 0, -ESRCH when the process is gone or is
 * a kernel thread (no Vm* lines), COHORT_EPARSE on odd contents.
 */
COHORT_EXPORT int cohort_proc_status(const struct cohort_probe *probe, pid_t pid,
                                     struct cohort_procstatus *ret);

/*
 * The processes of a cgroup directory and of every cgroup below it (the
 * processes of a SLURM job sit in its step_N/task_N leaves), read from
 * cgroup.procs; works for v1 and v2. dir is absolute, or relative to the
 * probe's cgroup_root (then, for v1, to its memory hierarchy when one is
 * mounted). On success *ret_pids is a malloc'd array sorted ascending
 * (the caller frees it) and *ret_n its length, possibly 0. Returns 0,
 * -ENOENT when the directory does not exist, COHORT_EPARSE when a
 * cgroup.procs holds something else than pids, or -ENOMEM.
 */
COHORT_EXPORT int cohort_pids_cgroup(const struct cohort_probe *probe, const char *dir,
                                     pid_t **ret_pids, size_t *ret_n);

/*
 * The process pid and all its descendants, from the parent pids in
 * <proc>/<every pid>/stat. Processes that vanish during the scan are
 * skipped. Same ownership and errors as cohort_pids_cgroup(); -ESRCH when
 * pid itself does not exist.
 */
COHORT_EXPORT int cohort_pids_descendants(const struct cohort_probe *probe, pid_t pid,
                                          pid_t **ret_pids, size_t *ret_n);

/*
 * Like cohort_pids_descendants(), but by following <proc>/PID/task/TID/children
 * down from pid instead of reading every process's stat: far cheaper when
 * the tree is small and the node busy, which is why the supervisor uses it
 * every tick. With flags 0 only each process's main thread is asked for its
 * children (one read per process: children forked by other threads are
 * missed); COHORT_TREE_ALL_THREADS asks every thread. Falls back to
 * cohort_pids_descendants() on kernels without the children files. Same
 * returns.
 */
#define COHORT_TREE_ALL_THREADS 1

COHORT_EXPORT int cohort_pids_tree(const struct cohort_probe *probe, pid_t pid, int flags,
                                   pid_t **ret_pids, size_t *ret_n);

/* Pressure stall information (<proc>/pressure/memory, memory.pressure). */
struct cohort_psi {
	double some_avg10, some_avg60, some_avg300;   /* percent of time */
	double full_avg10, full_avg60, full_avg300;
	uint64_t some_total_us, full_total_us;
	int has_full;                                 /* 0: no "full" line */
};

/* Parse the text of a pressure file. Returns 0 or COHORT_EPARSE. */
COHORT_EXPORT int cohort_psi_parse(const char *text, struct cohort_psi *ret);

/*
 * Read a pressure file: path as given, or NULL for <proc>/pressure/memory.
 * Returns 0, -ENOENT (or -EOPNOTSUPP) on kernels without PSI, COHORT_EPARSE.
 */
COHORT_EXPORT int cohort_psi_read(const struct cohort_probe *probe, const char *path,
                                  struct cohort_psi *ret);

#define COHORT_MEM_UNKNOWN UINT64_MAX

/*
 * A memory cgroup's counters. Every figure the hierarchy does not give is
 * COHORT_MEM_UNKNOWN: v1 has failcnt but no events, v2 before 5.19 has no
 * memory.peak, and so on. limit is UINT64_MAX when there is none on this
 * level (the allocation reader walks up for the tightest).
 */
struct cohort_cgmem {
	int version;                    /* 1 or 2 */
	char dir[COHORT_PATH_MAX];      /* the directory read */
	uint64_t usage;                 /* v1 memory.usage_in_bytes, v2 memory.current */
	uint64_t peak;                  /* v1 memory.max_usage_in_bytes, v2 memory.peak */
	uint64_t limit;                 /* v1 memory.limit_in_bytes, v2 memory.max */
	uint64_t anon;                  /* v1 stat total_rss, v2 stat anon */
	uint64_t file;                  /* v1 stat total_cache, v2 stat file */
	uint64_t shmem;                 /* stat (total_)shmem */
	uint64_t mapped_file;           /* v1 stat total_mapped_file, v2 stat file_mapped */
	uint64_t swap;                  /* v1 stat total_swap, v2 memory.swap.current */
	uint64_t oom_kill;              /* v1 oom_control, v2 events oom_kill */
	uint64_t oom;                   /* v2 events oom (reached the limit, reclaim failed) */
	uint64_t max_events;            /* v2 events max (hit memory.max) */
	uint64_t failcnt;               /* v1 memory.failcnt */
	int has_pressure;
	struct cohort_psi pressure;     /* v2 memory.pressure */
};

/*
 * Read a memory cgroup's counters. dir as for cohort_pids_cgroup(); the
 * version is told from the files present (memory.current: v2,
 * memory.usage_in_bytes: v1). Unreadable or odd single files leave their
 * figure unknown. Returns 0, -ENOENT when dir does not exist,
 * COHORT_ENOCGROUP when it is not a memory cgroup.
 */
COHORT_EXPORT int cohort_cgroup_read(const struct cohort_probe *probe, const char *dir,
                                     struct cohort_cgmem *ret);

/*
 * The memory cgroup of process pid (0: the caller), as an absolute
 * directory under the probe's cgroup_root, from <proc>/PID/cgroup. Writes
 * at most size bytes to ret_dir and the version to *ret_version (may be
 * NULL). Returns 0, -ESRCH when the process is gone, COHORT_ENOCGROUP when
 * it has no memory cgroup.
 */
COHORT_EXPORT int cohort_cgroup_of_pid(const struct cohort_probe *probe, pid_t pid,
                                       char *ret_dir, size_t size, int *ret_version);

/*
 * The memory cgroup of SLURM job job_id on this node: v1
 * <memory>/slurm_<node>/uid_<uid>/job_<id>, v2 any directory named job_<id> at most
 * four levels below the root (system.slice/slurmstepd.scope/job_<id>).
 * Returns 0, -EINVAL for a job id that is not a number (an array job's
 * "123_4" must be given as its SLURM_JOB_ID), -ENOENT when the job has no
 * cgroup here (it is gone, or runs on another node: the hierarchy was read
 * whole), COHORT_ENOCGROUP when there is no memory hierarchy to look in, or
 * -EACCES (another -errno) when part of it could not be read, so that the
 * job may be there.
 */
COHORT_EXPORT int cohort_cgroup_find_job(const struct cohort_probe *probe, const char *job_id,
                                         char *ret_dir, size_t size);

/* A file in /dev/shm, and what cohort knows about it. */
struct cohort_shm_file {
	char name[256];              /* the file name in the shm directory */
	uint64_t size;               /* st_size: the size asked for */
	uint64_t allocated;          /* st_blocks x 512: the pages really used */
	uid_t uid;                   /* the file's owner */
	int64_t ctime_s;             /* last status change, seconds since the epoch */
	int cohort;                  /* 1 for a name cohort.<uid>.<job>.<name> */
	uid_t name_uid;              /* <uid> of a cohort name */
	char job[COHORT_ID_MAX];     /* <job> of a cohort name, "" otherwise */
	pid_t *mappers;              /* processes mapping or holding it open (malloc'd) */
	size_t nmappers;
	int mappers_complete;        /* 0: some processes could not be inspected (EACCES) */
};

/*
 * List the regular files of the shm directory (the probe's shm_path, by
 * default /dev/shm) with the processes that map them (from
 * <proc>/<every pid>/maps) or hold them open (<proc>/<pid>/fd). A process
 * that cannot be inspected makes mappers_complete 0 for every file, since
 * it might map any of them. On success *ret_files is malloc'd; release it
 * with cohort_shm_files_free(). Returns 0 or -errno for an unreadable
 * directory.
 */
COHORT_EXPORT int cohort_shm_list(const struct cohort_probe *probe,
                                  struct cohort_shm_file **ret_files, size_t *ret_n);

/* Free a list from cohort_shm_list(). Accepts NULL. */
COHORT_EXPORT void cohort_shm_files_free(struct cohort_shm_file *files, size_t n);

/*
 * Split a cohort segment file name "cohort.<uid>.<job>.<name>". Returns 1
 * and fills *ret_uid and ret_job (job_size bytes) when it is one, 0 when it
 * is not.
 */
COHORT_EXPORT int cohort_shm_name_parse(const char *file, uid_t *ret_uid, char *ret_job,
                                        size_t job_size);

/* Is a segment's job still alive on this node? */
enum cohort_job_state {
	COHORT_JOB_UNKNOWN = 0,   /* a job name cohort cannot judge: never called gone */
	COHORT_JOB_ALIVE,
	COHORT_JOB_GONE
};

/*
 * Judge the job of an shm file: "local-<pid>" is gone when that pid does
 * not exist or started after the file's ctime (so a reused pid does not
 * keep it alive); a number is a SLURM job id, gone when it has no memory
 * cgroup on this node (see cohort_cgroup_find_job()) and it is not the
 * caller's own SLURM_JOB_ID. Anything else is unknown.
 */
COHORT_EXPORT enum cohort_job_state cohort_shm_job_state(const struct cohort_probe *probe,
                                                         const struct cohort_shm_file *file);

/* What cohort_shm_judge() and cohort_shm_remove() decide for a file. */
enum cohort_shm_verdict {
	COHORT_SHM_REMOVED = 0,       /* removed */
	COHORT_SHM_ORPHANED,          /* may be removed (not removed yet, or a dry run) */
	COHORT_SHM_KEEP_NOT_COHORT,   /* not named cohort.<uid>.<job>.<name> */
	COHORT_SHM_KEEP_OTHER_USER,   /* owned by, or named for, another user */
	COHORT_SHM_KEEP_MAPPED,       /* a process maps it or holds it open */
	COHORT_SHM_KEEP_JOB_ALIVE,    /* its job still runs */
	COHORT_SHM_KEEP_JOB_UNKNOWN,  /* a job name cohort cannot judge */
	COHORT_SHM_KEEP_CHANGED       /* replaced or removed since it was listed */
};

/* A short English reason for a verdict ("mapped or open", ...). Static. */
COHORT_EXPORT const char *cohort_shm_verdict_name(enum cohort_shm_verdict v);

/*
 * Decide from a listing whether file may be removed by user uid: only a
 * cohort segment owned by and named for uid, mapped by no process seen, of
 * a job that is gone, is COHORT_SHM_ORPHANED. Reads /proc and the cgroup
 * tree for the job; removes nothing.
 */
COHORT_EXPORT enum cohort_shm_verdict cohort_shm_judge(const struct cohort_probe *probe,
                                                       const struct cohort_shm_file *file,
                                                       uid_t uid);

/*
 * Remove file if cohort_shm_judge() calls it orphaned and, at the moment
 * of removal, the kernel grants a write lease on it, which proves that no
 * other process has it open or mapped (processes the scan could not
 * inspect included). With dry_run nothing is removed and
 * COHORT_SHM_ORPHANED stands for "would be removed". Returns a verdict
 * (>= 0), or -errno when the shm directory or the file cannot be opened.
 */
COHORT_EXPORT int cohort_shm_remove(const struct cohort_probe *probe,
                                    const struct cohort_shm_file *file, uid_t uid, int dry_run);

/* ---- the sampler: cheap counters every tick, PSS within a CPU budget ---- */

/*
 * A sampler is used by one thread at a time: calls on the same sampler must
 * not overlap. It reads the processes' files itself; it starts no thread.
 */
struct cohort_sampler;

struct cohort_sampler_opts {
	double cpu_budget;           /* fraction of one core for smaps reads; 0: 0.01 */
	const struct cohort_probe *probe; /* NULL: the real system; kept by pointer */
};

/* What the sampler knows of one process. */
struct cohort_sample {
	pid_t pid;
	int gone;                    /* 1 once the process has exited */
	struct cohort_statm statm;   /* read at the last tick */
	int have_pss;                /* 0 until the first smaps read */
	struct cohort_procmem mem;   /* the last smaps read */
	uint64_t mem_age_ns;         /* how old mem is, at the last tick */
	uint64_t mem_cost_ns;        /* CPU time the last smaps read cost */
	uint64_t mem_reads;          /* smaps reads of this process so far */
};

/*
 * Create a sampler. Returns 0 and *ret, or -ENOMEM / -EINVAL (a budget
 * not in (0, 1]). Free it with cohort_sampler_destroy().
 */
COHORT_EXPORT int cohort_sampler_create(const struct cohort_sampler_opts *opts,
                                        struct cohort_sampler **ret);

/* Free a sampler. Accepts NULL. */
COHORT_EXPORT void cohort_sampler_destroy(struct cohort_sampler *s);

/* Watch a process. Returns 0, -EEXIST when already watched, -ENOMEM. */
COHORT_EXPORT int cohort_sampler_add(struct cohort_sampler *s, pid_t pid);

/* Stop watching a process. Returns 0 or -ENOENT. */
COHORT_EXPORT int cohort_sampler_remove(struct cohort_sampler *s, pid_t pid);

/*
 * One sampling round: read every process's statm, then read smaps_rollup
 * for as many processes as the CPU budget allows, first those never read,
 * then those whose RSS moved most since their last PSS, then the stalest.
 * The budget is a token bucket: each tick earns cpu_budget x the wall time
 * since the previous tick, every read spends its measured CPU time, and a
 * read that overdraws is repaid by later ticks, so over time the sampler
 * stays within the budget. Processes found gone are marked gone (not
 * removed). Returns the number of smaps reads done, or a negative error.
 */
COHORT_EXPORT int cohort_sampler_tick(struct cohort_sampler *s);

/*
 * Read one watched process's smaps now, whatever the budget holds (the
 * cost is still charged, and repaid by later ticks): for a figure that
 * must be fresh, such as a worker at a new peak. Returns 0, -ENOENT when
 * the pid is not watched, -ESRCH when it is gone, or the reader's error.
 */
COHORT_EXPORT int cohort_sampler_refresh(struct cohort_sampler *s, pid_t pid);

/* The number of watched processes. */
COHORT_EXPORT size_t cohort_sampler_count(const struct cohort_sampler *s);

/*
 * The sample of the i-th watched process (0 <= i < count), in the order
 * added. Returns 0 or -ERANGE.
 */
COHORT_EXPORT int cohort_sampler_get(const struct cohort_sampler *s, size_t i,
                                     struct cohort_sample *ret);

/* Sampler totals: the CPU it spent, and the wall time it has run. */
struct cohort_sampler_stats {
	uint64_t ticks;
	uint64_t smaps_reads;
	uint64_t cpu_ns;             /* CPU time spent in reads (statm and smaps) */
	uint64_t smaps_cpu_ns;       /* of which smaps reads */
	uint64_t wall_ns;            /* from the first tick to the last */
	uint64_t worst_age_ns;       /* the oldest PSS among live processes at the last tick */
};

/*
 * Copy the sampler's totals into *ret: what it has spent, over how long, and
 * the worst PSS age at the last tick (a never-read process counts from the
 * first tick). Cannot fail.
 */
COHORT_EXPORT void cohort_sampler_stats(const struct cohort_sampler *s,
                                        struct cohort_sampler_stats *ret);

/* ---- child cgroups for workers ---- */

/*
 * A memory cgroup cohort made for workers, under the caller's own (cgroup
 * v1, or a delegated v2 subtree). The kernel then enforces each worker's
 * limit and counts its memory exactly, descendants included.
 */
struct cohort_workcg {
	int version;                    /* 1 or 2 */
	char dir[COHORT_PATH_MAX];      /* absolute directory */
};

/*
 * Create the memory cgroup NAME under parent (an absolute cgroup directory,
 * or NULL for the caller's own memory cgroup) with a memory limit (v1
 * memory.limit_in_bytes, v2 memory.max; 0 leaves it unlimited). On v2 the
 * memory controller is enabled in the parent's cgroup.subtree_control
 * first, which the kernel refuses when the parent holds processes and is
 * not the root: then -EBUSY. Returns 0 and fills *ret; -EEXIST when it
 * exists, -EACCES or -EPERM without the right, -EROFS when cgroups are
 * mounted read-only, COHORT_ENOCGROUP without a memory cgroup.
 */
COHORT_EXPORT int cohort_workcg_create(const struct cohort_probe *probe, const char *parent,
                                       const char *name, uint64_t limit,
                                       struct cohort_workcg *ret);

/* Move process pid (0: the caller) into the cgroup. Returns 0 or -errno. */
COHORT_EXPORT int cohort_workcg_attach(const struct cohort_workcg *cg, pid_t pid);

/*
 * Remove the cgroup and, depth first, any cgroup below it. Returns 0,
 * -EBUSY while processes remain in it, or -errno. Accepts NULL.
 */
COHORT_EXPORT int cohort_workcg_destroy(const struct cohort_workcg *cg);

/* ---- trends: leaks and copy-on-write unsharing ---- */

/*
 * A series of (time, bytes) samples of one worker, kept in a fixed ring of
 * COHORT_TREND_MAX points, for the leak test below. Caller-placed; zero it
 * with cohort_trend_init().
 */
#define COHORT_TREND_MAX 512

struct cohort_trend {
	double t[COHORT_TREND_MAX];
	uint64_t v[COHORT_TREND_MAX];
	unsigned head, n;       /* ring position and fill */
	double start;           /* time of the worker's start: warm-up counts from here */
};

/* Prepare an empty series for a worker started at time start (seconds). */
COHORT_EXPORT void cohort_trend_init(struct cohort_trend *tr, double start);

/* Append a sample. Times must not go backwards; a sample that does is ignored. */
COHORT_EXPORT void cohort_trend_add(struct cohort_trend *tr, double t, uint64_t bytes);

struct cohort_leak_params {
	double warmup_s;        /* ignore samples this long after the start; default 3 */
	double window_s;        /* judge the last window_s seconds; default 20 */
	uint64_t min_growth;    /* least growth of the floor over the window; default 16 MiB */
};

struct cohort_leak {
	double rate;            /* bytes per second the floor rises */
	uint64_t floor_first;   /* lowest value in the window's first quarter */
	uint64_t floor_last;    /* lowest value in its last quarter */
	uint64_t current;       /* the last sample */
	double window;          /* seconds actually covered */
};

/*
 * Is the series leaking? The window (after warm-up) is cut into four equal
 * spans of time and the lowest value of each span taken: a leak is a floor
 * that rises from span to span, each step by at least a tenth of the whole
 * rise, and by at least min_growth in all. Taking floors ignores an
 * allocate/free sawtooth (its floor stays put), and asking every step to
 * rise ignores a worker that grew during start-up and then levelled off.
 * Returns 1 and fills *ret (may be NULL) when it leaks, 0 when it does not
 * or when there are fewer than 8 samples in the window. params may be NULL.
 */
COHORT_EXPORT int cohort_trend_leak(const struct cohort_trend *tr,
                                    const struct cohort_leak_params *params,
                                    struct cohort_leak *ret);

/*
 * Copy-on-write unsharing of one process between two smaps readings: the
 * bytes that moved from shared to private. A process whose USS grew while
 * its shared pages fell has had pages copied by writes after fork (Python
 * reference counts are writes); its RSS does not grow for that. Returns the
 * smaller of the USS growth and the shared decline, or 0.
 */
COHORT_EXPORT uint64_t cohort_cow_copied(uint64_t uss_before, uint64_t shared_before,
                                         uint64_t uss_after, uint64_t shared_after);

/* ---- recordings and diagnosis ---- */

/*
 * A recording written by `cohort run` (docs/recording.md), read back. Every
 * string is NUL-terminated and truncated to its buffer; every figure the
 * recording lacks is 0 (or -1 where 0 is meaningful).
 */
#define COHORT_EVENT_NUMS 8

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
};

struct cohort_rec_worker {
	int rank;
	pid_t pid;
	int ended;                       /* 0 while the recording says it still ran */
	int exit_code;                   /* -1 when it died of a signal */
	int signal;                      /* 0 when it exited */
	int stopped_by_cohort;
	uint64_t peak_rss, peak_pss, peak_uss, peak_est, last_est, cow_copied;
	double start, end;
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
	COHORT_FINDING_CUT               /* the recording ends without the supervisor's end */
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
 * malloc'd array of findings, most important first (kills, then crashes,
 * then trends, then other exits), and its count. Returns 0 or -ENOMEM.
 * Free the array with free().
 */
COHORT_EXPORT int cohort_diagnose(struct cohort_recording *const *recs, size_t nrecs,
                                  struct cohort_finding **ret, size_t *ret_n);

/* ---- files: atomic publish, file locks, per-rank output ---- */

/*
 * Atomic publish. A file is published by writing its new contents to a
 * temporary file in the target's directory, flushing it to disk, renaming
 * it over the target and flushing the directory. A reader that opens the
 * target sees the old contents or the new, never a mix, whenever the
 * writer is killed and (unless COHORT_PUBLISH_NOSYNC) whenever the node
 * loses power.
 *
 * The temporary file is named ".NAME.cohort-tmp-XXXXXXXXXXXXXXXX" (16 hex
 * digits) and its writer holds an open file description lock on it while
 * writing, which the kernel drops when the writer dies: that is how
 * cohort_publish_clean() tells a dead writer's leftover from a file being
 * written right now, on this node or, on a filesystem with working locks,
 * on another.
 */

/* Skip both flushes to disk: still atomic against the writer's death, but
 * after a power loss the target may hold the old contents, the new, or (on
 * some filesystems) an empty file. */
#define COHORT_PUBLISH_NOSYNC 0x1u

/* Options of a publication. Zero-initialise; NULL options mean all defaults. */
struct cohort_publish_opts {
	unsigned flags;      /* COHORT_PUBLISH_* */
	mode_t mode;         /* permissions of the new file before umask; 0 means 0644 */
	const char *tmp_dir; /* where to create the temporary file; NULL: beside the
	                        target (the right choice). Another directory must be
	                        on the target's filesystem, or the call fails with
	                        -EXDEV, since a rename across filesystems is a copy
	                        that a reader can see half done. */
	char *error;         /* if not NULL, a failure writes here what failed, on
	                        which path, with the figures and the fix */
	size_t error_size;
};

/*
 * A publication in progress, owned by the caller. fd is the temporary
 * file, open for writing: write to it directly or with
 * cohort_publish_write(). The other fields are private.
 */
struct cohort_publish {
	int fd;
	int dir_fd;
	int tmp_dir_fd;
	unsigned flags;
	char name[256];
	char tmp[256];
	char dir[COHORT_PATH_MAX];
	char error[COHORT_MSG_MAX]; /* after a failure: what failed, and the fix */
};

/*
 * Start publishing the file at path: create and lock the temporary file.
 * Nothing is visible at path until cohort_publish_commit().
 *
 * Returns 0, or: -EACCES, -EROFS (the directory is not writable: the
 * temporary file must live there), -ENOENT (no such directory), -EISDIR
 * (path is a directory or ends in '/'), -ENAMETOOLONG, -EXDEV (opts->tmp_dir
 * is on another filesystem), or another -errno. On failure nothing is left
 * behind, pub->error says what failed, and pub needs no cleanup.
 */
COHORT_EXPORT int cohort_publish_open(struct cohort_publish *pub, const char *path,
                                      const struct cohort_publish_opts *opts);

/*
 * Append len bytes to the temporary file, retrying short writes and EINTR.
 * Returns 0, or -errno (-ENOSPC when the filesystem is full); on failure
 * the publication is abandoned as by cohort_publish_abort() and the target
 * is untouched.
 */
COHORT_EXPORT int cohort_publish_write(struct cohort_publish *pub, const void *buf, size_t len);

/*
 * Make the new contents visible at the target: flush the temporary file to
 * disk, rename it over the target, close it, and flush the directory (the
 * flushes are skipped with COHORT_PUBLISH_NOSYNC). Always ends the
 * publication: afterwards pub holds no file.
 *
 * Returns 0, or -errno: -ENOSPC or -EIO from the flush (the target is then
 * untouched and the temporary file removed), -EXDEV when the rename crosses
 * mounts (the target is untouched), or an error of the final directory
 * flush (the target has its new contents, but a power loss may still undo
 * the rename). pub->error says which.
 */
COHORT_EXPORT int cohort_publish_commit(struct cohort_publish *pub);

/*
 * Abandon a publication: remove the temporary file and close it. The
 * target is untouched. Accepts NULL and a publication already ended.
 */
COHORT_EXPORT void cohort_publish_abort(struct cohort_publish *pub);

/*
 * Publish len bytes of data at path in one call (open, write, commit).
 * Returns 0 or a negative error code as those calls do; on failure the
 * target is untouched and no temporary file remains.
 */
COHORT_EXPORT int cohort_publish_data(const char *path, const void *data, size_t len,
                                      const struct cohort_publish_opts *opts);

/*
 * Whether a file name (not a path) has the form of cohort's temporary
 * files. Returns 1 or 0.
 */
COHORT_EXPORT int cohort_publish_is_temp(const char *name);

/*
 * Remove the temporary files that dead writers left in the directory dir:
 * those whose lock no process holds. Files being written right now, and
 * files whose lock cannot be tested (a filesystem without locks), are kept.
 * Stores the number removed in *ret_removed (which may be NULL) and returns
 * 0, or -errno when dir cannot be read. Safe to run at any time, while
 * writers are publishing.
 */
COHORT_EXPORT int cohort_publish_clean(const char *dir, unsigned *ret_removed);

/*
 * File locks for workers that update one shared file in place, built on
 * open file description locks (F_OFD_SETLKW): the kernel releases the lock
 * when its holder dies, however it dies, so a killed worker never blocks
 * the others. The holder also marks one byte far past any data with a
 * classic POSIX lock, so that a waiter that times out can name the holder's
 * pid (an OFD lock records no pid).
 *
 * A lock belongs to its struct cohort_flock (its open file description),
 * not to the process or thread: two structs exclude each other, even in one
 * thread. A child forked while the lock is held shares it; do not fork
 * while holding. The kernel releases the lock but does not undo a
 * half-done update in place: to change a file whole, lock a separate file
 * (such as "PATH.lock"), read PATH, and publish its new version with
 * cohort_publish_data(). Never lock the published file itself: publishing
 * replaces it with a new file, whose lock is a different one.
 */
struct cohort_flock {
	int fd;      /* the locked file, open read-write: update it through this */
	int locked;
};

/*
 * Open (creating it with mode, 0 meaning 0644, when absent) the file at
 * path to lock it. Returns 0, or -errno. lk is written only on success.
 */
COHORT_EXPORT int cohort_flock_open(struct cohort_flock *lk, const char *path, mode_t mode);

/*
 * Take the lock, waiting as long as it takes. Returns 0, or -errno
 * (-ENOLCK when the filesystem has no locks, -EDEADLK when the kernel
 * detects a deadlock).
 */
COHORT_EXPORT int cohort_flock_lock(struct cohort_flock *lk);

/*
 * Take the lock, waiting at most timeout_ms milliseconds (0: try once).
 * Returns 0, or COHORT_ETIMEDOUT with the holder's pid stored in
 * *ret_holder (if not NULL; 0 when the holder cannot be named: it runs on
 * another node, in another pid namespace, or is between its lock and its
 * mark), or another negative error code. The wait polls, so the lock may
 * be taken up to 50 ms after it is released.
 */
COHORT_EXPORT int cohort_flock_timedlock(struct cohort_flock *lk, unsigned timeout_ms,
                                         pid_t *ret_holder);

/* Release the lock. Returns 0, or -EPERM when lk does not hold it. */
COHORT_EXPORT int cohort_flock_unlock(struct cohort_flock *lk);

/* Release the lock if held and close the file. Accepts NULL. */
COHORT_EXPORT void cohort_flock_close(struct cohort_flock *lk);

/*
 * Who holds the lock on the file at path, without taking it. Returns 1
 * when it is held, with the holder's pid in *ret_pid (0 when it cannot be
 * named), 0 when it is free (*ret_pid = 0), or -errno.
 */
COHORT_EXPORT int cohort_flock_holder(const char *path, pid_t *ret_pid);

/*
 * Per-rank output. Each worker publishes its part as PATH.rank-K
 * atomically; once every rank 0..nranks-1 has published, the parts are
 * gathered in rank order into PATH, itself published atomically, so PATH
 * either does not exist yet or holds every part whole.
 */

/* Write "PATH.rank-K" into buf. Returns 0 or -ENAMETOOLONG. */
COHORT_EXPORT int cohort_rank_path(const char *path, unsigned rank, char *buf, size_t size);

/* Publish a rank's part, as cohort_publish_data() on PATH.rank-K. */
COHORT_EXPORT int cohort_rank_publish(const char *path, unsigned rank, const void *data,
                                      size_t len, const struct cohort_publish_opts *opts);

struct cohort_gather_opts {
	unsigned timeout_ms;   /* how long to wait for missing parts; 0: do not wait */
	int remove_parts;      /* remove the parts once the whole is published */
	struct cohort_publish_opts publish; /* how to publish the whole; its error
	                                       buffer also receives gather errors */
};

/*
 * Gather the parts of ranks 0..nranks-1 of path, in rank order, into path.
 * Waits up to opts->timeout_ms for missing parts (opts may be NULL: no
 * wait, no removal, durable publish). Stores the size of the whole in
 * *ret_bytes (may be NULL) and returns 0; or COHORT_ETIMEDOUT when parts are
 * still missing (the error buffer lists them; path is not created), -EINVAL
 * when nranks is 0, or an error of reading a part or of publishing.
 */
COHORT_EXPORT int cohort_rank_gather(const char *path, unsigned nranks,
                                     const struct cohort_gather_opts *opts,
                                     uint64_t *ret_bytes);

#ifdef __cplusplus
}
#endif

#endif /* COHORT_H */
