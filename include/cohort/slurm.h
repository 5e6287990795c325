/*
 * cohort/slurm.h - what SLURM's controller knows: the cluster's accounting
 * setup (`scontrol show config`) and a job's memory (`scontrol show job`).
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 *
 * The environment of a job step does not always tell its memory: plain
 * `srun --mem=1000M` (no salloc or sbatch around it) exports no
 * SLURM_MEM_PER_NODE, and with ConstrainRAMSpace=no there is no cgroup limit
 * either, while jobacct_gather/linux with OverMemoryKill still kills the job
 * at 1000M. Only the controller knows; these calls ask it.
 *
 * Asking means running scontrol: a child process, a round trip to
 * slurmctld. The *_read calls do that (never from a signal handler, and
 * not inside anything that must not spawn, such as segment creation); the
 * *_parse calls only read text.
 */
#ifndef COHORT_SLURM_H
#define COHORT_SLURM_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * The cluster's configuration: `scontrol show config`
 * ------------------------------------------------------------------------ */

/*
 * What cohort needs of the cluster's configuration. Strings are "" when
 * the key is absent or SLURM prints "(null)".
 */
struct cohort_slurm_config {
	char jobacct_gather_type[64];      /* JobAcctGatherType: "jobacct_gather/linux", ".../cgroup", ".../none" */
	char jobacct_gather_params[256];   /* JobAcctGatherParams, raw: "OverMemoryKill,UsePss" */
	int use_pss;                       /* UsePss in the params: PSS, not RSS, is charged */
	int no_shared;                     /* NoShared: shared pages are left out of RSS */
	int over_memory_kill;              /* OverMemoryKill: a step above its memory is killed */
	char jobacct_gather_frequency[128];/* JobAcctGatherFrequency, raw: "task=1", "30" */
	long jobacct_gather_task_s;        /* its task sampling period in seconds (task=N or a bare N);
	                                      0 means task sampling is off, -1 not given (SLURM: 30) */
	char proctrack_type[64];           /* ProctrackType: "proctrack/cgroup" */
	char task_plugin[128];             /* TaskPlugin: "task/cgroup,task/affinity" */
	char select_type[64];              /* SelectType: "select/cons_tres" */
	int constrain_ram_space;           /* cgroup.conf's ConstrainRAMSpace: 1 yes, 0 no, -1 not shown */
};

/*
 * Parse the output of `scontrol show config` (lines `Key = Value`, the
 * cgroup.conf section after them). Keys may come in any order; unknown
 * ones are skipped, and lines longer than 4 KiB are skipped whole.
 *
 * Returns 0 and fills *ret, or COHORT_EPARSE when the text holds none of
 * the keys above (empty text, an error message, another command's
 * output), or -EINVAL when an argument is NULL.
 */
COHORT_EXPORT int cohort_slurm_config_parse(const char *text, struct cohort_slurm_config *ret);

/*
 * Run `scontrol show config` (probe->scontrol, else "scontrol" found
 * through PATH; probe may be NULL) and parse its output. The child gets
 * the calling process's environment (SLURM_CONF there tells it the
 * cluster; probe->envp describes the job and is not passed on), stdin
 * from /dev/null, stderr discarded; it runs in its own process group so
 * that whatever it starts is killed with it. It is spawned with
 * posix_spawn, never fork, so a threaded caller is safe.
 *
 * Returns 0 and fills *ret; COHORT_ETIMEDOUT when scontrol did not finish within
 * 3 s (it is killed); -EFBIG when it wrote more than 256 KiB (killed);
 * COHORT_ECOMMAND when it exited non-zero or died of a signal (the
 * controller is down, no SLURM here); -ENOENT when there is no scontrol;
 * COHORT_EPARSE as cohort_slurm_config_parse(). The child is always
 * reaped before this returns.
 */
COHORT_EXPORT int cohort_slurm_config_read(const struct cohort_probe *probe,
                                           struct cohort_slurm_config *ret);

/*
 * Does SLURM's accounting charge a job the sum of its processes' RSS, so
 * that pages they share are counted once per process? This is the one
 * place for that rule; cohort's supervisor warns and its diagnosis reports
 * on it.
 *
 * 1 for jobacct_gather/linux without UsePss. NoShared does not change
 * that: it takes the file and shmem pages (statm's "shared") out of each
 * RSS, but anonymous pages shared copy-on-write after fork() are still
 * counted once per process. 0 for
 * cgroup-based accounting (jobacct_gather/cgroup reads the cgroup's own
 * counter, which charges a page once), for jobacct_gather/none (nothing is
 * gathered), and whenever UsePss is set.
 *
 * Unknown (cfg NULL, or no JobAcctGatherType, or a type cohort does not
 * know) gives 1 when UsePss is not known to be set: jobacct_gather/linux
 * is the common setup and the one that kills jobs for memory they do not
 * use, and every caller also needs the figures to show the overcount
 * before it says anything, so a wrong 1 costs a warning while a wrong 0
 * hides why a job was killed.
 */
COHORT_EXPORT int cohort_slurm_sums_rss(const struct cohort_slurm_config *cfg);

/*
 * How an RSS sum that SLURM would charge stands against the job's limit,
 * while the PSS sum is what the workers really use: the one rule the
 * watcher's slurm_rss_risk notice and the diagnosis's slurm_rss_overcount
 * finding apply (to be used where cohort_slurm_sums_rss() says 1).
 *
 *   COHORT_SLURM_RSS_OVER  rss_sum > limit while pss_sum < limit: a summing
 *                          plugin with OverMemoryKill kills a job that fits
 *   COHORT_SLURM_RSS_NEAR  rss_sum > 80% of limit while pss_sum < 60%:
 *                          the sum is closing in and the gap is the shared
 *                          pages, not use
 *   COHORT_SLURM_RSS_FITS  anything else, and a limit of 0 (none known)
 */
enum cohort_slurm_rss {
	COHORT_SLURM_RSS_FITS = 0,
	COHORT_SLURM_RSS_NEAR = 1,
	COHORT_SLURM_RSS_OVER = 2,
};
#define COHORT_SLURM_RSS_NEAR_PERCENT 80    /* of the limit, for the RSS sum */
#define COHORT_SLURM_PSS_NEAR_PERCENT 60    /* of the limit, for the PSS sum */
COHORT_EXPORT enum cohort_slurm_rss cohort_slurm_rss_level(uint64_t rss_sum, uint64_t pss_sum,
                                                           uint64_t limit);

/* ------------------------------------------------------------------------
 * A job as the controller knows it: `scontrol show job -o ID`
 * ------------------------------------------------------------------------ */

/* A job's memory and size. Sizes are bytes; 0 when not given. */
struct cohort_slurm_job {
	char job_id[COHORT_ID_MAX];        /* JobId */
	char job_state[32];                /* JobState: "RUNNING", "PENDING", ... */
	uint64_t mem_per_node;             /* MinMemoryNode; 0 also when SLURM prints 0 (the whole node) */
	uint64_t mem_per_cpu;              /* MinMemoryCPU */
	uint64_t mem_tres;                 /* mem= in TRES: the job's memory on all its nodes together */
	long num_nodes;                    /* NumNodes (the lower figure of a range), -1 unknown */
	long num_cpus;                     /* NumCPUs, all nodes together, -1 unknown */
	long num_tasks;                    /* NumTasks, -1 unknown ("N/A") */
};

/*
 * Parse the output of `scontrol show job -o ID`: one line of Key=Value
 * tokens per job (a heterogeneous job prints one line per component; the
 * first is read). Sizes are in SLURM's notation ("1000M", "2G", "1.5T",
 * a bare number is megabytes) and read with cohort_size_parse().
 *
 * Returns 0 and fills *ret; COHORT_EPARSE when no line starts with JobId=
 * or a memory figure is not a size; COHORT_ESIZE_RANGE when one is above
 * 2^64-1 bytes; -EINVAL when an argument is NULL. A job that gives no
 * memory at all is a success with the memory fields at 0.
 */
COHORT_EXPORT int cohort_slurm_job_parse(const char *text, struct cohort_slurm_job *ret);

/*
 * Run `scontrol -o show job JOB_ID` as cohort_slurm_config_read() runs
 * its command, and parse the output. job_id must be a SLURM job id
 * (digits, with "_" for an array task or "+" for a component); anything
 * else is -EINVAL before anything runs. Returns what
 * cohort_slurm_config_read() and cohort_slurm_job_parse() return;
 * COHORT_ECOMMAND also when the controller does not know the job.
 */
COHORT_EXPORT int cohort_slurm_job_read(const struct cohort_probe *probe, const char *job_id,
                                        struct cohort_slurm_job *ret);

#ifdef __cplusplus
}
#endif

#endif /* COHORT_SLURM_H */
