/* test-queue.c - the shared-memory MPMC queue: order, sizes, wrap, corrupt bookkeeping, every message once. */
#include "harness.h"
#include "shm-util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TEST(shm_queue_fifo_variable_sizes_and_wrap)
{
	size_t size = cohort_queue_footprint(4096);
	void *mem = shm_test_shared(size);
	cohort_queue_t *q, *q2;
	struct cohort_queue_stats st;
	unsigned char in[2100], out[2100];

	CHECK_OK(cohort_queue_init(mem, size, &q));
	CHECK_OK(cohort_queue_open(mem, size, &q2));
	CHECK_EQ(cohort_queue_open(mem, size + 64, &q2), COHORT_EBADSEG);
	CHECK_EQ(cohort_queue_max_message(q), 4096 / 2 - 8);
	CHECK_EQ(cohort_queue_recv(q, out, sizeof(out), 0), COHORT_ETIMEDOUT);
	CHECK_EQ(cohort_queue_send(q, in, 0, 0), -EMSGSIZE);
	CHECK_EQ(cohort_queue_send(q, in, 4096 / 2 - 7, 0), -EMSGSIZE);

	/* Many rounds of odd sizes force the ring to wrap at every offset. */
	unsigned seq = 0, got = 0;
	for (int round = 0; round < 2000; round++) {
		size_t len = 1 + (size_t)(round * 37 % 700);
		int r;

		for (size_t i = 0; i < len; i++)
			in[i] = (unsigned char)(seq + i);
		r = cohort_queue_send(q, in, len, 0);
		if (r == COHORT_ETIMEDOUT) {
			/* Full: drain one at a time until it fits. */
			do {
				int n = cohort_queue_recv(q, out, sizeof(out), 0);
				CHECK_MSG(n > 0, "recv %d", n);
				CHECK_EQ(out[0], (unsigned char)got);
				for (int i = 1; i < n; i++)
					CHECK_EQ(out[i], (unsigned char)(got + (unsigned)i));
				got++;
				r = cohort_queue_send(q, in, len, 0);
			} while (r == COHORT_ETIMEDOUT);
			CHECK_OK(r);
		} else {
			CHECK_OK(r);
		}
		seq++;
	}
	for (;;) {
		int n = cohort_queue_recv(q, out, sizeof(out), 0);
		if (n == COHORT_ETIMEDOUT)
			break;
		CHECK(n > 0);
		CHECK_EQ(out[0], (unsigned char)got);
		got++;
	}
	CHECK_EQ(got, seq);
	CHECK_OK(cohort_queue_stats(q, &st));
	CHECK_EQ_U64(st.sent, seq);
	CHECK_EQ_U64(st.received, seq);
	CHECK_EQ_U64(st.used, 0);
	CHECK_EQ_U64(st.lost_send + st.lost_recv + st.recovered, 0);

	/* Too small a buffer: an error, and the message stays. */
	CHECK_OK(cohort_queue_send(q, in, 100, 0));
	CHECK_EQ(cohort_queue_recv(q, out, 99, 0), -EMSGSIZE);
	CHECK_EQ(cohort_queue_recv(q, out, 100, 0), 100);
	CHECK_EQ(cohort_queue_recv(q, out, sizeof(out), 20), COHORT_ETIMEDOUT);
	/* Two handles, one queue. */
	CHECK_OK(cohort_queue_send(q2, in, 10, 0));
	CHECK_EQ(cohort_queue_recv(q, out, sizeof(out), 0), 10);
	CHECK_OK(cohort_queue_close(q2));
	CHECK_OK(cohort_queue_close(q));
}

TEST(shm_queue_refuses_corrupt_bookkeeping)
{
	size_t size = cohort_queue_footprint(4096);
	unsigned char *mem = shm_test_shared(size), out[64];
	cohort_queue_t *q;

	CHECK_OK(cohort_queue_init(mem, size, &q));
	CHECK_OK(cohort_queue_send(q, "abcdef", 6, 0));
	/* Overwrite the record's length with garbage. */
	uint32_t bad = 0x7fffffff;
	memcpy(mem + COHORT_QUEUE_HEADER, &bad, 4);
	CHECK_EQ(cohort_queue_recv(q, out, sizeof(out), 0), COHORT_ECORRUPT);
	bad = 6;
	memcpy(mem + COHORT_QUEUE_HEADER, &bad, 4);
	CHECK_EQ(cohort_queue_recv(q, out, sizeof(out), 0), 6);
	/* A foreign region is not a queue. */
	memset(mem, 0xab, 64);
	CHECK_EQ(cohort_queue_open(mem, size, &q), COHORT_EBADSEG);
}

#define MPMC_PRODUCERS 3
#define MPMC_CONSUMERS 3
#define MPMC_PER 20000

struct mpmc {
	cohort_queue_t *q;
	int id;
	_Atomic uint64_t *seen;   /* per producer, per seq */
};

static void mpmc_producer(void *arg)
{
	struct mpmc *m = arg;
	uint32_t msg[16];

	for (uint32_t i = 0; i < MPMC_PER; i++) {
		size_t words = 2 + i % 14;

		msg[0] = (uint32_t)m->id;
		msg[1] = i;
		for (size_t k = 2; k < words; k++)
			msg[k] = i * 7 + (uint32_t)k;
		if (cohort_queue_send(m->q, msg, words * 4, 10000) != 0)
			_exit(10);
	}
}

static void mpmc_consumer(void *arg)
{
	struct mpmc *m = arg;
	uint32_t msg[16];

	for (;;) {
		int n = cohort_queue_recv(m->q, msg, sizeof(msg), 10000);

		if (n < 0)
			_exit(10);
		if (n == 4 && msg[0] == 0xffffffffu)
			return;
		if (n % 4 || n < 8 || msg[0] >= MPMC_PRODUCERS || msg[1] >= MPMC_PER)
			_exit(11);
		if ((size_t)n != (2 + msg[1] % 14) * 4)
			_exit(12);
		for (int k = 2; k < n / 4; k++)
			if (msg[k] != msg[1] * 7 + (uint32_t)k)
				_exit(13);
		atomic_fetch_add(&m->seen[msg[0] * MPMC_PER + msg[1]], 1);
	}
}

TEST_TIMEOUT(shm_queue_mpmc_every_message_exactly_once, 60)
{
	struct cohort_seg_options o;
	struct cohort_seg *seg;
	char why[256];
	size_t qsize = cohort_queue_footprint(16384);
	struct mpmc prod[MPMC_PRODUCERS], cons[MPMC_CONSUMERS];
	pid_t pp[MPMC_PRODUCERS], cp[MPMC_CONSUMERS];
	_Atomic uint64_t *seen = shm_test_shared(sizeof(*seen) * MPMC_PRODUCERS * MPMC_PER);
	cohort_queue_t *q;

	shm_test_opts(&o, why, sizeof(why));
	CHECK_OK(cohort_seg_create("q", qsize, &o, &seg));
	CHECK_OK(cohort_queue_init(cohort_seg_data(seg), qsize, &q));
	for (int i = 0; i < MPMC_CONSUMERS; i++) {
		cons[i] = (struct mpmc){ q, i, seen };
		cp[i] = helper_spawn(mpmc_consumer, &cons[i]);
	}
	for (int i = 0; i < MPMC_PRODUCERS; i++) {
		prod[i] = (struct mpmc){ q, i, seen };
		pp[i] = helper_spawn(mpmc_producer, &prod[i]);
	}
	for (int i = 0; i < MPMC_PRODUCERS; i++)
		CHECK_EQ(shm_test_wait(pp[i]), 0);
	uint32_t stop = 0xffffffffu;
	for (int i = 0; i < MPMC_CONSUMERS; i++)
		CHECK_OK(cohort_queue_send(q, &stop, 4, 10000));
	for (int i = 0; i < MPMC_CONSUMERS; i++)
		CHECK_EQ(shm_test_wait(cp[i]), 0);
	for (int i = 0; i < MPMC_PRODUCERS * MPMC_PER; i++)
		CHECK_MSG(seen[i] == 1, "message %d seen %llu times", i, (unsigned long long)seen[i]);
	cohort_seg_close(seg);
}
