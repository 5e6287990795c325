/* spank-metrics.h - the Prometheus textfile of `cohort spank-watch --metrics DIR`. */
#ifndef COHORT_SPANK_METRICS_H
#define COHORT_SPANK_METRICS_H

#include "cli.h"

/*
 * Metrics of this step on this node into DIR/cohort_<job>_<step>_<host>.prom.
 * Tries the path now and removes stale files of ended steps; a failure is
 * said on stderr (the helper's log) and the step goes on without metrics.
 * Returns 0 or -errno.
 */
int spank_metrics_open(const char *dir, const char *job, const char *step, const char *host,
                       double interval);

/* Task id is watched by w: its series join the file. */
void spank_metrics_watch(long id, const struct cohort_watch *w);

/* An event w raised, counted for cohort_events_total. */
void spank_metrics_event(const struct cohort_watch *w, const struct cohort_event *ev);

/* After the watchers' ticks: the file refreshed when due (every 5 s, or the interval). */
void spank_metrics_tick(void);

/* At the step's end, after the last tick, before the watchers are freed: the final file, and stale ones removed. */
void spank_metrics_close(void);

#endif
