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

/*
 * Whether the supervisor itself got a signal (SIGTERM from SLURM at a limit
 * or on scancel, ^C, ...), and when: 1 and *ret_t, else 0. *ret_name gets
 * its name ("SIGTERM"), or "a signal" when the recording does not say.
 */
static int supervisor_signal(const struct cohort_recording *r, double *ret_t, const char **ret_name)
{
	if (r->signal) {
		*ret_t = r->signal_t;
		*ret_name = r->signal_name[0] ? r->signal_name : "a signal";
		return 1;
	}
	/*
	 * Fallback for format-1 recordings written before the "signal" kind
	 * existed: their supervisor recorded the signal as a "warning" that
	 * concerns no worker, whose message begins "got " and strsignal()'s
	 * words ("got Terminated: passing it to the workers ..."). No other
	 * warning has both; this is the only place the diagnosis reads a
	 * message, and only for such old recordings.
	 */
	for (size_t i = 0; i < r->nevents; i++) {
		const struct cohort_rec_event *e = &r->events[i];

		if (strcmp(e->kind, "warning") == 0 && e->rank < 0 && strncmp(e->message, "got ", 4) == 0) {
			*ret_t = e->t;
			*ret_name = "a signal";
			return 1;
		}
	}
	return 0;
}

/* An event's figure in bytes: def when it has none, 0 when negative, never past 2^64. */
static uint64_t num_bytes(const struct cohort_rec_event *e, const char *name, uint64_t def)
{
	double v = cohort_rec_event_num(e, name, -1);

	if (v < 0)
		return cohort_rec_event_num(e, name, 0) < 0 ? 0 : def;
	return v >= 1.8e19 ? UINT64_MAX : (uint64_t)v;
}

/* A worker's peak: its own cgroup's exact peak when it had one, else the largest PSS sampled. */
static uint64_t worker_peak(const struct cohort_rec_worker *w)
{
	return w->peak_cgroup ? w->peak_cgroup : w->peak_pss;
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
	/*
	 * The kernel told of an OOM kill in the worker's own cgroup but the
	 * worker's root did not die of it: the victim was a process below it
	 * (a pool or DataLoader worker, an MPI rank under mpirun), which its
	 * parent may have reaped, or which left the parent waiting.
	 */
	if (!find_event(r, "oom_kill", w->rank)) {
		const struct cohort_rec_event *k = NULL;
		double kills = 0;

		for (size_t i = 0; i < r->nevents; i++)
			if (strcmp(r->events[i].kind, "kernel") == 0 && r->events[i].rank == w->rank &&
			    cohort_rec_event_num(&r->events[i], "oom_kill_new", 0) > 0) {
				if (!k)
					k = &r->events[i];
				kills += cohort_rec_event_num(&r->events[i], "oom_kill_new", 0);
			}
		if (k && (f = add(l, r, COHORT_FINDING_OOM_KILL, w->rank, k->t)) != NULL) {
			uint64_t peak = num_bytes(k, "peak_bytes", 0);

			SAY(f->message, "the kernel's OOM killer killed %.0f process%s in rank %d's cgroup, "
			    "from %.1f s: not the worker's own process (pid %d), one it started%s%s",
			    kills, kills == 1 ? "" : "es", w->rank, k->t, (int)w->pid,
			    peak ? "; the cgroup's peak was " : "", peak ? sz(peak, a) : "");
			SAY(f->fix, "give each worker more memory (cohort run --mem-per-worker, or a larger "
			    "--mem for the job), start fewer processes per worker (pool or DataLoader "
			    "workers, MPI ranks), or make each need less");
			evidence(f, "oom_kills", kills, "");
			if (peak)
				evidence(f, "peak_cgroup_bytes", (double)peak, "B");
			evidence(f, "peak_pss_bytes", (double)w->peak_pss, "B");
		}
	}
	if (!w->ended)
		return;
	if ((e = find_event(r, "oom_kill", w->rank)) != NULL) {
		uint64_t limit = num_bytes(e, "limit_bytes", 0);
		uint64_t used = num_bytes(e, "last_est", w->last_est);
		uint64_t shm = last && last->has_cgroup ? last->cg_shmem : 0;

		if (!(f = add(l, r, COHORT_FINDING_OOM_KILL, w->rank, e->t)))
			return;
		/* Killed before a sample saw it grow: the estimate says nothing, the cgroup's peak does. */
		SAY(f->message, "rank %d (pid %d) was killed by the kernel's OOM killer at %.1f s: its "
		    "memory limit is %s%s%s%s%s%s", w->rank, (int)w->pid, e->t,
		    limit ? sz(limit, a) : "not in the recording", used ? " and it last used about " : "",
		    used ? sz(used, b) : "", shm ? "; the job's cgroup also held " : "",
		    shm ? sz(shm, c) : "", shm ? " of /dev/shm pages, which count against the same limit" : "");
		SAY(f->fix, "give each worker more memory (cohort run --mem-per-worker, or a larger "
		    "--mem for the job), run fewer workers, or make the worker need less; cohort run "
		    "--enforce watch stops the worker before the kernel does and says so");
		if (w->peak_cgroup) {
			size_t len = strlen(f->message);

			snprintf(f->message + len, sizeof(f->message) - len, "; its cgroup's peak was %s",
			         sz(w->peak_cgroup, a));
		}
		evidence(f, "limit_bytes", (double)limit, "B");
		evidence(f, "last_est_bytes", (double)used, "B");
		evidence(f, "peak_pss_bytes", (double)w->peak_pss, "B");
		if (w->peak_cgroup)
			evidence(f, "peak_cgroup_bytes", (double)w->peak_cgroup, "B");
		if (shm)
			evidence(f, "cgroup_shmem_bytes", (double)shm, "B");
		return;
	}
	if (w->stopped_by_cohort && (e = find_event(r, "limit", w->rank)) != NULL) {
		uint64_t est = num_bytes(e, "est_bytes", 0);
		uint64_t limit = num_bytes(e, "limit_bytes", 0);

		double total = cohort_rec_event_num(e, "total_bytes", -1) >= 0 ?
		               (double)num_bytes(e, "total_bytes", 0) : -1;

		if (!(f = add(l, r, COHORT_FINDING_BUDGET_KILL, w->rank, e->t)))
			return;
		if (total >= 0)
			SAY(f->message, "the workers used %s together at %.1f s, above the %s budget: "
			    "cohort stopped the largest, rank %d (pid %d, %s)", sz((uint64_t)total, c), e->t,
			    sz(limit, b), w->rank, (int)w->pid, sz(est, a));
		else
			SAY(f->message, "rank %d (pid %d) used %s at %.1f s, above its %s budget: "
			    "stopped by cohort before the kernel's OOM killer picked a victim", w->rank,
			    (int)w->pid, sz(est, a), e->t, sz(limit, b));
		SAY(f->fix, "if the worker really needs %s, give it that (--mem-per-worker %lluM, fewer "
		    "workers, or a larger allocation); if it should not, see what grows (a leak or "
		    "copy-on-write finding says which)", sz(est, a),
		    (unsigned long long)((est + est / 5) / MiB + 1));
		evidence(f, "est_bytes", (double)est, "B");
		evidence(f, "limit_bytes", (double)limit, "B");
		if (total >= 0)
			evidence(f, "total_bytes", total, "B");
		evidence(f, "peak_bytes", (double)worker_peak(w), "B");
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
	/*
	 * SIGTERM, SIGINT and SIGHUP are how jobs are asked to stop; a SIGKILL
	 * after the supervisor itself got a signal is its own escalation when
	 * the grace ran out.
	 */
	double sig_t;
	const char *sig_name;
	bool escalated = w->signal == SIGKILL && supervisor_signal(r, &sig_t, &sig_name) &&
	                 w->end >= sig_t;

	if (w->signal && w->signal != SIGTERM && w->signal != SIGINT && w->signal != SIGHUP &&
	    !escalated) {
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

/*
 * The leak and copy-on-write events are notices of when a trend was first
 * seen; the findings quote the figures at the end (the exit event's, or the
 * last sample's when the recording was cut before the worker ended), with
 * the time first seen as the evidence first_seen_s and as finding->t.
 */
static void trends(struct list *l, const struct cohort_recording *r)
{
	char a[32], b[32], c[32];

	for (size_t i = 0; i < r->nevents; i++) {
		const struct cohort_rec_event *e = &r->events[i];
		struct cohort_finding *f;

		if (e->rank < 0)
			continue;
		const struct cohort_rec_worker *w = &r->workers[e->rank];

		/* One finding per worker and trend: the supervisor notices each once. */
		if (find_event(r, e->kind, e->rank) != e)
			continue;
		if (strcmp(e->kind, "leak") == 0) {
			double rate = cohort_rec_event_num(e, "rate_bytes_per_s", 0);
			double window = cohort_rec_event_num(e, "window_s", 0);

			/* A rate or window below zero is an edited file: no such thing. */
			rate = rate > 0 ? (rate < 1.8e19 ? rate : 1.8e19) : 0;
			window = window > 0 ? window : 0;
			/* A worker never sampled after the notice: the notice's own figure. */
			uint64_t now = w->last_est ? w->last_est :
			               num_bytes(e, "current_bytes", 0);
			uint64_t peak = worker_peak(w);

			if (!(f = add(l, r, COHORT_FINDING_LEAK, e->rank, e->t)))
				return;
			SAY(f->message, "rank %d (pid %d) leaks: its memory floor rose by %s/s over %.0f s "
			    "(first seen at %.1f s); %s %s, peak %s%s", e->rank, (int)w->pid,
			    sz((uint64_t)rate, a), window, e->t,
			    w->ended ? "it ended using" : "it used", sz(now, b), sz(peak, c),
			    w->peak_cgroup ? " (its cgroup's exact peak)" : "");
			SAY(f->fix, "the worker keeps memory it never gives back: objects kept in a list, "
			    "cache, dict or global that only grows; find it with heaptrack or valgrind "
			    "(C), memray or tracemalloc (Python); freeing is not the question, dropping "
			    "the last reference is");
			evidence(f, "rate_bytes_per_s", rate, "B/s");
			evidence(f, "window_s", window, "s");
			evidence(f, "current_bytes", (double)now, "B");
			evidence(f, "peak_bytes", (double)peak, "B");
			/* When it was first seen, at that rate, the worker would reach its budget. */
			evidence(f, "eta_s", cohort_rec_event_num(e, "eta_s", 0) > 0 ?
			         cohort_rec_event_num(e, "eta_s", 0) : 0, "s");
			evidence(f, "first_seen_s", e->t, "s");
		} else if (strcmp(e->kind, "cow_unshare") == 0) {
			uint64_t first = num_bytes(e, "copied_bytes", 0);
			/* A total below the notice's own figure is an edited file: the notice stands. */
			uint64_t total = w->cow_copied > first ? w->cow_copied : first;

			if (!(f = add(l, r, COHORT_FINDING_COW_UNSHARE, e->rank, e->t)))
				return;
			SAY(f->message, "rank %d (pid %d): its processes copied %s of memory they shared "
			    "after fork (copy-on-write; first seen at %.1f s): every write to a shared page, "
			    "reference counts included, makes a private copy, so private memory grows while "
			    "nothing leaks (peak USS %s)", e->rank, (int)w->pid, sz(total, a), e->t,
			    sz(w->peak_uss, b));
			SAY(f->fix, "keep the shared data in a shared segment or in flat arrays (numpy, "
			    "array, mmap) instead of many small objects; load it after forking if each "
			    "worker needs its own; or start workers with spawn instead of fork");
			evidence(f, "copied_bytes", (double)total, "B");
			evidence(f, "peak_uss_bytes", (double)w->peak_uss, "B");
			evidence(f, "first_seen_s", e->t, "s");
		}
	}
}

/*
 * Whether SLURM charged the job the sum of its processes' RSS, by the one
 * rule, cohort_slurm_sums_rss(), on the configuration the header recorded.
 * When the header has no slurm_config (scontrol show config could not be
 * read), that rule assumes jobacct_gather/linux without UsePss, as the
 * supervisor does when it warns: *ret_assumed is then true, and the
 * finding says so.
 */
static bool slurm_sums_rss(const struct cohort_recording *r, bool *ret_assumed)
{
	*ret_assumed = !r->jobacct[0];
	return sums_rss(r);
}

/*
 * Under SLURM with jobacct_gather/linux, the RSS sum over the job's limit
 * while the PSS sum fits. A job killed early (the recording cut, or the
 * supervisor got a signal) is judged on the last sample, which may be the
 * only one: that is what SLURM saw when it killed. Otherwise the sample of
 * the largest RSS sum, or the supervisor's slurm_rss_risk notice (80% of the
 * limit) when the sum never passed the limit.
 */
static void slurm_overcount(struct list *l, const struct cohort_recording *r)
{
	const struct cohort_rec_sample *last = last_sample(r), *at = NULL;
	const struct cohort_rec_event *risk = find_event(r, "slurm_rss_risk", -2);
	struct cohort_finding *f;
	char a[32], b[32], c[32], how[192];
	double sig_t = -1, first = -1;
	const char *sig_name = NULL;
	bool assumed, killed, got_signal;
	uint64_t rss, pss;

	if (!r->slurm || !r->mem_limit || !slurm_sums_rss(r, &assumed))
		return;
	got_signal = supervisor_signal(r, &sig_t, &sig_name);
	killed = !r->ended || got_signal;
	if (killed && last && last->rss_sum > r->mem_limit && last->pss_sum < r->mem_limit) {
		at = last;
	} else {
		for (size_t i = 0; i < r->nsamples; i++)
			if (!at || r->samples[i].rss_sum > at->rss_sum)
				at = &r->samples[i];
		if (at && !(at->rss_sum > r->mem_limit && at->pss_sum < r->mem_limit) && !risk)
			return;
	}
	if (!at && !risk)
		return;
	rss = at ? at->rss_sum : num_bytes(risk, "rss_sum_bytes", 0);
	pss = at ? at->pss_sum : num_bytes(risk, "pss_sum_bytes", 0);
	/* When the sum first passed the limit, else when the supervisor warned of it. */
	for (size_t i = 0; i < r->nsamples && first < 0; i++)
		if (r->samples[i].rss_sum > r->mem_limit && r->samples[i].pss_sum < r->mem_limit)
			first = r->samples[i].t;
	if (risk && (first < 0 || risk->t < first))
		first = risk->t;
	if (first < 0)
		first = at ? at->t : 0;

	if (rss <= r->mem_limit)
		SAY(how, "would kill the job as the sum grows");
	else if (!r->ended)
		SAY(how, "killed this one (the recording was cut when SLURM ended the step)");
	else if (got_signal)
		SAY(how, "stopped this one (cohort got %s at %.1f s)", sig_name, sig_t);
	else
		SAY(how, "kills such a job");
	if (!(f = add(l, r, COHORT_FINDING_SLURM_RSS_OVERCOUNT, -1, first)))
		return;
	SAY(f->message, "the workers' RSS sum %s %s against the job's %s limit (%s) while their PSS "
	    "sum, what they really use, was %s: SLURM's %s adds up the RSS of every process, "
	    "charging pages they share once per process, and with OverMemoryKill %s",
	    at == last && killed ? "was, at the last sample," : "reached", sz(rss, a),
	    sz(r->mem_limit, b), r->mem_limit_source[0] ? r->mem_limit_source : "unknown source",
	    sz(pss, c), assumed ? "jobacct_gather/linux (assumed: the recording does not have "
	    "SLURM's configuration)" : "jobacct_gather/linux", how);
	/* UsePss is not set (else no finding): say what would change it. */
	SAY(f->fix, "ask the cluster's administrators for JobAcctGatherParams=UsePss (or "
	    "jobacct_gather/cgroup with ConstrainRAMSpace=yes), which count shared pages once; "
	    "meanwhile request --mem=%lluM, the RSS sum and a tenth, or share less per process",
	    (unsigned long long)((rss + rss / 10) / MiB + 1));
	evidence(f, "rss_sum_bytes", (double)rss, "B");
	evidence(f, "pss_sum_bytes", (double)pss, "B");
	evidence(f, "limit_bytes", (double)r->mem_limit, "B");
	evidence(f, "first_seen_s", first, "s");
	if (at)
		evidence(f, "sample_t_s", at->t, "s");
}

static void job_level(struct list *l, const struct cohort_recording *r)
{
	struct cohort_finding *f;
	char a[32], b[32], c[32];
	double psi_peak = -1, t_psi = -1, sig_t = -1;
	const char *sig_name = NULL;
	uint64_t swap_first = 0, swap_peak = 0;

	for (size_t i = 0; i < r->nsamples; i++) {
		const struct cohort_rec_sample *s = &r->samples[i];

		if (s->psi_some10 > psi_peak) {
			psi_peak = s->psi_some10;
			t_psi = s->t;
		}
		if (i == 0)
			swap_first = s->swap_used;
		if (s->swap_used > swap_peak)
			swap_peak = s->swap_used;
	}

	slurm_overcount(l, r);

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
		char got[160] = "";

		if (supervisor_signal(r, &sig_t, &sig_name)) {
			if (r->signal_sender_pid > 0)
				SAY(got, "; it had got %s from pid %ld at %.1f s", sig_name,
				    r->signal_sender_pid, sig_t);
			else
				SAY(got, "; it had got %s at %.1f s", sig_name, sig_t);
		}
		SAY(f->message, "the recording %s ends at %.1f s without cohort run's last line: the "
		    "supervisor itself was killed%s, so workers still running then were killed with it%s",
		    r->path, r->duration, r->slurm ? " (SLURM ends a step this way at its time or "
		    "memory limit, or on scancel)" : " (SIGKILL, or its machine went down)", got);
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
