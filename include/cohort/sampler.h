/*
 * cohort/sampler.h - the sampler: cheap counters every tick, PSS within a CPU budget.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 */
#ifndef COHORT_SAMPLER_H
#define COHORT_SAMPLER_H

#include "procmem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the sampler: cheap counters every tick, PSS within a CPU budget ---- */

/*
 * A sampler is used by one thread at a time: calls on the same sampler must
 * not overlap. It reads the processes' files itself; it starts no thread.
 */
struct cohort_sampler;

struct cohort_sampler_opts {
	double cpu_budget;           /* fraction of one core for statm and smaps reads; 0: 0.01 */
	const struct cohort_probe *probe; /* NULL: the real system; kept by pointer */
	double max_age;              /* seconds an idle PSS should not outlive; 0: 120 (see tick) */
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
	int moved;                   /* 1 while its memory moved since the last walk and it awaits one */
};

/*
 * Create a sampler. Returns 0 and *ret, or -ENOMEM / -EINVAL (a budget
 * not in (0, 1], a max_age not in (0, 86400]). Free it with
 * cohort_sampler_free().
 */
COHORT_EXPORT int cohort_sampler_create(const struct cohort_sampler_opts *opts,
                                        struct cohort_sampler **ret);

/* Free a sampler. Accepts NULL. */
COHORT_EXPORT void cohort_sampler_free(struct cohort_sampler *s);

/* Watch a process. Returns 0, -EEXIST when already watched, -ENOMEM. */
COHORT_EXPORT int cohort_sampler_add(struct cohort_sampler *s, pid_t pid);

/* Stop watching a process. Returns 0 or -ENOENT. */
COHORT_EXPORT int cohort_sampler_remove(struct cohort_sampler *s, pid_t pid);

/*
 * Give the usage of pid's own memory cgroup (bytes, read by the caller:
 * say a SLURM task's or a worker's cgroup), before a tick. A cgroup sees
 * what statm does not, such as copy-on-write copies: when the usage moves
 * from its figure at the process's last walk by 5% or more of the
 * process's RSS, its PSS counts as moved, as for an RSS move. Processes
 * sharing a cgroup are all given its usage. The first figure given is the
 * base (no move can be told from it). UINT64_MAX forgets the figure.
 * Returns 0 or -ENOENT when the pid is not watched.
 */
COHORT_EXPORT int cohort_sampler_set_usage(struct cohort_sampler *s, pid_t pid, uint64_t bytes);

/*
 * One sampling round: read every process's statm, then walk (read
 * smaps_rollup of) as many processes as the CPU budget allows.
 * The budget is a token bucket: each tick earns cpu_budget x the wall time
 * since the previous tick, every read (statm and smaps) spends its
 * measured CPU time, and a read that overdraws is repaid by later ticks,
 * so over time the sampler stays within the budget.
 * Who is walked: first the moved, processes whose RSS (or cgroup usage,
 * cohort_sampler_set_usage()) moved by 5% or more of their RSS since
 * their last walk, in the order the moves were seen; then the oldest PSS
 * first (a process never walked counts from when it was added). Part of
 * each tick's earning is reserved for the oldest, so that moves cannot
 * starve them: what walking every process once per max_age costs at the
 * walks' measured costs (a tenth more), when that is at most 3/4 of the
 * budget for walks; whatever either queue leaves goes to the other. When
 * a rotation within max_age costs more than that, no share can hold the
 * bound: the reserve is then 1/2 (stats.reserve says which), the oldest
 * PSS gets older than max_age, up to (processes x cost of a walk) /
 * (1/2 x the budget for walks) while moves take all they may, less while
 * few move.
 * Processes found gone are marked gone (not removed). Returns the number
 * of smaps reads done, or a negative error.
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
	uint64_t moved_reads;        /* of smaps_reads, those of processes whose memory had moved */
	uint64_t moved_waiting;      /* processes moved and not walked since, at the last tick */
	double reserve;              /* the share of the walk budget reserved for the oldest, last tick */
};

/*
 * Copy the sampler's totals into *ret: what it has spent, over how long, and
 * the worst PSS age at the last tick (a process never read counts from
 * when it was added, or from the first tick if added before it). Cannot
 * fail.
 */
COHORT_EXPORT void cohort_sampler_stats(const struct cohort_sampler *s,
                                        struct cohort_sampler_stats *ret);

#ifdef __cplusplus
}
#endif

#endif /* COHORT_SAMPLER_H */
