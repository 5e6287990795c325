/* test-trend.c - the leak test against leaks, steady workers, sawtooths and warm-ups. */
#include "harness.h"

#define MiB (1ULL << 20)

/* A series sampled every dt seconds for secs seconds from f(t). */
static void fill(struct cohort_trend *tr, double secs, double dt, uint64_t (*f)(double))
{
	cohort_trend_init(tr, 0);
	for (double t = 0; t <= secs + 1e-9; t += dt)
		cohort_trend_add(tr, t, f(t));
}

static uint64_t steady(double t) { (void)t; return 200 * MiB + ((uint64_t)(t * 10) % 3) * 4096; }
static uint64_t leak_4mib_s(double t) { return 100 * MiB + (uint64_t)(t * 4 * MiB); }
/* 300 MiB allocated and freed every 2 s on top of 100 MiB. */
static uint64_t sawtooth(double t) { return 100 * MiB + ((long)t % 2 == 0 ? 300 * MiB : 0); }
/* Grows 20 MiB/s for 10 s of start-up, then stays. */
static uint64_t warmup(double t) { return 50 * MiB + (uint64_t)((t < 10 ? t : 10) * 20 * MiB); }
/* A leak hidden under a sawtooth: the floor rises 2 MiB/s. */
static uint64_t leaky_saw(double t) { return sawtooth(t) + (uint64_t)(t * 2 * MiB); }
/* Growth that stops halfway through the window. */
static uint64_t plateau(double t) { return 100 * MiB + (uint64_t)((t < 18 ? t : 18) * 8 * MiB); }

TEST(trend_leak_found_with_rate)
{
	struct cohort_trend tr;
	struct cohort_leak l;

	fill(&tr, 30, 1, leak_4mib_s);
	CHECK_EQ(cohort_trend_leak(&tr, NULL, &l), 1);
	CHECK_MSG(l.rate > 3.8 * MiB && l.rate < 4.2 * MiB, "rate %.0f", l.rate);
	CHECK(l.floor_last > l.floor_first);
	CHECK_EQ_U64(l.current, leak_4mib_s(30));
}

TEST(trend_no_alarm_for_steady_sawtooth_warmup_plateau)
{
	struct cohort_trend tr;

	fill(&tr, 60, 1, steady);
	CHECK_EQ(cohort_trend_leak(&tr, NULL, NULL), 0);
	fill(&tr, 60, 0.25, sawtooth);
	CHECK_EQ(cohort_trend_leak(&tr, NULL, NULL), 0);
	fill(&tr, 40, 1, warmup);
	CHECK_EQ(cohort_trend_leak(&tr, NULL, NULL), 0);
	fill(&tr, 30, 1, plateau);
	CHECK_EQ(cohort_trend_leak(&tr, NULL, NULL), 0);
}

TEST(trend_leak_under_a_sawtooth)
{
	struct cohort_trend tr;
	struct cohort_leak l;

	fill(&tr, 40, 0.25, leaky_saw);
	CHECK_EQ(cohort_trend_leak(&tr, NULL, &l), 1);
	CHECK_MSG(l.rate > 1.5 * MiB && l.rate < 2.5 * MiB, "rate %.0f", l.rate);
}

TEST(trend_needs_enough_samples_after_warmup)
{
	struct cohort_trend tr;
	struct cohort_leak_params p = { .warmup_s = 3, .window_s = 20 };

	fill(&tr, 8, 1, leak_4mib_s);                 /* 5 s after warm-up: too short */
	CHECK_EQ(cohort_trend_leak(&tr, &p, NULL), 0);
	fill(&tr, 14, 1, leak_4mib_s);                /* 11 s: half the window, judged */
	CHECK_EQ(cohort_trend_leak(&tr, &p, NULL), 1);
	p.min_growth = 64 * MiB;                      /* 44 MiB of growth is not enough */
	CHECK_EQ(cohort_trend_leak(&tr, &p, NULL), 0);
}

TEST(trend_ring_keeps_the_newest)
{
	struct cohort_trend tr;

	cohort_trend_init(&tr, 0);
	for (int i = 0; i < 3 * COHORT_TREND_MAX; i++)
		cohort_trend_add(&tr, i * 0.05, 100 * MiB);
	CHECK_EQ(tr.n, COHORT_TREND_MAX);
	cohort_trend_add(&tr, 0, 1);                  /* backwards in time: ignored */
	CHECK_EQ_U64(tr.v[(tr.head + COHORT_TREND_MAX - 1) % COHORT_TREND_MAX], 100 * MiB);
	CHECK_EQ(cohort_trend_leak(&tr, NULL, NULL), 0);
}

TEST(trend_cow_copied)
{
	/* 80 MiB moved from shared to private. */
	CHECK_EQ_U64(cohort_cow_copied(10 * MiB, 300 * MiB, 90 * MiB, 220 * MiB), 80 * MiB);
	/* USS grew with no shared decline: a leak, not copy-on-write. */
	CHECK_EQ_U64(cohort_cow_copied(10 * MiB, 300 * MiB, 90 * MiB, 300 * MiB), 0);
	/* Shared fell (unmapped) but USS did not grow. */
	CHECK_EQ_U64(cohort_cow_copied(10 * MiB, 300 * MiB, 10 * MiB, 100 * MiB), 0);
	/* Both moved, by different amounts: the smaller is what was copied. */
	CHECK_EQ_U64(cohort_cow_copied(0, 100 * MiB, 50 * MiB, 80 * MiB), 20 * MiB);
}
