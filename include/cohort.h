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
	char *const *envp;        /* default: the process environment */
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

/* ---- measuring processes and cgroups ---- */

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
