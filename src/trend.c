/*
 * trend.c - telling a leak from a sawtooth, a warm-up or copy-on-write.
 *
 * A leak is memory that is never given back: the floor of the series rises.
 * Allocate/free cycles move the peaks, not the floor; start-up growth stops;
 * copy-on-write moves pages from shared to private without new resident
 * memory, so it is measured apart (cohort_cow_copied) on USS and shared.
 */
#include "internal.h"

#include <string.h>

#define SPANS 4

void cohort_trend_init(struct cohort_trend *tr, double start)
{
	memset(tr, 0, sizeof(*tr));
	tr->start = start;
}

void cohort_trend_add(struct cohort_trend *tr, double t, uint64_t bytes)
{
	unsigned last;

	if (tr->n > 0) {
		last = (tr->head + COHORT_TREND_MAX - 1) % COHORT_TREND_MAX;
		if (t < tr->t[last])
			return;
	}
	tr->t[tr->head] = t;
	tr->v[tr->head] = bytes;
	tr->head = (tr->head + 1) % COHORT_TREND_MAX;
	if (tr->n < COHORT_TREND_MAX)
		tr->n++;
}

int cohort_trend_leak(const struct cohort_trend *tr, const struct cohort_leak_params *params,
                      struct cohort_leak *ret)
{
	struct cohort_leak_params p = { 3.0, 20.0, 16ULL << 20 };
	uint64_t floor[SPANS];
	double t_last, t_from, span, tc[SPANS];
	unsigned used = 0, first;
	bool seen[SPANS] = { false };

	if (params) {
		if (params->warmup_s >= 0)
			p.warmup_s = params->warmup_s;
		if (params->window_s > 0)
			p.window_s = params->window_s;
		if (params->min_growth)
			p.min_growth = params->min_growth;
	}
	if (tr->n < 8)
		return 0;
	first = (tr->head + COHORT_TREND_MAX - tr->n) % COHORT_TREND_MAX;
	t_last = tr->t[(tr->head + COHORT_TREND_MAX - 1) % COHORT_TREND_MAX];
	t_from = t_last - p.window_s;
	if (t_from < tr->start + p.warmup_s)
		t_from = tr->start + p.warmup_s;
	/* Judge only a window that is mostly filled: at least half of window_s. */
	if (t_last - t_from < p.window_s / 2)
		return 0;
	span = (t_last - t_from) / SPANS;
	for (unsigned k = 0; k < SPANS; k++)
		tc[k] = t_from + span * (k + 0.5);

	for (unsigned i = 0; i < tr->n; i++) {
		unsigned j = (first + i) % COHORT_TREND_MAX;
		int k;

		if (tr->t[j] < t_from)
			continue;
		k = span > 0 ? (int)((tr->t[j] - t_from) / span) : 0;
		if (k >= SPANS)
			k = SPANS - 1;
		if (!seen[k] || tr->v[j] < floor[k])
			floor[k] = tr->v[j];
		seen[k] = true;
		used++;
	}
	if (used < 8)
		return 0;
	for (unsigned k = 0; k < SPANS; k++)
		if (!seen[k])
			return 0;
	if (floor[SPANS - 1] <= floor[0] || floor[SPANS - 1] - floor[0] < p.min_growth)
		return 0;
	uint64_t rise = floor[SPANS - 1] - floor[0];
	for (unsigned k = 1; k < SPANS; k++)
		if (floor[k] <= floor[k - 1] || floor[k] - floor[k - 1] < rise / 10)
			return 0;
	if (ret) {
		ret->rate = (double)rise / (tc[SPANS - 1] - tc[0]);
		ret->floor_first = floor[0];
		ret->floor_last = floor[SPANS - 1];
		ret->current = tr->v[(tr->head + COHORT_TREND_MAX - 1) % COHORT_TREND_MAX];
		ret->window = t_last - t_from;
	}
	return 1;
}

uint64_t cohort_cow_copied(uint64_t uss_before, uint64_t shared_before,
                           uint64_t uss_after, uint64_t shared_after)
{
	uint64_t grew, fell;

	if (uss_after <= uss_before || shared_after >= shared_before)
		return 0;
	grew = uss_after - uss_before;
	fell = shared_before - shared_after;
	return grew < fell ? grew : fell;
}
