/*
 * run-metrics.c - `cohort run --metrics FILE`: the watcher's state as a
 * Prometheus textfile, refreshed while the job runs and written once more
 * at its end (src/metrics.c formats, src/file.c publishes atomically).
 */
#include "supervise.h"

#include <string.h>
#include <unistd.h>

/*
 * Refresh at most every METRICS_PERIOD seconds (or every sample when
 * samples are rarer): node_exporter is scraped every 15 s or more at most
 * sites, so writing at every tick (10 a second while sampling is dense)
 * would only cost renames that nobody reads.
 */
#define METRICS_PERIOD 5.0

void run_metrics_init(struct run_metrics *m, const struct run_opts *o)
{
	char host[64] = "";

	memset(m, 0, sizeof(*m));
	m->path = o->metrics;
	m->period = o->interval > METRICS_PERIOD ? o->interval : METRICS_PERIOD;
	m->next = 0;
	snprintf(m->jobid, sizeof(m->jobid), "%s", o->task.job[0] ? o->task.job : o->job ? o->job : "");
	snprintf(m->step, sizeof(m->step), "%s", o->task.step);
	if (o->task.known)
		snprintf(m->task, sizeof(m->task), "%ld", o->task.id);
	else
		snprintf(m->task, sizeof(m->task), "0");
	if (o->task.node[0]) {
		snprintf(m->host, sizeof(m->host), "%s", o->task.node);
	} else {
		gethostname(host, sizeof(host) - 1);
		host[strcspn(host, ".")] = '\0';
		snprintf(m->host, sizeof(m->host), "%s", host);
	}
	m->rank_offset = o->task.known ? o->task.rank_offset : 0;
}

void run_metrics_count(struct run_metrics *m, const struct cohort_event *ev)
{
	cohort_metrics_count(m->events, ev);
}

int run_metrics_write(struct run_metrics *m, const struct cohort_watch *w, bool final)
{
	struct cohort_publish_opts po = {
		/* Atomic against a reader either way; a metrics file need not survive a power loss. */
		.flags = COHORT_PUBLISH_NOSYNC, .why = m->error, .why_size = sizeof(m->error),
	};
	struct cohort_metrics_task t = {
		.jobid = m->jobid, .step = m->step, .task = m->task, .host = m->host,
		.rank_offset = m->rank_offset, .watch = w, .events = m->events, .final = final,
	};
	double now = cohort_watch_now(w);
	int r;

	struct cohort_watch_totals tot;

	if (!m->path || (!final && now < m->next))
		return 0;
	cohort_watch_totals(w, &tot);
	if (!final && tot.ticks == 0)
		return 0;   /* nothing sampled yet: the first file holds the first sample */
	m->next = now + m->period;
	r = cohort_metrics_publish(m->path, &t, 1, &po);
	if (r < 0 && !m->said) {
		m->said = true;
		return 1;
	}
	if (r == 0)
		m->said = false;
	return 0;
}
