/*
 * bench-boost-mq: Boost.Interprocess message_queue, the queue a C or C++
 * programmer would pick for processes on one node, measured the way
 * bench-queue measures cohort_queue (bench-queue runs this program
 * interleaved with its own transports, so the ratios are from one run).
 *
 *   bench-boost-mq rt N   ns per 64-byte round trip A -> B -> A (N of them)
 *   bench-boost-mq tp N   Mmsg/s, one producer to one consumer (N messages)
 *   bench-boost-mq        both, median (min-max) of 15 runs
 *
 * As in bench-queue: the parent is pinned to CPU 0, the forked peer to
 * CPU 1; the peer opens its side, reports ready and waits at a start
 * barrier; a tenth of N goes by untimed, then the clock starts. Each queue
 * holds 1024 messages of 64 bytes (the 64 KiB of cohort_queue's ring in
 * bench-queue). Needs Debian's libboost-dev (header-only) and g++.
 */
#include <boost/interprocess/ipc/message_queue.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sched.h>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace bip = boost::interprocess;

enum { MSG = 64, DEPTH = 1024 };

struct shared {
	alignas(64) std::atomic<unsigned> ready;
	alignas(64) std::atomic<unsigned> go;
};

static shared *sh;

static double now()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static inline void relax()
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static std::string qname(int d)
{
	return "cohort-bench-boost-" + std::to_string(getpid()) + "-" + std::to_string(d);
}

/* Two queues, a->b and b->a, created by the parent before the fork. */
struct pair {
	std::string name[2];
	bip::message_queue *q[2];

	pair()
	{
		for (int d = 0; d < 2; d++) {
			name[d] = qname(d);
			bip::message_queue::remove(name[d].c_str());
			q[d] = new bip::message_queue(bip::create_only, name[d].c_str(), DEPTH, MSG);
		}
	}
	~pair()
	{
		for (int d = 0; d < 2; d++) {
			delete q[d];
			bip::message_queue::remove(name[d].c_str());
		}
	}
};

static void send(bip::message_queue *q, const void *m)
{
	q->send(m, MSG, 0);
}

static void recv(bip::message_queue *q, void *m)
{
	bip::message_queue::size_type got;
	unsigned prio;

	q->receive(m, MSG, got, prio);
	if (got != MSG) {
		std::fprintf(stderr, "bench-boost-mq: short message\n");
		std::exit(1);
	}
}

/* The peer: pinned, its side open (the parent's mapping), then the barrier. */
static void peer_ready()
{
	pin(1);
	sh->ready.fetch_add(1);
	while (!sh->go.load(std::memory_order_acquire))
		relax();
}

static void start()
{
	while (sh->ready.load(std::memory_order_acquire) < 1)
		relax();
	sh->go.store(1, std::memory_order_release);
}

static double round_trip(long n)
{
	unsigned char m[MSG] = { 1 };
	long warm = n / 10;
	double t0, t1;
	pair p;

	sh->ready = 0;
	sh->go = 0;
	pid_t pid = fork();
	if (pid < 0) {
		std::perror("fork");
		std::exit(1);
	}
	if (pid == 0) {
		peer_ready();
		for (long i = 0; i < warm + n; i++) {
			recv(p.q[0], m);
			send(p.q[1], m);
		}
		_exit(0);
	}
	start();
	for (long i = 0; i < warm; i++) {
		send(p.q[0], m);
		recv(p.q[1], m);
	}
	t0 = now();
	for (long i = 0; i < n; i++) {
		send(p.q[0], m);
		recv(p.q[1], m);
	}
	t1 = now();
	waitpid(pid, nullptr, 0);
	return (t1 - t0) * 1e9 / (double)n;
}

static double throughput(long n)
{
	unsigned char m[MSG] = { 1 };
	long warm = n / 10;
	double t0, t1;
	pair p;

	sh->ready = 0;
	sh->go = 0;
	pid_t pid = fork();
	if (pid < 0) {
		std::perror("fork");
		std::exit(1);
	}
	if (pid == 0) {
		peer_ready();
		for (long i = 0; i < warm + n; i++)
			send(p.q[0], m);
		_exit(0);
	}
	start();
	for (long i = 0; i < warm; i++)
		recv(p.q[0], m);
	t0 = now();
	for (long i = 0; i < n; i++)
		recv(p.q[0], m);
	t1 = now();
	waitpid(pid, nullptr, 0);
	return (double)n / (t1 - t0) / 1e6;
}

static void summary(const char *what, const char *unit, std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	size_t n = v.size();
	double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;

	std::printf("  %-10s %10.2f %s  (%.2f-%.2f)\n", what, med, unit, v.front(), v.back());
}

int main(int argc, char **argv)
{
	void *mem = mmap(nullptr, sizeof(shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED) {
		std::perror("mmap");
		return 1;
	}
	sh = new (mem) shared();
	pin(0);
	try {
		if (argc == 3) {
			long n = std::strtol(argv[2], nullptr, 10);

			if (n <= 0) {
				std::fprintf(stderr, "bench-boost-mq: bad count '%s'\n", argv[2]);
				return 2;
			}
			if (std::strcmp(argv[1], "rt") == 0)
				std::printf("%.3f\n", round_trip(n));
			else if (std::strcmp(argv[1], "tp") == 0)
				std::printf("%.4f\n", throughput(n));
			else {
				std::fprintf(stderr, "usage: bench-boost-mq [rt|tp N]\n");
				return 2;
			}
			return 0;
		}
		if (argc != 1) {
			std::fprintf(stderr, "usage: bench-boost-mq [rt|tp N]\n");
			return 2;
		}
		std::vector<double> rt, tp;
		for (int r = 0; r < 15; r++) {
			rt.push_back(round_trip(10000));
			tp.push_back(throughput(200000));
		}
		std::printf("Boost.Interprocess message_queue, 64-byte messages, median (min-max) of 15 runs:\n");
		summary("round trip", "ns", rt);
		summary("throughput", "Mmsg/s", tp);
	} catch (const bip::interprocess_exception &e) {
		std::fprintf(stderr, "bench-boost-mq: %s\n", e.what());
		return 1;
	}
	return 0;
}
