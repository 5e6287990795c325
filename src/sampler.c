/*
 * sampler.c - measure a set of processes every tick within a CPU budget.
 *
 * statm costs microseconds and is read for every process every tick.
 * smaps_rollup walks page tables (milliseconds for hundreds of MB), so the
 * PSS of many large processes cannot all be read every second: the sampler
 * spends at most a fraction of one core on it, as a token bucket. Every
 * tick earns budget x wall time; every read spends its own measured CPU
 * time (thread CPU clock, which counts the kernel's page table walk). A
 * read may overdraw; later ticks repay, so the long-run share is the budget.
 * Who is read first: processes whose RSS moved most (relative to their RSS
 * at the last PSS read, by more than 5%), then those never read, then the
 * stalest.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* RSS moving by more than this share since the last PSS read makes a PSS stale. */
#define MOVED_THRESHOLD 0.05
/* Credit saved while idle never exceeds this many seconds of budget. */
#define CREDIT_CAP_S 2

struct entry {
	pid_t pid;
	int gone;
	int have_pss;
	struct cohort_statm statm;
	uint64_t rss_at_pss;
	struct cohort_procmem mem;
	uint64_t mem_time_ns;
	uint64_t cost_ns;
	uint64_t reads;
	double prio_moved;        /* scratch for sorting */
};

struct cohort_sampler {
	double budget;
	const struct cohort_probe *probe;
	struct entry *e;
	size_t n, cap;
	int64_t credit_ns;
	uint64_t first_ns, last_ns;
	struct cohort_sampler_stats stats;
	struct entry **order;     /* scratch */
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int cohort_sampler_create(const struct cohort_sampler_opts *opts, struct cohort_sampler **ret)
{
	struct cohort_sampler *s;
	double budget = opts && opts->cpu_budget != 0 ? opts->cpu_budget : 0.01;

	if (!(budget > 0 && budget <= 1))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->budget = budget;
	s->probe = opts ? opts->probe : NULL;
	*ret = s;
	return 0;
}

void cohort_sampler_free(struct cohort_sampler *s)
{
	if (!s)
		return;
	free(s->e);
	free(s->order);
	free(s);
}

static struct entry *find(const struct cohort_sampler *s, pid_t pid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].pid == pid)
			return &s->e[i];
	return NULL;
}

int cohort_sampler_add(struct cohort_sampler *s, pid_t pid)
{
	if (pid <= 0)
		return -EINVAL;
	if (find(s, pid))
		return -EEXIST;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct entry *e = realloc(s->e, ncap * sizeof(*e));
		struct entry **o;

		if (!e)
			return -ENOMEM;
		s->e = e;
		o = realloc(s->order, ncap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		s->order = o;
		s->cap = ncap;
	}
	memset(&s->e[s->n], 0, sizeof(s->e[0]));
	s->e[s->n].pid = pid;
	s->n++;
	return 0;
}

int cohort_sampler_remove(struct cohort_sampler *s, pid_t pid)
{
	struct entry *e = find(s, pid);

	if (!e)
		return -ENOENT;
	memmove(e, e + 1, (size_t)(s->e + s->n - (e + 1)) * sizeof(*e));
	s->n--;
	return 0;
}

size_t cohort_sampler_count(const struct cohort_sampler *s)
{
	return s->n;
}

/*
 * Highest priority first. A process whose RSS moved goes before one never
 * read: the never-read one is shown by its RSS meanwhile, while the moved
 * one's PSS is wrong by the move, and with hundreds of large processes the
 * first rotation through the never-read ones takes minutes (256 of 300 MB
 * at 1% of a core: 105 to 225 s), during which a moved PSS would wait.
 */
static int cmp_prio(const void *pa, const void *pb)
{
	const struct entry *a = *(const struct entry *const *)pa, *b = *(const struct entry *const *)pb;
	int am = a->prio_moved > MOVED_THRESHOLD, bm = b->prio_moved > MOVED_THRESHOLD;

	if (am != bm)
		return bm - am;                         /* moved first, most first */
	if (am && a->prio_moved != b->prio_moved)
		return a->prio_moved < b->prio_moved ? 1 : -1;
	if (a->have_pss != b->have_pss)
		return a->have_pss - b->have_pss;       /* then never read */
	if (a->mem_time_ns != b->mem_time_ns)           /* then stalest */
		return a->mem_time_ns < b->mem_time_ns ? -1 : 1;
	return (a->pid > b->pid) - (a->pid < b->pid);
}

/* One page walk of e, charged to the budget. Returns 0, or the reader's error. */
static int read_smaps(struct cohort_sampler *s, struct entry *e)
{
	struct cohort_procmem m;
	uint64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), cost;
	int r = cohort_proc_smaps(s->probe, e->pid, &m);

	cost = clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
	s->credit_ns -= (int64_t)cost;
	s->stats.cpu_ns += cost;
	s->stats.smaps_cpu_ns += cost;
	if (r == -ESRCH)
		e->gone = 1;
	if (r < 0)
		return r;
	e->mem = m;
	e->have_pss = 1;
	e->mem_time_ns = clock_ns(CLOCK_MONOTONIC);
	e->rss_at_pss = e->statm.rss;
	e->cost_ns = cost;
	e->reads++;
	e->prio_moved = 0;
	s->stats.smaps_reads++;
	return 0;
}

int cohort_sampler_refresh(struct cohort_sampler *s, pid_t pid)
{
	struct entry *e = find(s, pid);

	if (!e)
		return -ENOENT;
	if (e->gone)
		return -ESRCH;
	return read_smaps(s, e);
}

int cohort_sampler_tick(struct cohort_sampler *s)
{
	uint64_t now = clock_ns(CLOCK_MONOTONIC), c0, c1;
	size_t nlive = 0;
	int reads = 0;

	if (s->last_ns == 0) {
		s->first_ns = now;
		/* The first tick may read a second's worth, so a new view fills fast. */
		s->credit_ns = (int64_t)(s->budget * 1e9);
	} else {
		s->credit_ns += (int64_t)(s->budget * (double)(now - s->last_ns));
		if (s->credit_ns > (int64_t)(s->budget * 1e9 * CREDIT_CAP_S))
			s->credit_ns = (int64_t)(s->budget * 1e9 * CREDIT_CAP_S);
	}
	s->last_ns = now;

	c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	for (size_t i = 0; i < s->n; i++) {
		struct entry *e = &s->e[i];
		struct cohort_statm st;
		int r;

		if (e->gone)
			continue;
		r = cohort_proc_statm(s->probe, e->pid, &st);
		if (r == -ESRCH) {
			e->gone = 1;
			continue;
		}
		if (r < 0)
			continue;      /* odd contents: keep the last figures */
		e->statm = st;
		if (e->have_pss) {
			uint64_t base = e->rss_at_pss ? e->rss_at_pss : 1;
			uint64_t d = st.rss > e->rss_at_pss ? st.rss - e->rss_at_pss : e->rss_at_pss - st.rss;

			e->prio_moved = (double)d / (double)base;
		}
		s->order[nlive++] = e;
	}
	c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	s->credit_ns -= (int64_t)(c1 - c0);
	s->stats.cpu_ns += c1 - c0;

	if (nlive > 1)
		qsort(s->order, nlive, sizeof(*s->order), cmp_prio);
	for (size_t i = 0; i < nlive && s->credit_ns > 0; i++)
		reads += read_smaps(s, s->order[i]) == 0;

	s->stats.ticks++;
	s->stats.wall_ns = now - s->first_ns;
	s->stats.worst_age_ns = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct entry *e = &s->e[i];
		uint64_t age;

		if (e->gone)
			continue;
		/* Never read: as old as the sampler's watch of it, counted from the first tick. */
		age = e->have_pss ? (now > e->mem_time_ns ? now - e->mem_time_ns : 0) : now - s->first_ns;
		if (age > s->stats.worst_age_ns)
			s->stats.worst_age_ns = age;
	}
	return reads;
}

int cohort_sampler_get(const struct cohort_sampler *s, size_t i, struct cohort_sample *ret)
{
	const struct entry *e;

	if (i >= s->n)
		return -ERANGE;
	e = &s->e[i];
	memset(ret, 0, sizeof(*ret));
	ret->pid = e->pid;
	ret->gone = e->gone;
	ret->statm = e->statm;
	ret->have_pss = e->have_pss;
	ret->mem = e->mem;
	ret->mem_age_ns = e->have_pss && s->last_ns > e->mem_time_ns ? s->last_ns - e->mem_time_ns : 0;
	ret->mem_cost_ns = e->cost_ns;
	ret->mem_reads = e->reads;
	return 0;
}

void cohort_sampler_stats(const struct cohort_sampler *s, struct cohort_sampler_stats *ret)
{
	*ret = s->stats;
}
