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
 * not in (0, 1]). Free it with cohort_sampler_free().
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
 * One sampling round: read every process's statm, then read smaps_rollup
 * for as many processes as the CPU budget allows, first those whose RSS
 * moved by more than 5% since their last PSS (most first), then those never
 * read, then the stalest.
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

#ifdef __cplusplus
}
#endif

#endif /* COHORT_SAMPLER_H */
