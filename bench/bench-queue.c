/*
 * bench-queue: cohort_queue against the kernel's IPC and against the
 * physical limit, two processes bouncing one cache line.
 *
 *   round trip: 64-byte message A -> B -> A, in ns (lower is better)
 *   throughput: one producer, one consumer, 64-byte messages, in Mmsg/s
 *
 *   4x4:        four producers, four consumers on the two CPUs, Mmsg/s
 *
 * Baselines, in the same run: a pipe pair, a UNIX socketpair, a POSIX
 * message queue, Boost.Interprocess message_queue (bench-boost-mq, run
 * beside this program when it was built), and the physical limit: two
 * processes storing in turn to one shared cache line (round trip only).
 *
 * What is timed: only the messages. Each run forks its peer, which pins
 * itself to CPU 1 (the parent is on CPU 0), opens its side and reports
 * ready; the parent waits for it and opens a start barrier; then a warm-up
 * of a tenth of the run goes by untimed, and only then the clock starts.
 * Start-up, pinning and the first page faults are never inside a figure.
 * Each figure is the median of RUNS interleaved runs, with the spread
 * (min-max) beside it; each ratio is between medians of this one run.
 */
#include <cohort.h>

#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <mqueue.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS 15
#define MSG 64
static long rt_iters = 10000;
static long tp_iters = 200000;

enum kind { K_QUEUE, K_PIPE, K_SOCKET, K_MQ, K_BOOST, K_CACHELINE, K_N };
static const char *const names[] = { "cohort_queue", "pipe pair", "socketpair", "POSIX mq",
                                     "Boost mq", "cache line" };

struct shared {
	_Alignas(64) _Atomic uint64_t line;
	_Alignas(64) _Atomic uint32_t ready;   /* peers that are pinned and open */
	_Alignas(64) _Atomic uint32_t go;      /* the start barrier */
	_Alignas(64) unsigned char q1[];
};

static char boost_path[4096];   /* bench-boost-mq beside this program, or "" */

static struct shared *sh;
static size_t qbytes;

/*
 * Pin the calling process to one CPU: every transport is measured with its
 * two processes on two different CPUs (when there are two), so that the
 * scheduler placing both on one CPU does not decide the figure.
 */
static void pin(int cpu)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/*
 * The spin of the cache-line baseline pauses as cohort_queue's does: a
 * spin without it starves a sibling hardware thread, and the baseline
 * would then measure that, not the line's crossing.
 */
static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/*
 * The start barrier. A peer calls peer_ready() once it is pinned and has
 * its side open, then spins until the parent opens the barrier; the
 * parent waits for `n` peers in start(). Spinning (no sleep) keeps the
 * peer on its CPU and its caches warm when the clock starts.
 */
static void peer_ready(void)
{
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load_explicit(&sh->go, memory_order_acquire))
		relax();
}

static void start(unsigned n)
{
	while (atomic_load_explicit(&sh->ready, memory_order_acquire) < n)
		relax();
	atomic_store_explicit(&sh->go, 1, memory_order_release);
}

static void barrier_reset(void)
{
	atomic_store(&sh->ready, 0);
	atomic_store(&sh->go, 0);
}

/*
 * A Boost.Interprocess message_queue figure: bench-boost-mq does the same
 * fork, pinning, start barrier and warm-up in C++ and prints one number.
 */
static double boost_figure(const char *what, long iters)
{
	char cmd[4200];
	double v = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s' %s %ld", boost_path, what, iters);
	p = popen(cmd, "r");
	if (!p)
		die("popen");
	if (fscanf(p, "%lf", &v) != 1)
		v = -1;
	if (pclose(p) != 0 || v <= 0) {
		fprintf(stderr, "bench-queue: %s failed\n", cmd);
		exit(1);
	}
	return v;
}

/* Two channels, a->b and b->a, of one kind. */
struct chan {
	int fd[2][2];          /* pipes: [dir][0 read, 1 write]; sockets: fd[0][0], fd[0][1] */
	mqd_t mq[2];
	cohort_queue_t *q[2];
};

static void chan_open(enum kind k, struct chan *c)
{
	char name[64];

	memset(c, 0, sizeof(*c));
	switch (k) {
	case K_QUEUE:
		memset(sh, 0, sizeof(*sh) + 2 * qbytes);
		if (cohort_queue_init(sh->q1, qbytes, &c->q[0]) < 0 ||
		    cohort_queue_init(sh->q1 + qbytes, qbytes, &c->q[1]) < 0)
			die("cohort_queue_init");
		break;
	case K_PIPE:
		if (pipe(c->fd[0]) < 0 || pipe(c->fd[1]) < 0)
			die("pipe");
		break;
	case K_SOCKET:
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, c->fd[0]) < 0)
			die("socketpair");
		break;
	case K_MQ:
		for (int d = 0; d < 2; d++) {
			struct mq_attr at = { .mq_maxmsg = 10, .mq_msgsize = MSG };

			snprintf(name, sizeof(name), "/cohort-bench-%d-%d", (int)getpid(), d);
			mq_unlink(name);
			c->mq[d] = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &at);
			if (c->mq[d] == (mqd_t)-1)
				die("mq_open");
			mq_unlink(name);
		}
		break;
	case K_CACHELINE:
		atomic_store(&sh->line, 0);
		break;
	case K_BOOST:
	case K_N:
		break;
	}
	barrier_reset();
}

static void chan_close(enum kind k, struct chan *c)
{
	if (k == K_PIPE)
		for (int d = 0; d < 2; d++) {
			close(c->fd[d][0]);
			close(c->fd[d][1]);
		}
	if (k == K_SOCKET) {
		close(c->fd[0][0]);
		close(c->fd[0][1]);
	}
	if (k == K_MQ) {
		mq_close(c->mq[0]);
		mq_close(c->mq[1]);
	}
	if (k == K_QUEUE) {
		cohort_queue_close(c->q[0]);
		cohort_queue_close(c->q[1]);
	}
}

static void full_write(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

static void full_read(int fd, void *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			die("read");
		}
		p = (char *)p + r;
		n -= (size_t)r;
	}
}

/* Send on direction d (0: a->b, 1: b->a); side 0 is a, side 1 is b. */
static void xsend(enum kind k, struct chan *c, int d, const void *m)
{
	switch (k) {
	case K_QUEUE:
		if (cohort_queue_send(c->q[d], m, MSG, -1) < 0)
			die("cohort_queue_send");
		break;
	case K_PIPE:
		full_write(c->fd[d][1], m, MSG);
		break;
	case K_SOCKET:
		full_write(c->fd[0][d], m, MSG);
		break;
	case K_MQ:
		if (mq_send(c->mq[d], m, MSG, 0) < 0)
			die("mq_send");
		break;
	default:
		break;
	}
}

static void xrecv(enum kind k, struct chan *c, int d, void *m)
{
	switch (k) {
	case K_QUEUE:
		if (cohort_queue_recv(c->q[d], m, MSG, -1) != MSG)
			die("cohort_queue_recv");
		break;
	case K_PIPE:
		full_read(c->fd[d][0], m, MSG);
		break;
	case K_SOCKET:
		full_read(c->fd[0][1 - d], m, MSG);
		break;
	case K_MQ:
		if (mq_receive(c->mq[d], m, MSG, NULL) != MSG)
			die("mq_receive");
		break;
	default:
		break;
	}
}

/*
 * The bare physical limit: the parent stores an odd number, the peer waits
 * for it and stores the next even one; nothing else touches the line.
 */
static void line_ping(long from, long to)
{
	for (long i = from; i < to; i++) {
		atomic_store_explicit(&sh->line, (uint64_t)(2 * i + 1), memory_order_release);
		while (atomic_load_explicit(&sh->line, memory_order_acquire) != (uint64_t)(2 * i + 2))
			;
	}
}

static void line_pong(long from, long to)
{
	for (long i = from; i < to; i++) {
		while (atomic_load_explicit(&sh->line, memory_order_acquire) != (uint64_t)(2 * i + 1))
			;
		atomic_store_explicit(&sh->line, (uint64_t)(2 * i + 2), memory_order_release);
	}
}

/* ns per round trip. */
static double round_trip(enum kind k)
{
	long warm = rt_iters / 10;
	struct chan c;
	unsigned char m[MSG] = { 1 };
	double t0, t1;
	pid_t pid;

	if (k == K_BOOST)
		return boost_figure("rt", rt_iters);
	chan_open(k, &c);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin(1);
		peer_ready();
		if (k == K_CACHELINE) {
			line_pong(0, warm + rt_iters);
			_exit(0);
		}
		for (long i = 0; i < warm + rt_iters; i++) {
			xrecv(k, &c, 0, m);
			xsend(k, &c, 1, m);
		}
		_exit(0);
	}
	start(1);
	if (k == K_CACHELINE) {
		line_ping(0, warm);
		t0 = bench_now();
		line_ping(warm, warm + rt_iters);
		t1 = bench_now();
	} else {
		for (long i = 0; i < warm; i++) {
			xsend(k, &c, 0, m);
			xrecv(k, &c, 1, m);
		}
		t0 = bench_now();
		for (long i = 0; i < rt_iters; i++) {
			xsend(k, &c, 0, m);
			xrecv(k, &c, 1, m);
		}
		t1 = bench_now();
	}
	waitpid(pid, NULL, 0);
	chan_close(k, &c);
	return (t1 - t0) * 1e9 / (double)rt_iters;
}

/*
 * Million messages per second, one producer (the peer, CPU 1) to one
 * consumer (CPU 0). The clock starts when the consumer has taken the
 * warm-up messages, so the producer is already running at full speed.
 */
static double throughput(enum kind k)
{
	long warm = tp_iters / 10;
	struct chan c;
	unsigned char m[MSG] = { 1 };
	double t0, t1;
	pid_t pid;

	if (k == K_BOOST)
		return boost_figure("tp", tp_iters);
	chan_open(k, &c);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin(1);
		peer_ready();
		for (long i = 0; i < warm + tp_iters; i++)
			xsend(k, &c, 0, m);
		_exit(0);
	}
	start(1);
	for (long i = 0; i < warm; i++)
		xrecv(k, &c, 0, m);
	t0 = bench_now();
	for (long i = 0; i < tp_iters; i++)
		xrecv(k, &c, 0, m);
	t1 = bench_now();
	waitpid(pid, NULL, 0);
	chan_close(k, &c);
	return (double)tp_iters / (t1 - t0) / 1e6;
}

/*
 * cohort_queue with NP producers and NP consumers, all separate processes,
 * spread over CPUs 0 and 1 (two per CPU and side with NP = 4). Every
 * process meets at the start barrier; the clock runs from the barrier to
 * the last consumer's end (each consumer takes tp_iters / NP messages;
 * there is no warm-up, the figure is per message of the whole run).
 */
#define NP 4
static double throughput_mpmc(void)
{
	long per = tp_iters / NP;
	struct chan c;
	pid_t pid[2 * NP];
	double t0, t1;

	chan_open(K_QUEUE, &c);
	for (int i = 0; i < 2 * NP; i++) {
		pid[i] = fork();
		if (pid[i] < 0)
			die("fork");
		if (pid[i] == 0) {
			unsigned char m[MSG] = { 1 };

			pin(i % 2);
			peer_ready();
			for (long j = 0; j < per; j++) {
				if (i < NP)
					xsend(K_QUEUE, &c, 0, m);
				else
					xrecv(K_QUEUE, &c, 0, m);
			}
			_exit(0);
		}
	}
	start(2 * NP);
	t0 = bench_now();
	for (int i = 0; i < 2 * NP; i++)
		waitpid(pid[i], NULL, 0);
	t1 = bench_now();
	chan_close(K_QUEUE, &c);
	return (double)(per * NP) / (t1 - t0) / 1e6;
}

static double vmin(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double vmax(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

/*
 * The uncontended cost, in one process on one CPU: a send and a receive of
 * 64 bytes, against two bare compare-and-swaps with a release store each
 * (per side the one locked instruction of its fast path, the claim of a
 * slot, and the store that publishes or frees it), the floor of any MPMC
 * queue that arbitrates its producers and its consumers.
 * ns per pair, medians of RUNS; ret_locks gets the locked instructions' figure.
 */
static double uncontended(double *ret_locks)
{
	static struct { _Alignas(64) _Atomic uint64_t w; } side[2];
	double a[RUNS], b[RUNS];
	unsigned char m[MSG] = { 1 };
	long n = tp_iters * 10;
	struct chan c;

	chan_open(K_QUEUE, &c);
	for (int r = 0; r < RUNS; r++) {
		double t0 = bench_now(), t1, t2;

		for (long i = 0; i < n; i++) {
			xsend(K_QUEUE, &c, 0, m);
			xrecv(K_QUEUE, &c, 0, m);
		}
		t1 = bench_now();
		for (long i = 0; i < n; i++)
			for (int s = 0; s < 2; s++) {
				uint64_t z = 0;

				atomic_compare_exchange_strong_explicit(&side[s].w, &z, 1, memory_order_acquire,
				                                        memory_order_relaxed);
				atomic_store_explicit(&side[s].w, 0, memory_order_release);
			}
		t2 = bench_now();
		a[r] = (t1 - t0) * 1e9 / (double)n;
		b[r] = (t2 - t1) * 1e9 / (double)n;
	}
	chan_close(K_QUEUE, &c);
	*ret_locks = bench_median(b, RUNS);
	return bench_median(a, RUNS);
}

/* Find bench-boost-mq in this program's directory. */
static void find_boost(void)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = '\0';
	snprintf(boost_path, sizeof(boost_path), "%s/bench-boost-mq", self);
	if (access(boost_path, X_OK) < 0)
		boost_path[0] = '\0';
}

int main(int argc, char **argv)
{
	double rt[K_N], tp[K_N], tp4, v[K_N][RUNS], w[K_N][RUNS], w4[RUNS];
	int have_boost;

	if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
		rt_iters /= 10;
		tp_iters /= 10;
	}
	find_boost();
	have_boost = boost_path[0] != '\0';
	pin(0);
	qbytes = cohort_queue_footprint(64 * 1024);
	sh = mmap(NULL, sizeof(*sh) + 2 * qbytes, PROT_READ | PROT_WRITE,
	          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap");
	if (!have_boost)
		printf("(bench-boost-mq not built: no Boost.Interprocess figures; "
		       "apt-get install libboost-dev g++, then make bench)\n");

	/*
	 * Runs are interleaved (every transport once per round), so that a
	 * burst of other work on the machine hits them all alike.
	 */
	for (int r = 0; r < RUNS; r++)
		for (int k = 0; k < K_N; k++)
			if (k != K_BOOST || have_boost)
				v[k][r] = round_trip((enum kind)k);
	printf("64-byte round trip, %ld round trips per run (after %ld untimed), "
	       "median (min-max) of %d interleaved runs:\n", rt_iters, rt_iters / 10, RUNS);
	for (int k = 0; k < K_N; k++) {
		if (k == K_BOOST && !have_boost)
			continue;
		rt[k] = bench_median(v[k], RUNS);
		printf("  %-14s %10.0f ns  (%.0f-%.0f)\n", names[k], rt[k], vmin(v[k], RUNS),
		       vmax(v[k], RUNS));
	}
	printf("  ratios: cohort_queue / cache line = %.2fx; pipe pair / cohort_queue = %.1fx; "
	       "socketpair / cohort_queue = %.1fx; POSIX mq / cohort_queue = %.1fx",
	       rt[K_QUEUE] / rt[K_CACHELINE], rt[K_PIPE] / rt[K_QUEUE],
	       rt[K_SOCKET] / rt[K_QUEUE], rt[K_MQ] / rt[K_QUEUE]);
	if (have_boost)
		printf("; Boost mq / cohort_queue = %.1fx", rt[K_BOOST] / rt[K_QUEUE]);
	printf("\n");

	for (int r = 0; r < RUNS; r++) {
		for (int k = 0; k < K_CACHELINE; k++)
			if (k != K_BOOST || have_boost)
				w[k][r] = throughput((enum kind)k);
		w4[r] = throughput_mpmc();
	}
	printf("64-byte throughput, 1 producer and 1 consumer, %ld messages per run (after %ld "
	       "untimed), median (min-max) of %d interleaved runs:\n", tp_iters, tp_iters / 10, RUNS);
	for (int k = 0; k < K_CACHELINE; k++) {
		if (k == K_BOOST && !have_boost)
			continue;
		tp[k] = bench_median(w[k], RUNS);
		printf("  %-14s %10.2f Mmsg/s  (%.2f-%.2f)\n", names[k], tp[k], vmin(w[k], RUNS),
		       vmax(w[k], RUNS));
	}
	printf("  ratios: cohort_queue / pipe = %.1fx; / socketpair = %.1fx; / POSIX mq = %.1fx",
	       tp[K_QUEUE] / tp[K_PIPE], tp[K_QUEUE] / tp[K_SOCKET], tp[K_QUEUE] / tp[K_MQ]);
	if (have_boost)
		printf("; / Boost mq = %.1fx", tp[K_QUEUE] / tp[K_BOOST]);
	printf("\n");
	tp4 = bench_median(w4, RUNS);
	printf("cohort_queue, %d producers and %d consumers on 2 CPUs, %ld messages per run: "
	       "%.2f Mmsg/s (%.2f-%.2f); per message against 1P1C: %.2fx the time\n",
	       NP, NP, tp_iters / NP * NP, tp4, vmin(w4, RUNS),
	       vmax(w4, RUNS), tp[K_QUEUE] / tp4);
	double locks, pair = uncontended(&locks);
	printf("uncontended, one process: send + recv %.1f ns, of which two bare claims (CAS + store) %.1f ns "
	       "(%.0f%%), medians of %d runs of %ld\n", pair, locks, 100 * locks / pair, RUNS,
	       tp_iters * 10);
	return 0;
}
