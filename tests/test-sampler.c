/* test-sampler.c - the budgeted sampler: who gets read, and what it spends. */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#define MB (1024ULL * 1024)

static volatile sig_atomic_t grow;

static void on_usr1(int sig)
{
	(void)sig;
	grow = 1;
}

struct holder {
	size_t size;
	int ready_fd;
};

/* Touch size bytes; on SIGUSR1 touch as much again. */
static void hold(void *arg)
{
	const struct holder *h = arg;
	char *p;

	signal(SIGUSR1, on_usr1);
	p = mmap(NULL, h->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(1);
	memset(p, 1, h->size);
	if (write(h->ready_fd, "x", 1) != 1)
		_exit(1);
	for (;;) {
		pause();
		if (grow) {
			char *q = mmap(NULL, h->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (q != MAP_FAILED)
				memset(q, 2, h->size);
			grow = 0;
		}
	}
}

static pid_t spawn_holder(size_t size)
{
	int fds[2];
	struct holder h = { size, -1 };
	struct pollfd pfd;
	pid_t pid;
	char c;

	CHECK(pipe(fds) == 0);
	h.ready_fd = fds[1];
	pid = helper_spawn(hold, &h);
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	CHECK_MSG(poll(&pfd, 1, 10000) == 1 && read(fds[0], &c, 1) == 1, "holder did not start");
	close(fds[0]);
	return pid;
}

static struct cohort_sampler *make(double budget)
{
	struct cohort_sampler_opts o = { .cpu_budget = budget };
	struct cohort_sampler *s = NULL;

	CHECK_OK(cohort_sampler_create(&o, &s));
	return s;
}

TEST(sampler_api)
{
	struct cohort_sampler_opts bad = { .cpu_budget = 1.5 };
	struct cohort_sampler *s = NULL;
	struct cohort_sample smp;

	CHECK_EQ(cohort_sampler_create(&bad, &s), -EINVAL);
	bad.cpu_budget = -0.1;
	CHECK_EQ(cohort_sampler_create(&bad, &s), -EINVAL);
	s = make(0);
	CHECK_OK(cohort_sampler_add(s, getpid()));
	CHECK_EQ(cohort_sampler_add(s, getpid()), -EEXIST);
	CHECK_EQ(cohort_sampler_add(s, 0), -EINVAL);
	CHECK_EQ(cohort_sampler_count(s), 1);
	CHECK_EQ(cohort_sampler_get(s, 1, &smp), -ERANGE);
	CHECK_EQ(cohort_sampler_remove(s, 1), -ENOENT);
	CHECK_OK(cohort_sampler_remove(s, getpid()));
	CHECK_EQ(cohort_sampler_count(s), 0);
	cohort_sampler_free(s);
	cohort_sampler_free(NULL);
}

TEST(sampler_reads_everyone_with_room_and_marks_the_gone)
{
	struct cohort_sampler *s = make(1.0);
	pid_t a = spawn_holder(8 * MB), b = spawn_holder(8 * MB);
	struct cohort_sample smp;

	CHECK_OK(cohort_sampler_add(s, a));
	CHECK_OK(cohort_sampler_add(s, b));
	CHECK_EQ(cohort_sampler_tick(s), 2);
	for (size_t i = 0; i < 2; i++) {
		CHECK_OK(cohort_sampler_get(s, i, &smp));
		CHECK(smp.have_pss && !smp.gone);
		CHECK(smp.statm.rss >= 8 * MB);
		CHECK(smp.mem.uss >= 8 * MB);
		CHECK(smp.mem_cost_ns > 0);
	}
	kill(a, SIGKILL);
	CHECK(helper_wait(a, 5000) >= 0);
	CHECK_EQ(cohort_sampler_tick(s), 1);
	CHECK_OK(cohort_sampler_get(s, 0, &smp));
	CHECK_EQ(smp.pid, a);
	CHECK_EQ(smp.gone, 1);
	CHECK_OK(cohort_sampler_get(s, 1, &smp));
	CHECK_EQ(smp.gone, 0);
	cohort_sampler_free(s);
}

/*
 * With a budget that pays for about one read per tick, the sampler
 * rotates: the stalest first, but a process whose RSS moved jumps ahead,
 * even of one never read (added at the moment of the growth: its RSS is
 * known meanwhile, while the moved one's PSS is wrong); and what it spends
 * stays within what the budget earned plus one read.
 */
TEST_TIMEOUT(sampler_budget_order_and_bound, 60)
{
	enum { N = 4 };
	pid_t pids[N + 1];
	struct cohort_sampler *s;
	struct cohort_sample smp;
	struct cohort_sampler_stats st;
	uint64_t cost = 0, first_age[N], first_reads[N];
	int freshest = -1, reread = -1;
	double budget;

	for (int i = 0; i < N; i++)
		pids[i] = spawn_holder(16 * MB);
	/* Measure one read, then give a budget that earns about a third of one per 20 ms tick. */
	s = make(1.0);
	CHECK_OK(cohort_sampler_add(s, pids[0]));
	cohort_sampler_tick(s);
	CHECK_OK(cohort_sampler_get(s, 0, &smp));
	cost = smp.mem_cost_ns;
	cohort_sampler_free(s);
	budget = (double)cost / 3 / 20e6;
	if (budget > 1)
		budget = 1;

	s = make(budget);
	for (int i = 0; i < N; i++)
		CHECK_OK(cohort_sampler_add(s, pids[i]));
	/* Tick until everyone has a PSS (never-read come first). */
	for (int t = 0; t < 500; t++) {
		int have = 0;

		cohort_sampler_tick(s);
		for (int i = 0; i < N; i++) {
			CHECK_OK(cohort_sampler_get(s, (size_t)i, &smp));
			have += smp.have_pss;
		}
		if (have == N)
			break;
		usleep(20000);
	}
	for (int i = 0; i < N; i++) {
		CHECK_OK(cohort_sampler_get(s, (size_t)i, &smp));
		CHECK_MSG(smp.have_pss, "process %d never read", i);
		CHECK_EQ(smp.mem_reads, 1);
	}
	/*
	 * The first tick reads everyone and may keep credit: spend it (a tick
	 * that reads fewer than all ends with none left), so that the first
	 * tick after the growth affords one read. The never-read process is
	 * started before, so that its start-up earns no credit.
	 */
	pids[N] = spawn_holder(16 * MB);
	for (int t = 0; t < 500; t++) {
		usleep(20000);
		if (cohort_sampler_tick(s) < N)
			break;
	}
	for (int i = 0; i < N; i++) {
		CHECK_OK(cohort_sampler_get(s, (size_t)i, &smp));
		first_age[i] = smp.mem_age_ns;
		first_reads[i] = smp.mem_reads;
	}
	/* The freshest one grows: it must be read again before the older ones. */
	for (int i = 0; i < N; i++)
		if (freshest < 0 || first_age[i] < first_age[freshest])
			freshest = i;
	/*
	 * Wait for the whole growth: the resident size before the signal plus
	 * 16 MiB, not an absolute 32 MiB, which a sanitizer's own resident
	 * memory reaches before the growth has finished.
	 */
	{
		struct cohort_statm before, sm;

		CHECK_OK(cohort_sampler_add(s, pids[N]));
		CHECK_OK(cohort_proc_statm(NULL, pids[freshest], &before));
		kill(pids[freshest], SIGUSR1);
		for (int t = 0; t < 5000; t++) {
			CHECK_OK(cohort_proc_statm(NULL, pids[freshest], &sm));
			if (sm.rss >= before.rss + 16 * MB)
				break;
			usleep(1000);
		}
	}
	for (int t = 0; t < 500 && reread < 0; t++) {
		struct cohort_sample grown, fresh;

		cohort_sampler_tick(s);
		for (int i = 0; i < N; i++) {
			CHECK_OK(cohort_sampler_get(s, (size_t)i, &smp));
			if (smp.mem_reads > first_reads[i] && reread < 0)
				reread = i;
		}
		CHECK_OK(cohort_sampler_get(s, N, &fresh));
		CHECK_OK(cohort_sampler_get(s, (size_t)freshest, &grown));
		CHECK_MSG(!fresh.have_pss || grown.mem_reads > first_reads[freshest],
		          "the process never read was read before the one that grew");
		usleep(20000);
	}
	CHECK_MSG(reread == freshest, "first re-read: process %d, the one that grew: %d", reread, freshest);
	CHECK_OK(cohort_sampler_get(s, (size_t)freshest, &smp));
	CHECK(smp.mem.uss >= 32 * MB);   /* the re-read saw the growth */

	/* Spent <= earned (one second's worth at start, then budget x wall time) + one read + statm. */
	cohort_sampler_stats(s, &st);
	CHECK(st.smaps_reads >= N + 1);
	double earned = budget * (1e9 + (double)st.wall_ns);
	CHECK_MSG((double)st.cpu_ns <= earned + 3.0 * (double)cost,
	          "spent %" PRIu64 " ns, earned %.0f ns, one read costs about %" PRIu64 " ns",
	          st.cpu_ns, earned, cost);
	cohort_sampler_free(s);
}
