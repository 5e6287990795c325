/*
 * diagnose.c - why did the job die, and what to change: findings from
 * recordings, each with the figures it rests on and a concrete fix.
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1ULL << 20)

const char *cohort_finding_name(enum cohort_finding_kind kind)
{
	switch (kind) {
	case COHORT_FINDING_OOM_KILL:            return "oom_kill";
	case COHORT_FINDING_BUDGET_KILL:         return "budget_kill";
	case COHORT_FINDING_SLURM_RSS_OVERCOUNT: return "slurm_rss_overcount";
	case COHORT_FINDING_SHM_EXHAUSTED:       return "shm_exhausted";
	case COHORT_FINDING_SEGFAULT:            return "segfault";
	case COHORT_FINDING_BUS_ERROR:           return "bus_error";
	case COHORT_FINDING_LEAK:                return "leak";
	case COHORT_FINDING_COW_UNSHARE:         return "cow_unshare";
	case COHORT_FINDING_OVERSUBSCRIBED:      return "oversubscribed";
	case COHORT_FINDING_CRASH:               return "crash";
	case COHORT_FINDING_EXIT_NONZERO:        return "exit_nonzero";
	case COHORT_FINDING_CUT:                 return "cut";
	}
	return "unknown";
}

/* Did the recorded cluster charge the RSS sum? cohort_slurm_sums_rss() on what was recorded. */
static bool sums_rss(const struct cohort_recording *r)
{
	struct cohort_slurm_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cohort__strlcpy(cfg.jobacct_gather_type, r->jobacct, sizeof(cfg.jobacct_gather_type));
	cohort__strlcpy(cfg.jobacct_gather_params, r->jobacct_params, sizeof(cfg.jobacct_gather_params));
	cohort__slurm_config_flags(&cfg);
	return cohort_slurm_sums_rss(&cfg) == 1;
}

struct list {
	struct cohort_finding *f;
	size_t n, cap;
	int error;
};

static struct cohort_finding *add(struct list *l, const struct cohort_recording *r,
                                  enum cohort_finding_kind kind, int rank, double t)
{
	struct cohort_finding *f;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct cohort_finding *nf = realloc(l->f, cap * sizeof(*nf));

		if (!nf) {
			l->error = -ENOMEM;
			return NULL;
		}
		l->f = nf;
		l->cap = cap;
	}
	f = &l->f[l->n++];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->rank = rank;
	f->pid = rank >= 0 ? r->workers[rank].pid : 0;
	f->t = t;
	cohort__strlcpy(f->host, r->host, sizeof(f->host));
	return f;
}

static void evidence(struct cohort_finding *f, const char *name, double value, const char *unit)
{
	if (!f || f->nevidence == COHORT_EVIDENCE_MAX)
		return;
	cohort__strlcpy(f->evidence[f->nevidence].name, name, sizeof(f->evidence[0].name));
	f->evidence[f->nevidence].value = value;
	cohort__strlcpy(f->evidence[f->nevidence].unit, unit, sizeof(f->evidence[0].unit));
	f->nevidence++;
}

#define SAY(buf, ...) snprintf((buf), sizeof(buf), __VA_ARGS__)

static const char *sz(uint64_t v, char *buf)
{
	return cohort_size_format(v, buf, 32);
}

/* The first event of a kind for a rank (-2: any rank), or NULL. */
static const struct cohort_rec_event *find_event(const struct cohort_recording *r, const char *kind,
                                                 int rank)
{
	for (size_t i = 0; i < r->nevents; i++)
		if (strcmp(r->events[i].kind, kind) == 0 && (rank == -2 || r->events[i].rank == rank))
			return &r->events[i];
	return NULL;
}

static const struct cohort_rec_event *find_crash(const struct cohort_recording *r, pid_t pid)
{
	for (size_t i = 0; i < r->nevents; i++)
		if (strcmp(r->events[i].kind, "crash_info") == 0 && r->events[i].pid == pid)
			return &r->events[i];
	return NULL;
}

static const struct cohort_rec_sample *last_sample(const struct cohort_recording *r)
{
	return r->nsamples ? &r->samples[r->nsamples - 1] : NULL;
}

static void crash_details(struct cohort_finding *f, const struct cohort_rec_event *c, char *buf,
                          size_t size)
{
	buf[0] = '\0';
	if (!c)
		return;
	evidence(f, "fault_addr", (double)c->fault_addr, "addr");
	/* The frames from the signal on: the shim's own and the kernel's trampoline go. */
	{
		const char *p = c->backtrace, *nl;
		bool after_shim = false;
		size_t len = 0;

		for (; *p; p = nl + 1) {
			nl = strchr(p, '\n');
			if (!nl)
				break;
			if (memmem(p, (size_t)(nl - p), "libcohort-catch.so", 18)) {
				after_shim = true;
				continue;
			}
			if (after_shim) {   /* the signal trampoline in libc */
				after_shim = false;
				continue;
			}
			if (len + (size_t)(nl - p) + 2 < sizeof(f->backtrace)) {
				memcpy(f->backtrace + len, p, (size_t)(nl - p) + 1);
				len += (size_t)(nl - p) + 1;
				f->backtrace[len] = '\0';
			}
		}
	}
	if (c->in_guard)
		snprintf(buf, size, " at address 0x%llx, in the guard page after %s: a write past the "
		         "end of the segment", (unsigned long long)c->fault_addr, c->where);
	else if (c->where[0])
		snprintf(buf, size, " at address 0x%llx, in %s", (unsigned long long)c->fault_addr, c->where);
	else
		snprintf(buf, size, " at address 0x%llx, which no mapping holds",
		         (unsigned long long)c->fault_addr);
}

/* What one worker's end says. */
static void worker_end(struct list *l, const struct cohort_recording *r, const struct cohort_rec_worker *w)
{
	const struct cohort_rec_event *e;
	const struct cohort_rec_sample *last = last_sample(r);
	struct cohort_finding *f;
	char a[32], b[32], c[32], d[512];

	/* A worker that never ran did not end well: say why it could not start. */
	if ((e = find_event(r, "spawn_failed", w->rank)) != NULL) {
		if (!(f = add(l, r, COHORT_FINDING_EXIT_NONZERO, w->rank, e->t)))
			return;
		SAY(f->message, "rank %d was never started: %s", w->rank, e->message);
		SAY(f->fix, "check the command (its path and permissions); when the error says "
		    "something ran out (open files, memory), raise that limit of the supervisor "
		    "(ulimit -n, ulimit -v) or start fewer workers");
		return;
	}
	if (!w->ended)
		return;
	if ((e = find_event(r, "oom_kill", w->rank)) != NULL) {
		uint64_t limit = (uint64_t)cohort_rec_event_num(e, "limit_bytes", 0);
		uint64_t used = (uint64_t)cohort_rec_event_num(e, "last_est", (double)w->last_est);
		uint64_t shm = last && last->has_cgroup ? last->cg_shmem : 0;

		if (!(f = add(l, r, COHORT_FINDING_OOM_KILL, w->rank, e->t)))
			return;
		SAY(f->message, "rank %d (pid %d) was killed by the kernel's OOM killer at %.1f s: its "
		    "memory limit is %s and it last used about %s%s%s%s", w->rank, (int)w->pid, e->t,
		    sz(limit, a), sz(used, b), shm ? "; the job's cgroup also held " : "",
		    shm ? sz(shm, c) : "", shm ? " of /dev/shm pages, which count against the same limit" : "");
		SAY(f->fix, "give each worker more memory (cohort run --mem-per-worker, or a larger "
		    "--mem for the job), run fewer workers, or make the worker need less; cohort run "
		    "--enforce watch stops the worker before the kernel does and says so");
		evidence(f, "limit_bytes", (double)limit, "B");
		evidence(f, "last_est_bytes", (double)used, "B");
		evidence(f, "peak_pss_bytes", (double)w->peak_pss, "B");
		if (shm)
			evidence(f, "cgroup_shmem_bytes", (double)shm, "B");
		return;
	}
	if (w->stopped_by_cohort && (e = find_event(r, "limit", w->rank)) != NULL) {
		uint64_t est = (uint64_t)cohort_rec_event_num(e, "est_bytes", 0);
		uint64_t limit = (uint64_t)cohort_rec_event_num(e, "limit_bytes", 0);

		if (!(f = add(l, r, COHORT_FINDING_BUDGET_KILL, w->rank, e->t)))
			return;
		SAY(f->message, "%s", e->message);
		SAY(f->fix, "if the worker really needs %s, give it that (--mem-per-worker %lluM, fewer "
		    "workers, or a larger allocation); if it should not, see what grows (a leak or "
		    "copy-on-write finding says which)", sz(est, a),
		    (unsigned long long)((est + est / 5) / MiB + 1));
		evidence(f, "est_bytes", (double)est, "B");
		evidence(f, "limit_bytes", (double)limit, "B");
		if (cohort_rec_event_num(e, "total_bytes", -1) >= 0)
			evidence(f, "total_bytes", cohort_rec_event_num(e, "total_bytes", 0), "B");
		return;
	}
	if (w->signal == SIGSEGV) {
		const struct cohort_rec_event *cr = find_crash(r, w->pid);

		if (!(f = add(l, r, COHORT_FINDING_SEGFAULT, w->rank, w->end)))
			return;
		crash_details(f, cr, d, sizeof(d));
		SAY(f->message, "rank %d (pid %d) crashed with SIGSEGV (segmentation fault)%s", w->rank,
		    (int)w->pid, d);
		if (cr && cr->in_guard)
			SAY(f->fix, "the worker wrote past the end of a shared segment: check the index "
			    "arithmetic against the segment's size; the backtrace shows where");
		else
			SAY(f->fix, "a bad pointer in the worker: run it under gdb, valgrind or "
			    "AddressSanitizer%s", cr && cr->backtrace[0] ? "; the backtrace shows where" : "");
		return;
	}
	if (w->signal == SIGBUS) {
		const struct cohort_rec_event *cr = find_crash(r, w->pid);
		bool shm_full = (last && r->shm_size && last->shm_free < r->shm_size / 50) ||
		                (cr && strstr(cr->where, "/dev/shm")) || (!cr && r->shm_free_start &&
		                last && last->shm_free && last->shm_free < 4 * MiB);

		if (shm_full) {
			uint64_t free_now = last ? last->shm_free : 0;

			if (!(f = add(l, r, COHORT_FINDING_SHM_EXHAUSTED, w->rank, w->end)))
				return;
			crash_details(f, cr, d, sizeof(d));
			SAY(f->message, "rank %d (pid %d) died of SIGBUS (bus error)%s: /dev/shm had %s free "
			    "of %s at the start and %s near the end; a segment's pages are only taken "
			    "when first written, and a write that finds /dev/shm full is a SIGBUS, long "
			    "after the segment was created", w->rank, (int)w->pid, d, sz(r->shm_free_start, a),
			    sz(r->shm_size, b), sz(free_now, c));
			SAY(f->fix, "reserve the segment's pages when creating it (posix_fallocate, as "
			    "cohort_seg_create does) so that a full /dev/shm is an error at creation; "
			    "remove leftover segments (cohort shm gc); make the segments smaller or ask "
			    "for a node with a larger /dev/shm");
			evidence(f, "shm_free_start_bytes", (double)r->shm_free_start, "B");
			evidence(f, "shm_free_end_bytes", (double)free_now, "B");
			evidence(f, "shm_size_bytes", (double)r->shm_size, "B");
			if (last && last->has_cgroup)
				evidence(f, "cgroup_shmem_bytes", (double)last->cg_shmem, "B");
		} else {
			if (!(f = add(l, r, COHORT_FINDING_BUS_ERROR, w->rank, w->end)))
				return;
			crash_details(f, cr, d, sizeof(d));
			SAY(f->message, "rank %d (pid %d) died of SIGBUS (bus error)%s", w->rank,
			    (int)w->pid, d);
			SAY(f->fix, "an access to a mapped file beyond its end (a file truncated while "
			    "mapped, or mapped past its size) or a misaligned access; check the mapping's "
			    "size against the file's");
		}
		return;
	}
	if (w->signal && w->signal != SIGTERM && w->signal != SIGINT && w->signal != SIGHUP &&
	    !(w->signal == SIGKILL && find_event(r, "warning", -1) &&
	      strstr(find_event(r, "warning", -1)->message, "got "))) {
		if (!(f = add(l, r, COHORT_FINDING_CRASH, w->rank, w->end)))
			return;
		crash_details(f, find_crash(r, w->pid), d, sizeof(d));
		SAY(f->message, "rank %d (pid %d) was killed by signal %d (%s)%s%s", w->rank, (int)w->pid,
		    w->signal, strsignal(w->signal), d,
		    w->signal == SIGKILL ? "; not by the kernel's OOM killer (no oom_kill was "
		    "counted) nor by cohort: by another process, or SLURM at a limit" : "");
		SAY(f->fix, "%s", w->signal == SIGABRT ? "the worker aborted itself (a failed assert, "
		    "or a library such as glibc detecting heap corruption): its stderr says why" :
		    "see the worker's output and the node's logs for who sent the signal");
		evidence(f, "signal", w->signal, "");
		return;
	}
	if (w->exit_code > 0) {
		if (!(f = add(l, r, COHORT_FINDING_EXIT_NONZERO, w->rank, w->end)))
			return;
		SAY(f->message, "rank %d (pid %d) exited with status %d after %.1f s", w->rank,
		    (int)w->pid, w->exit_code, w->end - w->start);
		SAY(f->fix, "see the worker's own messages (cohort run -l labels each line with its "
		    "rank)%s", strcmp(r->enforce, "rlimit") == 0 ? "; under --enforce rlimit an "
		    "allocation above the worker's limit fails inside it, which many programs report "
		    "as an error exit" : "");
		evidence(f, "exit_code", w->exit_code, "");
	}
}

static void trends(struct list *l, const struct cohort_recording *r)
{
	char a[32], b[32];

	for (size_t i = 0; i < r->nevents; i++) {
		const struct cohort_rec_event *e = &r->events[i];
		struct cohort_finding *f;

		if (strcmp(e->kind, "leak") == 0 && e->rank >= 0) {
			if (!(f = add(l, r, COHORT_FINDING_LEAK, e->rank, e->t)))
				return;
			SAY(f->message, "%s", e->message);
			SAY(f->fix, "the worker keeps memory it never gives back: objects kept in a list, "
			    "cache, dict or global that only grows; find it with heaptrack or valgrind "
			    "(C), memray or tracemalloc (Python); freeing is not the question, dropping "
			    "the last reference is");
			evidence(f, "rate_bytes_per_s", cohort_rec_event_num(e, "rate_bytes_per_s", 0), "B/s");
			evidence(f, "window_s", cohort_rec_event_num(e, "window_s", 0), "s");
			evidence(f, "current_bytes", cohort_rec_event_num(e, "current_bytes", 0), "B");
			evidence(f, "eta_s", cohort_rec_event_num(e, "eta_s", 0), "s");
		} else if (strcmp(e->kind, "cow_unshare") == 0 && e->rank >= 0) {
			uint64_t total = r->workers[e->rank].cow_copied;

			if (!(f = add(l, r, COHORT_FINDING_COW_UNSHARE, e->rank, e->t)))
				return;
			if (total < (uint64_t)cohort_rec_event_num(e, "copied_bytes", 0))
				total = (uint64_t)cohort_rec_event_num(e, "copied_bytes", 0);
			SAY(f->message, "rank %d (pid %d): its processes copied %s of memory they shared "
			    "after fork (copy-on-write): every write to a shared page, reference counts "
			    "included, makes a private copy, so private memory grows while nothing leaks "
			    "(peak USS %s)", e->rank, (int)r->workers[e->rank].pid, sz(total, a),
			    sz(r->workers[e->rank].peak_uss, b));
			SAY(f->fix, "keep the shared data in a shared segment or in flat arrays (numpy, "
			    "array, mmap) instead of many small objects; load it after forking if each "
			    "worker needs its own; or start workers with spawn instead of fork");
			evidence(f, "copied_bytes", (double)total, "B");
		}
	}
}

static void job_level(struct list *l, const struct cohort_recording *r)
{
	const struct cohort_rec_event *e;
	struct cohort_finding *f;
	char a[32], b[32], c[32];
	uint64_t rss_peak = 0, pss_at = 0;
	double t_peak = -1, psi_peak = -1, t_psi = -1;
	uint64_t swap_first = 0, swap_peak = 0;

	for (size_t i = 0; i < r->nsamples; i++) {
		const struct cohort_rec_sample *s = &r->samples[i];

		if (s->rss_sum > rss_peak) {
			rss_peak = s->rss_sum;
			pss_at = s->pss_sum;
			t_peak = s->t;
		}
		if (s->psi_some10 > psi_peak) {
			psi_peak = s->psi_some10;
			t_psi = s->t;
		}
		if (i == 0)
			swap_first = s->swap_used;
		if (s->swap_used > swap_peak)
			swap_peak = s->swap_used;
	}

	/* SLURM's jobacct_gather/linux charges the RSS sum. */
	e = find_event(r, "slurm_rss_risk", -2);
	if (r->slurm && r->mem_limit && sums_rss(r) &&
	    (e || (rss_peak > r->mem_limit && pss_at <= r->mem_limit))) {
		bool over = rss_peak > r->mem_limit;

		if ((f = add(l, r, COHORT_FINDING_SLURM_RSS_OVERCOUNT, -1, e ? e->t : t_peak)) != NULL) {
			SAY(f->message, "the workers' RSS sum reached %s against the job's %s limit while "
			    "their PSS sum, what they really use, was %s: SLURM's jobacct_gather/linux adds "
			    "up the RSS of every process, charging pages they share once per process, and "
			    "with OverMemoryKill %s", sz(rss_peak, a), sz(r->mem_limit, b), sz(pss_at, c),
			    over ? (r->ended ? "kills such a job" : "killed this one (the recording was "
			    "cut when SLURM ended the step)") : "would kill the job as the sum grows");
			SAY(f->fix, "ask the cluster's administrators for JobAcctGatherParams=UsePss (or "
			    "jobacct_gather/cgroup with ConstrainRAMSpace=yes), which count shared pages "
			    "once; meanwhile request --mem=%lluM, the RSS sum, or share less per process",
			    (unsigned long long)((rss_peak + rss_peak / 10) / MiB + 1));
			evidence(f, "rss_sum_bytes", (double)rss_peak, "B");
			evidence(f, "pss_sum_bytes", (double)pss_at, "B");
			evidence(f, "limit_bytes", (double)r->mem_limit, "B");
		}
	}

	/* The node was asked for more than it has: swapping, or stalls in reclaim. */
	if (psi_peak >= 10.0 || swap_peak > swap_first + 64 * MiB) {
		if ((f = add(l, r, COHORT_FINDING_OVERSUBSCRIBED, -1, psi_peak >= 10.0 ? t_psi : -1)) != NULL) {
			char stall[96] = "", swap[160] = "";

			if (psi_peak >= 10.0)
				SAY(stall, "tasks stalled waiting for memory %.0f%% of the time (PSI some avg10)",
				    psi_peak);
			if (swap_peak > swap_first + 64 * MiB)
				SAY(swap, "%s%s went to swap (the node's swap in use rose from %s to %s)",
				    stall[0] ? "; " : "", sz(swap_peak - swap_first, a), sz(swap_first, b),
				    sz(swap_peak, c));
			SAY(f->message, "the workers were short of memory while they ran: %s%s; they slow "
			    "down by orders of magnitude instead of failing", stall, swap);
			SAY(f->fix, "give the workers the memory they use, so that nothing has to swap: "
			    "fewer workers or more memory per worker (--mem, --mem-per-worker; cohort check "
			    "says what fits), and an explicit --mem so SLURM does not pack other jobs beside "
			    "this one on the node");
			evidence(f, "psi_some_avg10_pct", psi_peak, "%");
			evidence(f, "swap_growth_bytes", (double)(swap_peak > swap_first ? swap_peak - swap_first : 0), "B");
		}
	}

	if (!r->ended && (f = add(l, r, COHORT_FINDING_CUT, -1, r->duration)) != NULL) {
		SAY(f->message, "the recording %s ends at %.1f s without cohort run's last line: the "
		    "supervisor itself was killed%s, so workers still running then were killed with it",
		    r->path, r->duration, r->slurm ? " (SLURM ends a step this way at its time or "
		    "memory limit, or on scancel)" : " (SIGKILL, or its machine went down)");
		SAY(f->fix, "%s", r->slurm ? "see `sacct -j JOBID` and slurmstepd's messages for "
		    "why SLURM ended the step; the findings above tell what the workers were doing" :
		    "nothing to change in the workers for this; the findings above tell what they "
		    "were doing");
		evidence(f, "duration_s", r->duration, "s");
	}
}

static int cmp(const void *pa, const void *pb)
{
	const struct cohort_finding *a = pa, *b = pb;

	if (a->kind != b->kind)
		return (int)a->kind - (int)b->kind;
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return a->rank - b->rank;
}

int cohort_diagnose(struct cohort_recording *const *recs, size_t nrecs,
                    struct cohort_finding **ret, size_t *ret_n)
{
	struct list l = { 0 };

	for (size_t i = 0; i < nrecs && !l.error; i++) {
		const struct cohort_recording *r = recs[i];

		for (unsigned k = 0; k < r->nworkers && !l.error; k++)
			worker_end(&l, r, &r->workers[k]);
		trends(&l, r);
		job_level(&l, r);
	}
	if (l.error) {
		free(l.f);
		return l.error;
	}
	if (l.n)
		qsort(l.f, l.n, sizeof(*l.f), cmp);
	*ret = l.f;
	*ret_n = l.n;
	return 0;
}
