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
 *
 * Who is walked: two queues share the bucket.
 *   - Moved: processes whose RSS, or the usage of their cgroup (given by
 *     the caller), moved by 5% or more of their RSS since their last walk.
 *     Their PSS is wrong by the move; they are walked first, in the order
 *     their moves were seen.
 *   - Oldest: every process, by the age of its PSS (a never-walked one
 *     counts from when it was added). Their PSS is right but old.
 * Moves alone could take the whole budget and leave idle PSS to age
 * without bound, so part of each tick's earning is reserved for the
 * oldest: what walking every process once per max_age costs at the walks'
 * measured costs (and a tenth more), when that is at most 3/4 of the
 * budget; when it is more, the bound cannot hold, and the reserve is half.
 * The reserve binds only when the rotation falls behind: while it would
 * still walk everyone within max_age at the reserve's rate alone, moves
 * may borrow it (a burst of moves is walked at once). What one queue
 * leaves unused goes to the other: without moves the whole budget rotates
 * through the oldest, less one walk's worth of credit held back while the
 * rotation is behind, so that the next move is walked on the tick it is
 * seen.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* RSS (or the cgroup's usage) moving by this share of RSS since the last walk makes a PSS stale. */
#define MOVED_THRESHOLD 0.05
/* Credit saved while idle never exceeds this many seconds of budget. */
#define CREDIT_CAP_S 2
/* The default bound on an idle PSS's age, seconds. */
#define MAX_AGE_S 120
/*
 * The oldest queue is reserved what a rotation within max_age needs while
 * that is at most RESERVE_MAX of the walk budget, so that moves keep a
 * quarter. When it needs more (256 walks of 300 MB at 6 ms are 1.5 s of
 * CPU, 1.3% of a core over 120 s), the bound cannot hold whatever the
 * share, and the reserve is RESERVE_SHORT: the oldest still get half the
 * budget under any storm of moves, and a burst of moves is walked in a
 * few ticks rather than one per three or four (a PSS wrong by a move is
 * worse than one older than max_age).
 */
#define RESERVE_MAX 0.75
#define RESERVE_SHORT 0.5
/* Walks are whole and ticks discrete: reserving a tenth more than the exact need keeps within max_age. */
#define RESERVE_MARGIN 1.1
/* Moves borrow the reserve only while the rotation would still be this far within max_age. */
#define AHEAD_SLACK_S 2

struct entry {
	pid_t pid;
	int gone;
	int fd;                   /* its statm, kept open; -1 when not */
	int have_pss;
	int have_usage;
	int walked;               /* scratch: walked in this tick */
	uint64_t since_ns;        /* scratch: when its PSS dates from, for sorting */
	struct cohort_statm statm;
	uint64_t rss_at_pss;
	uint64_t usage, usage_at_pss;
	struct cohort_procmem mem;
	uint64_t added_ns;        /* when added (0: before the first tick, which then counts) */
	uint64_t mem_time_ns;
	uint64_t moved_ns;        /* the tick its move was first seen; 0 while not moved */
	uint64_t cost_ns;
	uint64_t reads;
	double moved_by;          /* the move, as a share of RSS at the last walk */
};

struct cohort_sampler {
	double budget;
	double max_age_ns;
	const struct cohort_probe *probe;
	struct cohort__sampler_ops ops;
	struct entry *e;
	size_t n, cap;
	int64_t credit_ns;        /* the bucket */
	int64_t reserve_ns;       /* of which reserved for the oldest (not yet spent) */
	size_t nfd, fd_max;       /* statm files kept open, and at most */
	uint64_t first_ns, last_ns;
	struct cohort_sampler_stats stats;
	struct entry **moved, **oldest;   /* scratch, cap each */
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t real_now(void *ctx)
{
	(void)ctx;
	return clock_ns(CLOCK_MONOTONIC);
}

static uint64_t real_cpu(void *ctx)
{
	(void)ctx;
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/*
 * The real readers' ctx is the sampler, for its probe. statm is read
 * through a file kept open (pread at 0: the kernel formats it again): a
 * path lookup, open and close cost four to eight times the read itself,
 * which for 256 processes a tick was a quarter of a 1% budget. At most
 * fd_max files are kept (a quarter of RLIMIT_NOFILE); the others are
 * opened each time. A kept file follows its process, not the pid: once
 * the process is reaped, the read fails with ESRCH even if the pid is
 * taken again.
 */
static int real_statm(void *ctx, pid_t pid, int *fd, struct cohort_statm *ret)
{
	struct cohort_sampler *s = ctx;
	char path[COHORT_PATH_MAX], buf[256];
	ssize_t n;

	if (*fd < 0 && s->nfd < s->fd_max &&
	    cohort__pathf(path, sizeof(path), "%s/%d/statm", cohort__proc_root(s->probe), (int)pid) >= 0) {
		*fd = open(path, O_RDONLY | O_CLOEXEC);
		if (*fd < 0 && (errno == ENOENT || errno == ESRCH))
			return -ESRCH;
		if (*fd >= 0)
			s->nfd++;
	}
	if (*fd < 0)
		return cohort_proc_statm(s->probe, pid, ret);
	do
		n = pread(*fd, buf, sizeof(buf) - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
	if (n == 0)
		return -ESRCH;
	buf[n] = '\0';
	return cohort__statm_parse(buf, ret);
}

static void close_fd(struct cohort_sampler *s, struct entry *e)
{
	if (e->fd < 0)
		return;
	close(e->fd);
	e->fd = -1;
	s->nfd--;
}

static int real_smaps(void *ctx, pid_t pid, struct cohort_procmem *ret)
{
	return cohort_proc_smaps(((const struct cohort_sampler *)ctx)->probe, pid, ret);
}

int cohort_sampler_create(const struct cohort_sampler_opts *opts, struct cohort_sampler **ret)
{
	struct cohort_sampler *s;
	double budget = opts && opts->cpu_budget != 0 ? opts->cpu_budget : 0.01;
	double max_age = opts && opts->max_age != 0 ? opts->max_age : MAX_AGE_S;

	if (!(budget > 0 && budget <= 1) || !(max_age > 0 && max_age <= 86400))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->budget = budget;
	s->max_age_ns = max_age * 1e9;
	{
		struct rlimit rl;

		s->fd_max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur / 4 : 256;
	}
	s->probe = opts ? opts->probe : NULL;
	s->ops = (struct cohort__sampler_ops){ real_now, real_cpu, real_statm, real_smaps, s };
	*ret = s;
	return 0;
}

void cohort__sampler_set_ops(struct cohort_sampler *s, const struct cohort__sampler_ops *ops)
{
	s->ops = *ops;
}

void cohort_sampler_free(struct cohort_sampler *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		close_fd(s, &s->e[i]);
	free(s->e);
	free(s->moved);
	free(s->oldest);
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
		struct entry **m, **o;

		if (!e)
			return -ENOMEM;
		s->e = e;
		m = realloc(s->moved, ncap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		s->moved = m;
		o = realloc(s->oldest, ncap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		s->oldest = o;
		s->cap = ncap;
	}
	memset(&s->e[s->n], 0, sizeof(s->e[0]));
	s->e[s->n].pid = pid;
	s->e[s->n].fd = -1;
	/* Before the first tick, the first tick's time counts (so that a start-up is not an age). */
	s->e[s->n].added_ns = s->last_ns ? s->ops.now_ns(s->ops.ctx) : 0;
	s->n++;
	return 0;
}

int cohort_sampler_remove(struct cohort_sampler *s, pid_t pid)
{
	struct entry *e = find(s, pid);

	if (!e)
		return -ENOENT;
	close_fd(s, e);
	memmove(e, e + 1, (size_t)(s->e + s->n - (e + 1)) * sizeof(*e));
	s->n--;
	return 0;
}

int cohort_sampler_set_usage(struct cohort_sampler *s, pid_t pid, uint64_t bytes)
{
	struct entry *e = find(s, pid);

	if (!e)
		return -ENOENT;
	if (bytes == UINT64_MAX) {
		e->have_usage = 0;
		return 0;
	}
	/* A first figure after the walk is the base: the walk did not know it. */
	if (!e->have_usage)
		e->usage_at_pss = bytes;
	e->usage = bytes;
	e->have_usage = 1;
	return 0;
}

size_t cohort_sampler_count(const struct cohort_sampler *s)
{
	return s->n;
}

/* When e's PSS dates from: its last walk, or when it was added. */
static uint64_t since(const struct cohort_sampler *s, const struct entry *e)
{
	if (e->have_pss)
		return e->mem_time_ns;
	return e->added_ns ? e->added_ns : s->first_ns;
}

/* Moved queue: the move seen first goes first, then the larger move. */
static int cmp_moved(const void *pa, const void *pb)
{
	const struct entry *a = *(const struct entry *const *)pa, *b = *(const struct entry *const *)pb;

	if (a->moved_ns != b->moved_ns)
		return a->moved_ns < b->moved_ns ? -1 : 1;
	if (a->moved_by != b->moved_by)
		return a->moved_by < b->moved_by ? 1 : -1;
	return (a->pid > b->pid) - (a->pid < b->pid);
}

/* Oldest queue: the oldest PSS first (ties: never walked first, then by pid). */
static int cmp_oldest(const void *pa, const void *pb)
{
	const struct entry *a = *(const struct entry *const *)pa, *b = *(const struct entry *const *)pb;

	if (a->since_ns != b->since_ns)
		return a->since_ns < b->since_ns ? -1 : 1;
	if (a->have_pss != b->have_pss)
		return a->have_pss - b->have_pss;
	return (a->pid > b->pid) - (a->pid < b->pid);
}

/* One page walk of e, charged to the budget. Returns the cost (>= 0), or the reader's error. */
static int64_t read_smaps(struct cohort_sampler *s, struct entry *e)
{
	struct cohort_procmem m;
	uint64_t t0 = s->ops.cpu_ns(s->ops.ctx), cost;
	int r = s->ops.smaps(s->ops.ctx, e->pid, &m);

	cost = s->ops.cpu_ns(s->ops.ctx) - t0;
	s->credit_ns -= (int64_t)cost;
	s->stats.cpu_ns += cost;
	s->stats.smaps_cpu_ns += cost;
	e->walked = 1;
	if (r == -ESRCH) {
		e->gone = 1;
		close_fd(s, e);
	}
	if (r < 0)
		return r;
	if (e->moved_ns)
		s->stats.moved_reads++;
	e->mem = m;
	e->have_pss = 1;
	e->mem_time_ns = s->ops.now_ns(s->ops.ctx);
	e->rss_at_pss = e->statm.rss;
	e->usage_at_pss = e->usage;
	e->cost_ns = cost;
	e->reads++;
	e->moved_ns = 0;
	e->moved_by = 0;
	s->stats.smaps_reads++;
	return (int64_t)cost;
}

int cohort_sampler_refresh(struct cohort_sampler *s, pid_t pid)
{
	struct entry *e = find(s, pid);
	int64_t r;

	if (!e)
		return -ENOENT;
	if (e->gone)
		return -ESRCH;
	r = read_smaps(s, e);
	return r < 0 ? (int)r : 0;
}

/* How far e's memory moved since its last walk, as a share of its RSS then. */
static double moved_by(const struct entry *e)
{
	double base = e->rss_at_pss ? (double)e->rss_at_pss : 1;
	uint64_t d = e->statm.rss > e->rss_at_pss ? e->statm.rss - e->rss_at_pss : e->rss_at_pss - e->statm.rss;

	if (e->have_usage) {
		uint64_t du = e->usage > e->usage_at_pss ? e->usage - e->usage_at_pss : e->usage_at_pss - e->usage;

		if (du > d)
			d = du;
	}
	return (double)d / base;
}

/* The mean cost of the last walks of the nlive processes that have one; 0 when none has. */
static int64_t mean_cost(const struct cohort_sampler *s, size_t nlive)
{
	double sum = 0;
	size_t n = 0;

	for (size_t i = 0; i < nlive; i++)
		if (s->oldest[i]->have_pss) {
			sum += (double)s->oldest[i]->cost_ns;
			n++;
		}
	return n ? (int64_t)(sum / (double)n) : 0;
}

/*
 * The share of the walk budget to reserve for the oldest: walking each of
 * the nlive processes once per max_age, at the cost of its last walk (the
 * mean of the known costs for one never walked), against what the budget
 * earns for walks (the budget less the statm reads); RESERVE_SHORT when
 * that is more than RESERVE_MAX.
 */
static double reserve_share(const struct cohort_sampler *s, size_t nlive, double walk_rate)
{
	double known = 0, need;
	size_t nknown = 0;

	for (size_t i = 0; i < nlive; i++)
		if (s->oldest[i]->have_pss) {
			known += (double)s->oldest[i]->cost_ns;
			nknown++;
		}
	if (!nknown)
		return 0;    /* nothing walked yet, so nothing moved: the oldest get everything anyway */
	need = RESERVE_MARGIN * known / (double)nknown * (double)nlive / s->max_age_ns;
	if (walk_rate <= 0 || need / walk_rate > RESERVE_MAX)
		return RESERVE_SHORT;
	return need / walk_rate;
}

/*
 * Whether the rotation is ahead of time: walking the oldest queue in order
 * at the reserve's rate alone (rate: CPU ns per wall ns), every process
 * would be walked before it is max_age old, with AHEAD_SLACK_S to spare.
 * Then moved processes may borrow the reserve (a burst of moves is walked
 * at once); when it is not, the reserve is the oldest's alone.
 */
static int rotation_ahead(const struct cohort_sampler *s, size_t nlive, uint64_t now, double rate)
{
	double cum = 0, mean = 0;
	size_t nknown = 0;

	if (rate <= 0)
		return 1;   /* nothing reserved */
	for (size_t i = 0; i < nlive; i++)
		if (s->oldest[i]->have_pss) {
			mean += (double)s->oldest[i]->cost_ns;
			nknown++;
		}
	mean = nknown ? mean / (double)nknown : 0;
	for (size_t i = 0; i < nlive; i++) {
		const struct entry *e = s->oldest[i];
		double age = now > e->since_ns ? (double)(now - e->since_ns) : 0;

		cum += e->have_pss ? (double)e->cost_ns : mean;
		if (age + cum / rate + AHEAD_SLACK_S * 1e9 > s->max_age_ns)
			return 0;
	}
	return 1;
}

/*
 * Read every live process's statm (charged to the credit), mark who moved,
 * and fill s->oldest (every live process) and s->moved. Returns the CPU
 * time spent; *ret_nlive and *ret_nmoved are the queues' lengths.
 */
static uint64_t read_statms(struct cohort_sampler *s, uint64_t now, size_t *ret_nlive, size_t *ret_nmoved)
{
	uint64_t c0 = s->ops.cpu_ns(s->ops.ctx), c1;
	size_t nlive = 0, nmoved = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct entry *e = &s->e[i];
		struct cohort_statm st;
		int r;

		e->walked = 0;
		if (e->gone)
			continue;
		r = s->ops.statm(s->ops.ctx, e->pid, &e->fd, &st);
		if (r == -ESRCH) {
			e->gone = 1;
			close_fd(s, e);
			continue;
		}
		if (r == 0)
			e->statm = st;   /* on odd contents keep the last figures */
		if (e->have_pss) {
			e->moved_by = moved_by(e);
			if (e->moved_by < MOVED_THRESHOLD)
				e->moved_ns = 0;   /* moved back: the PSS holds again */
			else if (!e->moved_ns)
				e->moved_ns = now;
		}
		if (e->moved_ns)
			s->moved[nmoved++] = e;
		s->oldest[nlive++] = e;
	}
	c1 = s->ops.cpu_ns(s->ops.ctx);
	s->credit_ns -= (int64_t)(c1 - c0);
	s->stats.cpu_ns += c1 - c0;
	*ret_nlive = nlive;
	*ret_nmoved = nmoved;
	return c1 - c0;
}

/*
 * Walk the oldest first: from the reserve, and from the rest of the
 * credit only while no moved process waits. With one waiting, a walk that
 * overdraws the reserve leaves it in debt (of less than one walk), repaid
 * before the next: else every overdraw would come out of the moves' share,
 * and when a walk costs more than a tick earns for the reserve, moves
 * would never be walked. With none waiting, the oldest take what is left
 * (less hold) and the reserve keeps no debt. Returns the walks done.
 */
static int walk_oldest(struct cohort_sampler *s, size_t nlive, size_t nmoved, int64_t hold)
{
	size_t waiting = 0;
	int reads = 0;

	for (size_t i = 0; i < nmoved; i++)
		waiting += !s->moved[i]->walked;
	if (waiting)
		hold = 0;
	for (size_t i = 0; i < nlive && s->credit_ns > hold; i++) {
		struct entry *e = s->oldest[i];
		int was_moved = e->moved_ns != 0;
		int64_t cost;

		if (e->walked || e->gone)
			continue;
		if (waiting && s->reserve_ns <= 0)
			break;
		cost = read_smaps(s, e);
		if (cost < 0)
			continue;
		reads++;
		if (waiting)
			s->reserve_ns -= cost;
		else
			s->reserve_ns = s->reserve_ns > cost ? s->reserve_ns - cost : 0;
		waiting -= was_moved && waiting;
	}
	return reads;
}

/* The figures of the tick's end: the worst age, and the moves still waiting. */
static void tick_stats(struct cohort_sampler *s, uint64_t now)
{
	s->stats.ticks++;
	s->stats.wall_ns = now - s->first_ns;
	s->stats.worst_age_ns = 0;
	s->stats.moved_waiting = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct entry *e = &s->e[i];
		uint64_t t;

		if (e->gone)
			continue;
		t = since(s, e);
		if (now > t && now - t > s->stats.worst_age_ns)
			s->stats.worst_age_ns = now - t;
		s->stats.moved_waiting += e->moved_ns != 0;
	}
}

int cohort_sampler_tick(struct cohort_sampler *s)
{
	uint64_t now = s->ops.now_ns(s->ops.ctx), dt;
	int64_t cap = (int64_t)(s->budget * 1e9 * CREDIT_CAP_S), earn, walk_earn, hold;
	size_t nlive, nmoved;
	double share, walk_rate;
	int reads = 0, ahead;

	/* The first tick may read a second's worth, so a new view fills fast. */
	dt = s->last_ns == 0 ? 1000000000ULL : now > s->last_ns ? now - s->last_ns : 0;
	if (s->last_ns == 0)
		s->first_ns = now;
	s->last_ns = now;
	earn = (int64_t)(s->budget * (double)dt);
	s->credit_ns += earn;
	if (s->credit_ns > cap)
		s->credit_ns = cap;

	/* The reserve earns its share of what this tick earned for walks (less the statm reads). */
	walk_earn = earn - (int64_t)read_statms(s, now, &nlive, &nmoved);
	walk_rate = dt ? (double)walk_earn / (double)dt : 0;
	share = reserve_share(s, nlive, walk_rate);
	s->stats.reserve = share;
	if (walk_earn > 0)
		s->reserve_ns += (int64_t)(share * (double)walk_earn);
	if (s->reserve_ns > (int64_t)(share * (double)cap))
		s->reserve_ns = (int64_t)(share * (double)cap);

	/* The oldest queue, sorted first: it tells whether the rotation is on time. */
	for (size_t i = 0; i < nlive; i++)
		s->oldest[i]->since_ns = since(s, s->oldest[i]);
	if (nlive > 1)
		qsort(s->oldest, nlive, sizeof(*s->oldest), cmp_oldest);
	ahead = rotation_ahead(s, nlive, now, share * walk_rate);
	/* Moved first: from what is not reserved, or from all while the rotation has time to spare. */
	if (nmoved > 1)
		qsort(s->moved, nmoved, sizeof(*s->moved), cmp_moved);
	for (size_t i = 0; i < nmoved; i++) {
		if (s->credit_ns - (!ahead && s->reserve_ns > 0 ? s->reserve_ns : 0) <= 0)
			break;
		reads += read_smaps(s, s->moved[i]) >= 0;
	}
	/* While the rotation is behind, one walk's worth is held for the next move. */
	hold = ahead ? 0 : mean_cost(s, nlive);
	if (hold > cap / 2)
		hold = cap / 2;
	reads += walk_oldest(s, nlive, nmoved, hold);
	tick_stats(s, now);
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
	ret->moved = e->moved_ns != 0;
	return 0;
}

void cohort_sampler_stats(const struct cohort_sampler *s, struct cohort_sampler_stats *ret)
{
	*ret = s->stats;
}
