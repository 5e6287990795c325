/* test-arena.c - the arena in a segment: allocation, reuse, statistics, overruns and bad handles. */
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

TEST(shm_arena_alloc_free_reuse_and_stats)
{
	size_t size = 1 << 20;
	void *mem = shm_test_shared(size);
	cohort_arena_t *a, *a2;
	struct cohort_arena_stats st;
	cohort_off_t h[64];

	CHECK_OK(cohort_arena_init(mem, size, &a));
	CHECK_OK(cohort_arena_open(mem, size, &a2));
	CHECK_OK(cohort_arena_stats(a, &st));
	CHECK_EQ_U64(st.allocations, 0);
	uint64_t all_free = st.free;
	CHECK_EQ_U64(st.largest_free, all_free);

	for (int i = 0; i < 64; i++) {
		CHECK_OK(cohort_arena_alloc(a, 100 + (size_t)i * 10, &h[i]));
		CHECK(h[i] % 16 == 0);
		unsigned char *p = cohort_arena_ptr(a2, h[i]);
		CHECK(p != NULL);
		memset(p, i, 100 + (size_t)i * 10);
	}
	CHECK_OK(cohort_arena_stats(a, &st));
	CHECK_EQ_U64(st.allocations, 64);
	CHECK_EQ_U64(st.total_allocs, 64);
	for (int i = 0; i < 64; i++) {
		unsigned char *p = cohort_arena_ptr(a, h[i]);
		for (int k = 0; k < 100 + i * 10; k++)
			CHECK_EQ(p[k], i);
		CHECK_EQ(cohort_arena_check(a, h[i]), 100 + i * 10);
	}
	for (int i = 0; i < 64; i += 2)
		CHECK_OK(cohort_arena_free(a, h[i]));
	CHECK_EQ(cohort_arena_free(a, h[0]), COHORT_ECORRUPT);   /* double free */
	CHECK(cohort_arena_ptr(a, h[0]) == NULL);
	for (int i = 1; i < 64; i += 2)
		CHECK_OK(cohort_arena_free(a, h[i]));
	CHECK_OK(cohort_arena_stats(a, &st));
	CHECK_EQ_U64(st.allocations, 0);
	CHECK_EQ_U64(st.free, all_free);

	/* Everything merged back: one allocation of nearly all of it fits. */
	cohort_off_t big;
	CHECK_OK(cohort_arena_alloc(a, (size_t)all_free - 64, &big));
	cohort_off_t more;
	CHECK_EQ(cohort_arena_alloc(a, 64, &more), COHORT_ENOSPACE);
	CHECK_OK(cohort_arena_stats(a, &st));
	CHECK_EQ_U64(st.failed, 1);
	CHECK_OK(cohort_arena_free(a, big));
	CHECK_EQ(cohort_arena_alloc(a, 0, &more), -EINVAL);
}

TEST(shm_arena_catches_overruns_and_bad_handles)
{
	size_t size = 64 << 10;
	unsigned char *mem = shm_test_shared(size);
	cohort_arena_t *a;
	cohort_off_t h, h2;

	CHECK_OK(cohort_arena_init(mem, size, &a));
	CHECK_OK(cohort_arena_alloc(a, 100, &h));
	CHECK_OK(cohort_arena_alloc(a, 100, &h2));
	unsigned char *p = cohort_arena_ptr(a, h);
	p[100] = 0;   /* within the padding of the 8-byte rounding: no harm done */
	memset(p + 104, 0x41, 1);     /* one byte into the canary */
	CHECK_EQ(cohort_arena_check(a, h), COHORT_ECORRUPT);
	CHECK_EQ(cohort_arena_free(a, h), COHORT_ECORRUPT);
	CHECK_EQ(cohort_arena_check(a, h2), 100);

	/* Handles that are no allocation. */
	CHECK(cohort_arena_ptr(a, 0) == NULL);
	CHECK(cohort_arena_ptr(a, h + 16) == NULL);
	CHECK(cohort_arena_ptr(a, size) == NULL);
	CHECK(cohort_arena_ptr(a, UINT64_MAX - 8) == NULL);
	CHECK_EQ(cohort_arena_free(a, 8), COHORT_ECORRUPT);
	CHECK_EQ(cohort_arena_free(a, h + 1), COHORT_ECORRUPT);
	CHECK_EQ(cohort_arena_open(mem + 64, size - 64, &a), COHORT_EBADSEG);
}

TEST(shm_arena_random_churn_keeps_contents)
{
	size_t size = 256 << 10;
	void *mem = shm_test_shared(size);
	cohort_arena_t *a;
	cohort_off_t h[200] = { 0 };
	size_t len[200] = { 0 };
	unsigned seed = 12345;

	CHECK_OK(cohort_arena_init(mem, size, &a));
	for (int step = 0; step < 20000; step++) {
		unsigned i = (seed = seed * 1103515245 + 12345) % 200;

		if (h[i]) {
			unsigned char *p = cohort_arena_ptr(a, h[i]);
			CHECK(p != NULL);
			for (size_t k = 0; k < len[i]; k++)
				CHECK_EQ(p[k], (unsigned char)(i + k));
			CHECK_OK(cohort_arena_free(a, h[i]));
			h[i] = 0;
		} else {
			len[i] = 1 + (seed >> 8) % 3000;
			int r = cohort_arena_alloc(a, len[i], &h[i]);
			if (r == COHORT_ENOSPACE) {
				h[i] = 0;
				continue;
			}
			CHECK_OK(r);
			unsigned char *p = cohort_arena_ptr(a, h[i]);
			for (size_t k = 0; k < len[i]; k++)
				p[k] = (unsigned char)(i + k);
		}
	}
	struct cohort_arena_stats st;
	CHECK_OK(cohort_arena_stats(a, &st));
	CHECK_EQ_U64(st.used + st.free, st.size);
}
