/*
 * metrics.c - the watcher's state as Prometheus text, for node_exporter's
 * textfile collector (include/cohort/metrics.h lists the metrics).
 *
 * The text format wants every series of a family right after its HELP and
 * TYPE lines, so the text is written family by family over all tasks and
 * workers, from one snapshot of each watcher taken first: every figure of
 * a file comes from the same sample.
 */
#include "internal.h"

#include "cohort/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing text; err sticks at the first failure, so callers check once. */
struct text {
	char *p;
	size_t len, cap;
	int err;
};

static void grow(struct text *t, size_t more)
{
	size_t cap;
	char *p;

	if (t->err || t->len + more + 1 <= t->cap)
		return;
	cap = t->cap ? t->cap : 4096;
	while (cap < t->len + more + 1)
		cap *= 2;
	p = realloc(t->p, cap);
	if (!p) {
		t->err = -ENOMEM;
		return;
	}
	t->p = p;
	t->cap = cap;
}

static void put(struct text *t, const char *s, size_t n)
{
	grow(t, n);
	if (t->err)
		return;
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void __attribute__((format(printf, 2, 3))) putf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->err = t->err ? t->err : -EINVAL;
		return;
	}
	grow(t, (size_t)n);
	if (t->err)
		return;
	va_start(ap, fmt);
	vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8. */
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return len;
}

/* A label value as the format wants it: \\, \", \n escaped, bytes that are not UTF-8 as U+FFFD. */
static void put_value(struct text *t, const char *v)
{
	const unsigned char *s = (const unsigned char *)(v ? v : "");
	size_t n = strlen((const char *)s);

	while (n > 0) {
		size_t k = utf8_len(s, n);

		if (k == 0) {
			put(t, "\xef\xbf\xbd", 3);
			k = 1;
		} else if (*s == '\\') {
			put(t, "\\\\", 2);
		} else if (*s == '"') {
			put(t, "\\\"", 2);
		} else if (*s == '\n') {
			put(t, "\\n", 2);
		} else {
			put(t, (const char *)s, k);
		}
		s += k;
		n -= k;
	}
}

/* A task as read once: the totals and every worker. */
struct snap {
	const struct cohort_metrics_task *task;
	struct cohort_watch_totals tot;
	const struct cohort_worker_state *ws;
	struct cohort_worker_state *own;     /* ws when read from a watcher */
	unsigned nw;
};

static int take(struct snap *s, const struct cohort_metrics_task *task)
{
	unsigned n = 0;

	memset(s, 0, sizeof(*s));
	s->task = task;
	if (!task->watch) {
		if (!task->totals || (task->nworkers && !task->workers))
			return -EINVAL;
		s->tot = *task->totals;
		s->ws = task->workers;
		s->nw = task->nworkers;
		return 0;
	}
	cohort_watch_totals(task->watch, &s->tot);
	/* The watcher does not say how many ranks it has; cohort_watch_worker() does, by -ERANGE. */
	for (size_t cap = 0;; n++) {
		if (n == cap) {
			struct cohort_worker_state *p;

			cap = cap ? cap * 2 : 16;
			p = realloc(s->own, cap * sizeof(*p));
			if (!p) {
				free(s->own);
				s->own = NULL;
				return -ENOMEM;
			}
			s->own = p;
		}
		if (cohort_watch_worker(task->watch, n, &s->own[n]) < 0)
			break;
	}
	s->ws = s->own;
	s->nw = n;
	return 0;
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	putf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* "name{jobid=...,step=...,task=...,host=..." without the closing brace. */
static void series(struct text *t, const char *name, const struct cohort_metrics_task *k)
{
	putf(t, "%s{jobid=\"", name);
	put_value(t, k->jobid);
	put(t, "\",step=\"", 8);
	put_value(t, k->step);
	put(t, "\",task=\"", 8);
	put_value(t, k->task);
	put(t, "\",host=\"", 8);
	put_value(t, k->host);
	put(t, "\"", 1);
}

static void task_line(struct text *t, const char *name, const struct snap *s, uint64_t v)
{
	series(t, name, s->task);
	putf(t, "} %" PRIu64 "\n", v);
}

static void worker_line(struct text *t, const char *name, const struct snap *s, unsigned k, uint64_t v)
{
	series(t, name, s->task);
	putf(t, ",rank=\"%ld\",worker=\"%u\"} %" PRIu64 "\n", s->task->rank_offset + (long)k, k, v);
}

/* Which figure of a task a family shows; 0 when the series is left out. */
enum task_fig {
	T_WORKERS, T_RUNNING, T_RSS, T_PSS, T_USS, T_CG_USAGE, T_CG_PEAK, T_CG_LIMIT, T_OOM, T_SAMPLES
};

static int task_fig(const struct snap *s, enum task_fig f, uint64_t *v)
{
	const struct cohort_watch_totals *o = &s->tot;
	bool sampled = o->t >= 0;
	uint64_t running = 0;

	switch (f) {
	case T_WORKERS: *v = s->nw; return 1;
	case T_RUNNING:
		for (unsigned k = 0; k < s->nw; k++)
			running += s->ws[k].running != 0;
		*v = s->task->final ? 0 : running;
		return 1;
	case T_RSS: *v = o->rss_sum; return sampled;
	case T_PSS: *v = o->pss_sum; return sampled;
	case T_USS: *v = o->uss_sum; return sampled;
	case T_CG_USAGE: *v = o->cg_usage; return o->has_cgroup;
	case T_CG_PEAK: *v = o->cg_peak; return o->has_cgroup && o->cg_peak > 0;
	/* No limit is UINT64_MAX (and v1's 2^63-ish "unlimited"): no series rather than a false figure. */
	case T_CG_LIMIT: *v = o->cg_limit; return o->has_cgroup && o->cg_limit && o->cg_limit < (1ULL << 62);
	case T_OOM: *v = o->cg_oom_kill; return o->has_cgroup;
	case T_SAMPLES: *v = o->ticks; return 1;
	}
	return 0;
}

enum worker_fig {
	W_RUNNING, W_PROCS, W_RSS, W_PSS, W_USS, W_USED, W_PEAK_USED, W_CG_USAGE, W_CG_PEAK, W_OOM
};

static int worker_fig(const struct snap *s, const struct cohort_worker_state *w, enum worker_fig f,
                      uint64_t *v)
{
	bool started = w->pid > 0 || w->running || w->ended;

	switch (f) {
	case W_RUNNING: *v = !s->task->final && w->running; return 1;
	case W_PROCS: *v = w->running ? w->nprocs : 0; return 1;
	case W_RSS: *v = w->rss; return started;
	case W_PSS: *v = w->pss; return started;
	case W_USS: *v = w->uss; return started;
	case W_USED: *v = w->used; return started;
	case W_PEAK_USED: *v = w->peak_used; return started;
	case W_CG_USAGE: *v = w->cg_usage; return w->has_cgroup_usage;
	case W_CG_PEAK: *v = w->peak_cgroup; return w->cgroup[0] && w->peak_cgroup > 0;
	case W_OOM: *v = w->oom_kills_below; return started;
	}
	return 0;
}

static const struct {
	const char *name, *type, *help;
	enum task_fig fig;
} task_families[] = {
	{ "cohort_task_workers", "gauge", "Workers of the task.", T_WORKERS },
	{ "cohort_task_workers_running", "gauge", "Workers of the task running now (0 once the task ended).", T_RUNNING },
	{ "cohort_task_rss_bytes", "gauge", "RSS summed over the processes of every worker, at the last sample.", T_RSS },
	{ "cohort_task_pss_bytes", "gauge", "PSS summed over the processes of every worker (shared pages counted once), at the last sample.", T_PSS },
	{ "cohort_task_uss_bytes", "gauge", "USS (private pages) summed over the processes of every worker, at the last sample.", T_USS },
	{ "cohort_task_cgroup_usage_bytes", "gauge", "Memory usage of the job's cgroup, at the last sample.", T_CG_USAGE },
	{ "cohort_task_cgroup_peak_bytes", "gauge", "Peak memory usage of the job's cgroup, as the kernel counts it.", T_CG_PEAK },
	{ "cohort_task_cgroup_limit_bytes", "gauge", "Memory limit of the job's cgroup.", T_CG_LIMIT },
	{ "cohort_task_oom_kills_total", "counter", "OOM kills counted by the job's cgroup.", T_OOM },
	{ "cohort_task_samples_total", "counter", "Samples the watcher took.", T_SAMPLES },
};

static const struct {
	const char *name, *type, *help;
	enum worker_fig fig;
} worker_families[] = {
	{ "cohort_worker_running", "gauge", "1 while the worker runs.", W_RUNNING },
	{ "cohort_worker_processes", "gauge", "Processes of the worker: its root and every descendant.", W_PROCS },
	{ "cohort_worker_rss_bytes", "gauge", "RSS summed over the worker's processes, at the last sample.", W_RSS },
	{ "cohort_worker_pss_bytes", "gauge", "PSS summed over the worker's processes, at the last sample.", W_PSS },
	{ "cohort_worker_uss_bytes", "gauge", "USS summed over the worker's processes, at the last sample.", W_USS },
	{ "cohort_worker_used_bytes", "gauge", "Memory of the worker judged against its limit: the PSS estimate or its cgroup's working set, the larger.", W_USED },
	{ "cohort_worker_peak_used_bytes", "gauge", "The largest the judged memory of the worker was.", W_PEAK_USED },
	{ "cohort_worker_cgroup_usage_bytes", "gauge", "Memory usage of the worker's own cgroup, at the last sample.", W_CG_USAGE },
	{ "cohort_worker_cgroup_peak_bytes", "gauge", "Peak memory usage of the worker's own cgroup, as the kernel counts it.", W_CG_PEAK },
	{ "cohort_worker_oom_kills_total", "counter", "OOM kills of the worker's processes.", W_OOM },
};

static void format_all(struct text *t, const struct snap *s, size_t n)
{
	uint64_t v;

	for (size_t f = 0; f < sizeof(task_families) / sizeof(task_families[0]); f++) {
		family(t, task_families[f].name, task_families[f].type, task_families[f].help);
		for (size_t i = 0; i < n; i++)
			if (task_fig(&s[i], task_families[f].fig, &v))
				task_line(t, task_families[f].name, &s[i], v);
	}
	/* Every kind, 0 included: a counter that appears only once it is 1 hides its first increase. */
	family(t, "cohort_events_total", "counter",
	       "Events the watcher raised, by kind (leak, cow_unshare, oom_kill, limit, warning, ...).");
	for (size_t i = 0; i < n; i++)
		for (int kind = 1; kind < COHORT_EVENT_KIND_MAX; kind++) {
			series(t, "cohort_events_total", s[i].task);
			put(t, ",kind=\"", 7);
			put_value(t, cohort_event_name((enum cohort_event_kind)kind));
			putf(t, "\"} %" PRIu64 "\n", s[i].task->events ? s[i].task->events[kind] : 0);
		}
	for (size_t f = 0; f < sizeof(worker_families) / sizeof(worker_families[0]); f++) {
		family(t, worker_families[f].name, worker_families[f].type, worker_families[f].help);
		for (size_t i = 0; i < n; i++)
			for (unsigned k = 0; k < s[i].nw; k++)
				if (worker_fig(&s[i], &s[i].ws[k], worker_families[f].fig, &v))
					worker_line(t, worker_families[f].name, &s[i], k, v);
	}
}

void cohort_metrics_count(uint64_t *counts, const struct cohort_event *ev)
{
	if (counts && ev && ev->kind > 0 && ev->kind < COHORT_EVENT_KIND_MAX)
		counts[ev->kind]++;
}

int cohort_metrics_format(const struct cohort_metrics_task *tasks, size_t ntasks,
                                        char **ret_text, size_t *ret_len)
{
	struct text t = { 0 };
	struct snap *s = NULL;
	size_t taken = 0;
	int r = 0;

	if ((!tasks && ntasks) || !ret_text)
		return -EINVAL;
	if (ntasks) {
		s = calloc(ntasks, sizeof(*s));
		if (!s)
			return -ENOMEM;
	}
	for (; taken < ntasks; taken++) {
		r = take(&s[taken], &tasks[taken]);
		if (r < 0)
			goto out;
	}
	grow(&t, 0);
	format_all(&t, s, ntasks);
	r = t.err;
	if (r < 0)
		goto out;
	*ret_text = t.p;
	if (ret_len)
		*ret_len = t.len;
	t.p = NULL;
out:
	for (size_t i = 0; i < taken; i++)
		free(s[i].own);
	free(s);
	free(t.p);
	return r;
}

int cohort_metrics_publish(const char *path, const struct cohort_metrics_task *tasks,
                                         size_t ntasks, const struct cohort_publish_opts *opts)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	if (!path)
		return -EINVAL;
	r = cohort_metrics_format(tasks, ntasks, &text, &len);
	if (r < 0) {
		if (opts && opts->why && opts->why_size)
			snprintf(opts->why, opts->why_size, "cannot format the metrics for %s: %s", path,
			         cohort_strerror(r));
		return r;
	}
	r = cohort_publish_data(path, text, len, opts);
	free(text);
	return r;
}

int cohort_metrics_check_path(const char *path, char *why, size_t why_size)
{
	struct cohort_publish pub;
	struct cohort_publish_opts opts = { .flags = COHORT_PUBLISH_NOSYNC };
	int r;

	if (!path || !*path) {
		if (why && why_size)
			snprintf(why, why_size, "an empty metrics path: name a file, such as DIR/cohort.prom");
		return -EINVAL;
	}
	r = cohort_publish_open(&pub, path, &opts);
	if (r < 0) {
		if (why && why_size)
			snprintf(why, why_size, "%s", pub.why);
		return r;
	}
	cohort_publish_abort(&pub);
	return 0;
}
