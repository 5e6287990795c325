/*
 * bench.h - timing helpers shared by the benchmarks: a monotonic clock and
 * the median of repeated runs (the machine is shared and noisy, so every
 * figure is a median, and every ratio is against a baseline measured in
 * the same run).
 */
#ifndef COHORT_BENCH_H
#define COHORT_BENCH_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
