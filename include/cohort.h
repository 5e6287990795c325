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
 * cgroup here (it is gone, or runs on another node).
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

/* ---- files: atomic publish, file locks, per-rank output ---- */

#ifdef __cplusplus
}
#endif

#endif /* COHORT_H */
