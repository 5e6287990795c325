/*
 * cohort/procmem.h - measuring processes and cgroups: statm, smaps_rollup, status, process trees, cgroup counters, PSI, /dev/shm files.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 */
#ifndef COHORT_PROCMEM_H
#define COHORT_PROCMEM_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

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
	uint64_t anon;               /* Anonymous: resident anonymous pages, shared or not */
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
 * (free it with cohort_pids_free()) and *ret_n its length, possibly 0. Returns 0,
 * -ENOENT when the directory does not exist, COHORT_EPARSE when a
 * cgroup.procs holds something else than pids, or -ENOMEM.
 */
COHORT_EXPORT int cohort_pids_cgroup(const struct cohort_probe *probe, const char *dir,
                                     pid_t **ret_pids, size_t *ret_n);

/*
 * Free an array of pids returned by cohort_pids_cgroup(),
 * cohort_pids_descendants() or cohort_pids_tree(). Accepts NULL.
 */
COHORT_EXPORT void cohort_pids_free(pid_t *pids);

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

/* ---- who a process is ---- */

#define COHORT_ENVIRON_MAX (256 * 1024)

/*
 * A process as findings name it: its pid, parent, command and command
 * line, and the ranks it carries in its environment. The reader fills the
 * first part; a watcher adds where it sits (rank, child).
 */
struct cohort_proc_identity {
	pid_t pid, ppid;
	char comm[16];                    /* the command name, "" when not known */
	char cmdline[COHORT_CMDLINE_MAX]; /* NULs as spaces, cut at the size; "" for a kernel thread or when unreadable */
	int mpi_rank;                     /* OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK, MV2_COMM_WORLD_RANK; -1 */
	int slurm_procid;                 /* SLURM_PROCID; -1 */
	int slurm_localid;                /* SLURM_LOCALID; -1 */
	int environ_read;                 /* 1: the environment could be read (it may be another user's) */
	int rank;                         /* the worker (cohort rank) whose tree holds it; -1 */
	unsigned child;                   /* 0: the worker's root; k: the k-th process seen below it */
};

/*
 * Find the ranks in an environment block (NUL-separated "KEY=value", as
 * /proc/PID/environ holds, len bytes, not necessarily NUL-terminated at
 * the end; hostile input: any bytes are safe). Fills *ret_mpi_rank,
 * *ret_slurm_procid and *ret_slurm_localid with the value found or -1
 * (a value that is not a whole decimal number from 0 to 2^31-1 is not
 * one); any pointer may be NULL. Returns how many of the three were found.
 */
COHORT_EXPORT int cohort_environ_ranks(const char *env, size_t len, int *ret_mpi_rank,
                                       int *ret_slurm_procid, int *ret_slurm_localid);

/*
 * Read who pid is: <proc>/PID/stat (command, parent), <proc>/PID/cmdline
 * (at most COHORT_CMDLINE_MAX - 1 bytes) and the ranks in
 * <proc>/PID/environ (its first COHORT_ENVIRON_MAX bytes). An environment
 * that may not be read (another user's process: EACCES) leaves the ranks
 * -1 and environ_read 0; that is not an error. rank is set to -1 and
 * child to 0. Returns 0, -ESRCH when the process is gone, -EINVAL for a pid
 * below 1, -ENAMETOOLONG for a proc root too long, -ENOMEM.
 */
COHORT_EXPORT int cohort_proc_identity_read(const struct cohort_probe *probe, pid_t pid,
                                            struct cohort_proc_identity *ret);

/*
 * The identity in words, for messages: "pid 1234 (a.out, MPI rank 2),
 * child 3 of rank 0", "pid 77 (python3), the root of rank 1" (no
 * "of rank" when rank is -1). Writes at most size bytes and returns buf.
 */
COHORT_EXPORT char *cohort_proc_identity_describe(const struct cohort_proc_identity *id, char *buf,
                                                  size_t size);

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
	uint64_t inactive_file;         /* stat (total_)inactive_file: page cache reclaim takes first */
	uint64_t swap;                  /* v1 stat total_swap, v2 memory.swap.current */
	uint64_t oom_kill;              /* v1 oom_control, v2 events oom_kill */
	uint64_t oom;                   /* v2 events oom (reached the limit, reclaim failed) */
	uint64_t max_events;            /* v2 events max (hit memory.max) */
	uint64_t failcnt;               /* v1 memory.failcnt */
	int has_pressure;
	struct cohort_psi pressure;     /* v2 memory.pressure */
};

/*
 * The figures of a memory cgroup's memory.stat that tell what its usage is
 * made of, in bytes, COHORT_MEM_UNKNOWN for a key the file lacks (or whose
 * number is not one: overflowing, negative, followed by junk). v1 figures
 * are the subtree's (total_*) when the file has them, else the cgroup's own.
 */
struct cohort_cgstat {
	uint64_t anon;                  /* v1 rss, v2 anon: anonymous pages, copies after fork included */
	uint64_t file;                  /* v1 cache, v2 file: page cache, shmem included */
	uint64_t shmem;                 /* tmpfs and /dev/shm files, shared anonymous mappings */
	uint64_t file_mapped;           /* v1 mapped_file, v2 file_mapped */
	uint64_t inactive_file;         /* the page cache reclaim takes first */
	uint64_t active_file;
	uint64_t swap;                  /* v1 swap; unknown on v2 (memory.swap.current) */
};

/*
 * Parse the text of a memory.stat file of cgroup version 1 or 2. Keys it
 * does not know are skipped; the last line needs no newline. Returns 0,
 * -EINVAL for a NULL text or another version, COHORT_EPARSE when the
 * anonymous figure (v1 total_rss or rss, v2 anon) is missing or not a
 * number; *ret is written only on success.
 */
COHORT_EXPORT int cohort_cgroup_stat_parse(const char *text, int version, struct cohort_cgstat *ret);

/*
 * The two files of memory cgroup directory dir (an absolute path) that a
 * watcher reads every tick: the usage (v1 memory.usage_in_bytes, v2
 * memory.current) into *ret_usage and memory.stat into *ret_stat; version
 * is 1 or 2. One read of each file. Returns 0, -ENOENT (another -errno)
 * when a file cannot be read, COHORT_EPARSE when either is not what the
 * kernel writes, -EINVAL for a bad argument; nothing is written on failure.
 */
COHORT_EXPORT int cohort_cgroup_read_usage(const char *dir, int version, uint64_t *ret_usage,
                                           struct cohort_cgstat *ret_stat);

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
	/*
	 * How many processes could not be inspected (their maps or fds refused:
	 * another user's, or no CAP_SYS_PTRACE even as root); the same for
	 * every file, 0 when mappers_complete; denied: those of them refused
	 * with EACCES or EPERM (the others failed otherwise, e.g. EIO).
	 */
	size_t uninspected, denied;
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

#ifdef __cplusplus
}
#endif

#endif /* COHORT_PROCMEM_H */
