/*
 * plan.c - will N workers of M bytes, plus S bytes of shared segments, fit
 * the allocation? Every problem carries its figures and a concrete fix.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

const char *cohort_problem_name(enum cohort_problem_kind kind)
{
	switch (kind) {
	case COHORT_PROBLEM_MEM_LIMIT: return "mem_limit";
	case COHORT_PROBLEM_SHM:       return "shm";
	case COHORT_PROBLEM_RAM:       return "ram";
	case COHORT_PROBLEM_CPUS:      return "cpus";
	}
	return "unknown";
}

static struct cohort_problem *add(struct cohort_verdict *v, enum cohort_problem_kind kind, int fatal)
{
	struct cohort_problem *p;

	if (v->nproblems >= COHORT_PROBLEMS_MAX)
		return NULL;
	p = &v->problems[v->nproblems++];
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->fatal = fatal;
	if (fatal)
		v->fits = 0;
	return p;
}

#define FMT(buf, ...) snprintf((buf), sizeof(buf), __VA_ARGS__)

/*
 * A memory request in SLURM's notation that covers bytes: whole gibibytes
 * from 1 GiB up, else whole mebibytes, rounded up.
 */
static void slurm_mem(uint64_t bytes, char *buf, size_t size)
{
	const uint64_t G = 1ULL << 30, M = 1ULL << 20;

	if (bytes >= G)
		snprintf(buf, size, "%lluG", (unsigned long long)(bytes / G + (bytes % G != 0)));
	else
		snprintf(buf, size, "%lluM", (unsigned long long)(bytes / M + (bytes % M != 0)));
}

/* "workers x each + shm shared = total", or "shm shared" alone. */
static void describe_total(const struct cohort_verdict *v, const struct cohort_plan *p,
                           char *buf, size_t size)
{
	char each[32], shm[32], total[32];

	cohort_size_format(p->mem_per_worker, each, sizeof(each));
	cohort_size_format(p->shm, shm, sizeof(shm));
	cohort_size_format(v->total, total, sizeof(total));
	if (p->mem_per_worker && p->shm)
		snprintf(buf, size, "%u worker%s x %s + %s of shared segments = %s",
		         v->workers, v->workers == 1 ? "" : "s", each, shm, total);
	else if (p->mem_per_worker)
		snprintf(buf, size, "%u worker%s x %s = %s", v->workers, v->workers == 1 ? "" : "s", each, total);
	else
		snprintf(buf, size, "%s of shared segments", shm);
}

int cohort_plan_check(const struct cohort_alloc *a, const struct cohort_plan *p,
                      struct cohort_verdict *ret)
{
	struct cohort_verdict v;
	struct cohort_problem *pr;
	char what[160], lim[32], need[32], free_[32], size[32], fitsz[32];
	uint64_t work, limit = a->mem_limit;

	memset(&v, 0, sizeof(v));
	v.fits = 1;
	v.workers = p->workers ? p->workers : (a->cpus ? a->cpus : 1);
	if (__builtin_mul_overflow((uint64_t)v.workers, p->mem_per_worker, &work) ||
	    __builtin_add_overflow(work, p->shm, &v.total))
		return COHORT_EPLAN;

	if (limit > p->shm) {
		v.per_worker_fit = (limit - p->shm) / v.workers;
		if (p->mem_per_worker) {
			uint64_t n = (limit - p->shm) / p->mem_per_worker;
			v.workers_fit = n > 1000000 ? 1000000 : (unsigned)n;
		}
	}
	cohort_size_format(limit, lim, sizeof(lim));
	describe_total(&v, p, what, sizeof(what));

	/* 1. The memory limit: workers and /dev/shm pages are both charged to it. */
	if (v.total > limit && (pr = add(&v, COHORT_PROBLEM_MEM_LIMIT, 1))) {
		char req[32];

		/* A limit the caller set (cohort run --budget) has no source but its own words. */
		FMT(pr->message, "%s, above the %s memory limit (%s%s%s)%s", what, lim,
		    a->mem_limit_source == COHORT_SRC_NONE ? "" : cohort_source_name(a->mem_limit_source),
		    a->mem_limit_source == COHORT_SRC_NONE ? "" : ": ", a->mem_limit_where,
		    p->shm ? "; tmpfs pages in /dev/shm are charged to the job's memory too" : "");
		/* With tasks sharing the node, --mem is for all of them: this plan in each. */
		slurm_mem(a->task_share && a->slurm.tasks_on_node > 1 &&
		          v.total <= UINT64_MAX / (uint64_t)a->slurm.tasks_on_node ?
		          v.total * (uint64_t)a->slurm.tasks_on_node : v.total, req, sizeof(req));
		if (p->mem_per_worker && v.workers_fit > 0) {
			cohort_size_format(v.per_worker_fit, fitsz, sizeof(fitsz));
			FMT(pr->fix, "%s%s%suse --workers %u, or at most %s per worker",
			    a->slurm.present ? "request --mem=" : "", a->slurm.present ? req : "",
			    a->slurm.present ? " (sbatch/srun), or " : "",
			    v.workers_fit, fitsz);
		} else if (a->slurm.present && p->mem_per_worker && !p->shm) {
			/* Not one worker fits: fewer is no fix, and there are no segments to shrink. */
			FMT(pr->fix, "request --mem=%s (sbatch/srun), or use at most %s per worker",
			    req, cohort_size_format(v.per_worker_fit, need, sizeof(need)));
		} else if (a->slurm.present) {
			FMT(pr->fix, "request --mem=%s (sbatch/srun), or make the shared segments smaller", req);
		} else {
			FMT(pr->fix, "run on a machine or allocation with at least %s, or make the %s smaller",
			    cohort_size_format(v.total, need, sizeof(need)),
			    p->mem_per_worker ? "workers" : "shared segments");
		}
	} else if (a->cgroup_usage_known && a->mem_limit_source == COHORT_SRC_CGROUP &&
	           a->cgroup_usage < limit && v.total > limit - a->cgroup_usage &&
	           (pr = add(&v, COHORT_PROBLEM_MEM_LIMIT, 0))) {
		cohort_size_format(a->cgroup_usage, size, sizeof(size));
		cohort_size_format(limit - a->cgroup_usage, free_, sizeof(free_));
		FMT(pr->message, "%s fits the %s limit, but the cgroup already uses %s, leaving %s",
		    what, lim, size, free_);
		FMT(pr->fix, "free what the job already holds (page cache, leftover /dev/shm segments: cohort shm ls) before starting the workers");
	}

	/* 2. /dev/shm itself: ftruncate reserves nothing, the first write past it is a SIGBUS. */
	if (p->shm && a->shm_known && p->shm > a->shm_free &&
	    (pr = add(&v, COHORT_PROBLEM_SHM, 1))) {
		cohort_size_format(p->shm, need, sizeof(need));
		cohort_size_format(a->shm_free, free_, sizeof(free_));
		cohort_size_format(a->shm_size, size, sizeof(size));
		FMT(pr->message, "the shared segments need %s but /dev/shm has %s free of %s; "
		    "writing past it raises SIGBUS", need, free_, size);
		FMT(pr->fix, "remove leftover segments (cohort shm ls, cohort shm gc), shrink the "
		    "segments below %s, or ask for a node with a larger /dev/shm", free_);
	}

	/* 3. The node's RAM, when a looser limit (or none) hides it. */
	if (a->mem_limit_source != COHORT_SRC_MEMTOTAL && a->ram_total && v.total > a->ram_total &&
	    (pr = add(&v, COHORT_PROBLEM_RAM, 1))) {
		cohort_size_format(a->ram_total, size, sizeof(size));
		FMT(pr->message, "%s, above the node's %s of RAM: the node would swap, or the "
		    "kernel's OOM killer would kill a worker", what, size);
		/* Not even one worker fits: fewer workers is no fix. */
		if (p->mem_per_worker && a->ram_total > p->shm && (a->ram_total - p->shm) / p->mem_per_worker > 0)
			FMT(pr->fix, "use --workers %llu or fewer",
			    (unsigned long long)((a->ram_total - p->shm) / p->mem_per_worker));
		else if (p->mem_per_worker && a->ram_total > p->shm)
			FMT(pr->fix, "make each worker smaller than %s (the node's RAM%s)",
			    cohort_size_format((a->ram_total - p->shm), need, sizeof(need)),
			    p->shm ? " less the shared segments" : "");
		else
			FMT(pr->fix, "make the shared segments smaller than the node's RAM");
	} else if (v.fits && a->ram_available && v.total > a->ram_available &&
	           (pr = add(&v, COHORT_PROBLEM_RAM, 0))) {
		cohort_size_format(a->ram_available, size, sizeof(size));
		FMT(pr->message, "%s, more than the %s of RAM available now (MemAvailable): "
		    "other processes on the node hold the rest", what, size);
		FMT(pr->fix, "expect swapping or reclaim; run when the node is less loaded, or with fewer workers");
	}

	/* 4. CPUs: not a memory error, but workers beyond the CPUs time-share. */
	if (v.workers > a->cpus && a->cpus && (pr = add(&v, COHORT_PROBLEM_CPUS, 0))) {
		FMT(pr->message, "%u workers on %u usable CPUs (%s): workers will time-share",
		    v.workers, a->cpus, cohort_source_name(a->cpus_source));
		if (a->slurm.present)
			FMT(pr->fix, "use --workers %u, or request -c %u", a->cpus, v.workers);
		else
			FMT(pr->fix, "use --workers %u", a->cpus);
	}

	*ret = v;
	return 0;
}
