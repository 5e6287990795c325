/*
 * cohort/metrics.h - the watcher's state as Prometheus metrics, for
 * node_exporter's textfile collector.
 *
 * Part of libcohort; include <cohort.h> for all of it. The conventions of
 * the whole API are at the top of cohort.h.
 *
 * The text is Prometheus's text exposition format (version 0.0.4, which
 * node_exporter's textfile collector reads): for each metric family a
 * "# HELP" and a "# TYPE" line, then its series, grouped; no timestamps
 * (the textfile collector refuses them). Names start with "cohort_",
 * figures are in base units (bytes), counters end in "_total". Every
 * series carries the labels jobid, step, task and host (as Princeton's
 * jobstats names them); per-worker series add rank (the worker's rank in
 * the job) and worker (its index in the task, 0..N-1). Label values are
 * escaped as the format says (backslash, double quote, newline), and bytes
 * that are not UTF-8 are replaced by U+FFFD, so that a hostile host or job
 * name can neither break a line nor make the file unreadable.
 *
 * The metrics, for a task (one watcher):
 *   cohort_task_workers               gauge    workers of the task
 *   cohort_task_workers_running       gauge    of them running now (0 in a final file)
 *   cohort_task_rss_bytes             gauge    RSS summed over every worker's processes
 *   cohort_task_pss_bytes             gauge    PSS summed (shared pages counted once)
 *   cohort_task_uss_bytes             gauge    USS summed (private pages)
 *   cohort_task_cgroup_usage_bytes    gauge    the job's cgroup: usage (when read)
 *   cohort_task_cgroup_peak_bytes     gauge    the job's cgroup: its peak (when read)
 *   cohort_task_cgroup_limit_bytes    gauge    the job's cgroup: its limit (when it has one)
 *   cohort_task_oom_kills_total       counter  OOM kills the job's cgroup counted
 *   cohort_task_samples_total         counter  samples the watcher took
 *   cohort_events_total{kind}         counter  events the watcher raised, by kind
 *                                              (cohort_event_name(): leak, oom_kill, ...)
 * and for each worker:
 *   cohort_worker_running             gauge    1 while it runs
 *   cohort_worker_processes           gauge    its root and descendants
 *   cohort_worker_rss_bytes           gauge    RSS of its processes
 *   cohort_worker_pss_bytes           gauge    PSS of its processes
 *   cohort_worker_uss_bytes           gauge    USS of its processes
 *   cohort_worker_used_bytes          gauge    the figure judged against its limit
 *   cohort_worker_peak_used_bytes     gauge    the largest that figure was
 *   cohort_worker_cgroup_usage_bytes  gauge    its own cgroup's usage (when it has one)
 *   cohort_worker_cgroup_peak_bytes   gauge    its own cgroup's exact peak (when it has one)
 *   cohort_worker_oom_kills_total     counter  OOM kills of its processes
 * A series whose figure is not known (no cgroup read yet) is left out,
 * never written as 0.
 */
#ifndef COHORT_METRICS_H
#define COHORT_METRICS_H

#include "file.h"
#include "watch.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One task's state, as the caller describes it. Zero-initialise. The
 * labels may be NULL (written as empty values, which Prometheus treats as
 * absent). Either watch is set, and the state is read from it at the
 * moment of the call, or watch is NULL and totals, workers and nworkers
 * give it (a state kept or made up by the caller: tests, a replay).
 */
struct cohort_metrics_task {
	const char *jobid;              /* label jobid: the SLURM job id, or the job's name */
	const char *step;               /* label step: "0", "batch", ... */
	const char *task;               /* label task: the task's id in the step */
	const char *host;               /* label host: the node's short name */
	long rank_offset;               /* the job-wide rank of worker 0 (label rank = this + worker) */
	const struct cohort_watch *watch;
	const struct cohort_watch_totals *totals;      /* when watch is NULL */
	const struct cohort_worker_state *workers;     /* when watch is NULL: nworkers of them */
	unsigned nworkers;
	/*
	 * Events seen so far, indexed by enum cohort_event_kind
	 * (COHORT_EVENT_KIND_MAX entries; index 0 unused), as
	 * cohort_metrics_count() keeps them; NULL: none.
	 */
	const uint64_t *events;
	int final;                      /* 1: the task ended; no worker is said to run */
};

/*
 * Count one event into counts (COHORT_EVENT_KIND_MAX entries), for
 * cohort_metrics_task.events. Kinds out of range are ignored. Cannot fail.
 */
COHORT_EXPORT void cohort_metrics_count(uint64_t *counts, const struct cohort_event *ev);

/*
 * Format ntasks tasks (each metric family once, the series of every task
 * and worker under it) as Prometheus text. On success stores a malloc'd,
 * NUL-terminated text in *ret_text (the caller frees it) and its length in
 * *ret_len (may be NULL) and returns 0. Returns -EINVAL when tasks is NULL
 * with ntasks > 0 or a task has neither watch nor totals, -ENOMEM.
 * ntasks 0 gives the HELP and TYPE lines only.
 */
COHORT_EXPORT int cohort_metrics_format(const struct cohort_metrics_task *tasks, size_t ntasks,
                                        char **ret_text, size_t *ret_len);

/*
 * Format as cohort_metrics_format() and publish the text at path
 * atomically (cohort_publish_data() with opts, which may be NULL), so a
 * reader (node_exporter) sees the previous file or this one, never a part.
 * The name should end in ".prom" for the textfile collector. Returns 0, or
 * an error of either call; opts->why, when given, then says what failed.
 * The target is untouched on failure.
 */
COHORT_EXPORT int cohort_metrics_publish(const char *path, const struct cohort_metrics_task *tasks,
                                         size_t ntasks, const struct cohort_publish_opts *opts);

/*
 * Whether a metrics file could be published at path, tried now: path
 * names no directory, its directory exists and a temporary file can be
 * created there (created and removed again; the target is untouched).
 * For a caller that wants to refuse a bad path before it starts a job.
 * Returns 0, or the -errno of cohort_publish_open() (-ENOENT, -EACCES,
 * -EROFS, -EISDIR, -ENOTDIR, -ENAMETOOLONG ...) with the reason and the
 * fix in why (why_size bytes; may be NULL).
 */
COHORT_EXPORT int cohort_metrics_check_path(const char *path, char *why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif /* COHORT_METRICS_H */
