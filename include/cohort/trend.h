/*
 * cohort/trend.h - trends: leaks and copy-on-write unsharing.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 */
#ifndef COHORT_TREND_H
#define COHORT_TREND_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- trends: leaks and copy-on-write unsharing ---- */

/*
 * A series of (time, bytes) samples of one worker, kept in a fixed ring of
 * COHORT_TREND_MAX points, for the leak test below. Caller-placed; zero it
 * with cohort_trend_init().
 */
#define COHORT_TREND_MAX 512

struct cohort_trend {
	double t[COHORT_TREND_MAX];
	uint64_t v[COHORT_TREND_MAX];
	unsigned head, n;       /* ring position and fill */
	double start;           /* time of the worker's start: warm-up counts from here */
};

/* Prepare an empty series for a worker started at time start (seconds). */
COHORT_EXPORT void cohort_trend_init(struct cohort_trend *tr, double start);

/* Append a sample. Times must not go backwards; a sample that does is ignored. */
COHORT_EXPORT void cohort_trend_add(struct cohort_trend *tr, double t, uint64_t bytes);

struct cohort_leak_params {
	double warmup_s;        /* ignore samples this long after the start; default 3 */
	double window_s;        /* judge the last window_s seconds; default 20 */
	uint64_t min_growth;    /* least growth of the floor over the window; default 16 MiB */
};

struct cohort_leak {
	double rate;            /* bytes per second the floor rises */
	uint64_t floor_first;   /* lowest value in the window's first quarter */
	uint64_t floor_last;    /* lowest value in its last quarter */
	uint64_t current;       /* the last sample */
	double window;          /* seconds actually covered */
};

/*
 * Is the series leaking? The window (after warm-up) is cut into four equal
 * spans of time and the lowest value of each span taken: a leak is a floor
 * that rises from span to span, each step by at least a tenth of the whole
 * rise, and by at least min_growth in all. Taking floors ignores an
 * allocate/free sawtooth (its floor stays put), and asking every step to
 * rise ignores a worker that grew during start-up and then levelled off.
 * Returns 1 and fills *ret (may be NULL) when it leaks, 0 when it does not
 * or when there are fewer than 8 samples in the window. params may be NULL.
 */
COHORT_EXPORT int cohort_trend_leak(const struct cohort_trend *tr,
                                    const struct cohort_leak_params *params,
                                    struct cohort_leak *ret);

/*
 * Copy-on-write unsharing of one process between two smaps readings: the
 * bytes that moved from shared to private. A process whose USS grew while
 * its shared pages fell has had pages copied by writes after fork (Python
 * reference counts are writes); its RSS does not grow for that. Returns the
 * smaller of the USS growth and the shared decline, or 0.
 */
COHORT_EXPORT uint64_t cohort_cow_copied(uint64_t uss_before, uint64_t shared_before,
                                         uint64_t uss_after, uint64_t shared_after);

#ifdef __cplusplus
}
#endif

#endif /* COHORT_TREND_H */
