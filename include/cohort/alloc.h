/*
 * cohort/alloc.h - the allocation this job may really use on this node, and plans.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 */
#ifndef COHORT_ALLOC_H
#define COHORT_ALLOC_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

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
	COHORT_SRC_NPROC,           /* the configured processors, no mask readable */
	COHORT_SRC_SLURM_JOB        /* the job's memory as SLURM's controller knows it (scontrol show job) */
};

/* A short name for a source ("cgroup", "SLURM_MEM_PER_NODE", ...). Static. */
COHORT_EXPORT const char *cohort_source_name(enum cohort_source src);


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
	long tasks_on_node;               /* tasks of this step on this node, from
	                                     SLURM_STEP_TASKS_PER_NODE ("4", "2(x3),1" with
	                                     SLURM_NODEID); -1 when unset or not readable */
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

	/*
	 * Several tasks of one step on this node share its limit when it is
	 * the job's or the step's (a cgroup above the tasks', SLURM_MEM_PER_NODE,
	 * SLURM_MEM_PER_CPU, the controller's figure): then this is the calling
	 * task's share, mem_limit / tasks_on_node; 0 when the limit is the
	 * task's alone (one task here, or a limit on its own task_N cgroup).
	 */
	uint64_t task_share;
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

/*
 * Ask SLURM's controller for the job's memory when nothing on the node
 * told it. When alloc is inside a SLURM job (alloc->slurm.present) and its
 * memory limit came only from MemTotal (no cgroup limit, no SLURM_MEM_*
 * variable: plain `srun --mem=1000M` under ConstrainRAMSpace=no), runs
 * `scontrol -o show job ID` (see cohort_slurm_job_read()) and, when the
 * controller knows the job's memory, sets alloc->mem_limit to it with
 * source COHORT_SRC_SLURM_JOB and a mem_limit_where naming the command and
 * the figure. The memory on this node is MinMemoryNode; else MinMemoryCPU
 * x the job's CPUs here (SLURM_CPUS_ON_NODE, else NumCPUs of a one-node
 * job, else alloc->cpus); else TRES mem= shared over NumNodes (a job that
 * asked for no memory and was given whole nodes). A figure above MemTotal
 * leaves MemTotal, the tighter limit.
 *
 * This runs a process: it is a separate call, never made by
 * cohort_alloc_detect() (which segment creation calls).
 *
 * Returns 1 when it set the limit, 0 when there was nothing to ask or the
 * controller gives no memory for the job (alloc untouched), or a negative
 * error code from cohort_slurm_job_read() (alloc untouched).
 */
COHORT_EXPORT int cohort_alloc_ask_slurm(const struct cohort_probe *probe, struct cohort_alloc *alloc);

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

#ifdef __cplusplus
}
#endif

#endif /* COHORT_ALLOC_H */
