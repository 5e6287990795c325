/*
 * bench-queue: cohort_queue against the kernel's IPC and against the
 * physical limit, two processes bouncing one cache line.
 *
 *   round trip: 64-byte message A -> B -> A, in ns (lower is better)
 *   throughput: one producer, one consumer, 64-byte messages, in Mmsg/s
 *
 * Baselines, in the same run: a pipe pair, a UNIX socketpair, a POSIX
 * message queue, and a shared cache line (round trip only). Each figure is
 * the median of RUNS interleaved runs. The two processes are pinned to CPUs
 * 0 and 1.
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

enum kind { K_QUEUE, K_PIPE, K_SOCKET, K_MQ, K_CACHELINE };
static const char *const names[] = { "cohort_queue", "pipe pair", "socketpair", "POSIX mq",
                                     "cache line" };

struct shared {
	_Alignas(64) _Atomic uint64_t line;
	_Alignas(64) unsigned char q1[];
};

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
	}
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
	case K_CACHELINE:
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
	case K_CACHELINE:
		break;
	}
}

/* ns per round trip. */
static double round_trip(enum kind k)
{
	struct chan c;
	unsigned char m[MSG] = { 1 };
	double t0, t1;
	pid_t pid;

	chan_open(k, &c);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin(1);
		for (long i = 0; i < rt_iters; i++) {
			if (k == K_CACHELINE) {
				while (atomic_load_explicit(&sh->line, memory_order_acquire) != (uint64_t)(2 * i + 1))
					relax();
				atomic_store_explicit(&sh->line, (uint64_t)(2 * i + 2), memory_order_release);
			} else {
				xrecv(k, &c, 0, m);
				xsend(k, &c, 1, m);
			}
		}
		_exit(0);
	}
	t0 = bench_now();
	for (long i = 0; i < rt_iters; i++) {
		if (k == K_CACHELINE) {
			atomic_store_explicit(&sh->line, (uint64_t)(2 * i + 1), memory_order_release);
			while (atomic_load_explicit(&sh->line, memory_order_acquire) != (uint64_t)(2 * i + 2))
				relax();
		} else {
			xsend(k, &c, 0, m);
			xrecv(k, &c, 1, m);
		}
	}
	t1 = bench_now();
	waitpid(pid, NULL, 0);
	chan_close(k, &c);
	return (t1 - t0) * 1e9 / (double)rt_iters;
}

/* Million messages per second, one producer (child) to one consumer. */
static double throughput(enum kind k)
{
	struct chan c;
	unsigned char m[MSG] = { 1 };
	double t0, t1;
	pid_t pid;

	chan_open(k, &c);
	t0 = bench_now();
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		pin(1);
		for (long i = 0; i < tp_iters; i++)
			xsend(k, &c, 0, m);
		_exit(0);
	}
	for (long i = 0; i < tp_iters; i++)
		xrecv(k, &c, 0, m);
	t1 = bench_now();
	waitpid(pid, NULL, 0);
	chan_close(k, &c);
	return (double)tp_iters / (t1 - t0) / 1e6;
}

int main(int argc, char **argv)
{
	double rt[5], tp[4], v[5][RUNS];

	if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
		rt_iters /= 10;
		tp_iters /= 10;
	}
	pin(0);
	qbytes = cohort_queue_footprint(64 * 1024);
	sh = mmap(NULL, sizeof(*sh) + 2 * qbytes, PROT_READ | PROT_WRITE,
	          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap");

	/*
	 * Runs are interleaved (every transport once per round), so that a
	 * burst of other work on the machine hits them all alike.
	 */
	for (int r = 0; r < RUNS; r++)
		for (int k = 0; k <= K_CACHELINE; k++)
			v[k][r] = round_trip((enum kind)k);
	printf("64-byte round trip, %ld round trips per run, median of %d interleaved runs:\n",
	       rt_iters, RUNS);
	for (int k = 0; k <= K_CACHELINE; k++) {
		rt[k] = bench_median(v[k], RUNS);
		printf("  %-14s %10.0f ns\n", names[k], rt[k]);
	}
	printf("  ratios: cohort_queue / cache line = %.2fx; pipe pair / cohort_queue = %.1fx; "
	       "socketpair / cohort_queue = %.1fx; POSIX mq / cohort_queue = %.1fx\n",
	       rt[K_QUEUE] / rt[K_CACHELINE], rt[K_PIPE] / rt[K_QUEUE],
	       rt[K_SOCKET] / rt[K_QUEUE], rt[K_MQ] / rt[K_QUEUE]);

	for (int r = 0; r < RUNS; r++)
		for (int k = 0; k < K_CACHELINE; k++)
			v[k][r] = throughput((enum kind)k);
	printf("64-byte throughput, 1 producer and 1 consumer, %ld messages per run, "
	       "median of %d interleaved runs:\n", tp_iters, RUNS);
	for (int k = 0; k < K_CACHELINE; k++) {
		tp[k] = bench_median(v[k], RUNS);
		printf("  %-14s %10.2f Mmsg/s\n", names[k], tp[k]);
	}
	printf("  ratios: cohort_queue / pipe = %.1fx; / socketpair = %.1fx; / POSIX mq = %.1fx\n",
	       tp[K_QUEUE] / tp[K_PIPE], tp[K_QUEUE] / tp[K_SOCKET], tp[K_QUEUE] / tp[K_MQ]);
	return 0;
}
