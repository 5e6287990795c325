/*
 * spank-metrics.c - `cohort spank-watch --metrics DIR`: the step's tasks on
 * this node as one Prometheus textfile, DIR/cohort_<job>_<step>_<host>.prom,
 * for node_exporter's textfile collector (docs/admin.md, "Metrics").
 *
 * The file is refreshed every few seconds while the step runs and written
 * a last time at its end, with workers_running 0; it is then left for
 * the site's Prometheus to scrape. Files that nobody refreshed for
 * STALE_S seconds (steps that ended, a helper that was killed) are
 * removed by every helper of the node when it starts and when it ends, so
 * the directory holds the steps running now and those that ended lately.
 * No process stays behind to remove a file later: slurmstepd waits for
 * the helper, and a step's cgroup cannot go while a process of ours is in
 * it.
 */
#include "spank-metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_TASKS 256
#define PERIOD_S 5.0
#define STALE_S 600

static struct {
	char dir[COHORT_PATH_MAX], path[COHORT_PATH_MAX];
	char job[COHORT_ID_MAX], step[COHORT_ID_MAX], host[COHORT_ID_MAX];
	double period, next;
	struct cohort_metrics_task t[MAX_TASKS];
	char ids[MAX_TASKS][24];
	uint64_t events[MAX_TASKS][COHORT_EVENT_KIND_MAX];
	size_t n;
	int said;
} m;

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Remove the *.prom files of cohort that no helper refreshed for STALE_S seconds, and dead writers' temporary files. */
static void sweep(void)
{
	time_t now = time(NULL);
	struct dirent *de;
	DIR *d = opendir(m.dir);

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		struct stat st;

		if (strncmp(de->d_name, "cohort_", 7) != 0 || len < 12 || strcmp(de->d_name + len - 5, ".prom") != 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (now - st.st_mtime > STALE_S && unlinkat(dirfd(d), de->d_name, 0) == 0)
			fprintf(stderr, "cohort spank-watch: removed %s/%s, not refreshed for %ld s\n", m.dir,
			        de->d_name, (long)(now - st.st_mtime));
	}
	closedir(d);
	cohort_publish_clean(m.dir, NULL);
}

int spank_metrics_open(const char *dir, const char *job, const char *step, const char *host,
                       double interval)
{
	char why[COHORT_MSG_MAX];
	int r;

	memset(&m, 0, sizeof(m));
	if (snprintf(m.dir, sizeof(m.dir), "%s", dir) >= (int)sizeof(m.dir) ||
	    snprintf(m.path, sizeof(m.path), "%s/cohort_%s_%s_%s.prom", dir, job, step, host) >= (int)sizeof(m.path)) {
		fprintf(stderr, "cohort spank-watch: --metrics %s: the path is too long: no metrics\n", dir);
		m.path[0] = '\0';
		return -ENAMETOOLONG;
	}
	r = cohort_metrics_check_path(m.path, why, sizeof(why));
	if (r < 0) {
		fprintf(stderr, "cohort spank-watch: --metrics %s: %s: no metrics for this step\n", dir, why);
		m.path[0] = '\0';
		return r;
	}
	snprintf(m.job, sizeof(m.job), "%s", job);
	snprintf(m.step, sizeof(m.step), "%s", step);
	snprintf(m.host, sizeof(m.host), "%s", host);
	m.period = interval > PERIOD_S ? interval : PERIOD_S;
	sweep();
	return 0;
}

void spank_metrics_watch(long id, const struct cohort_watch *w)
{
	struct cohort_metrics_task *t;

	if (!m.path[0] || m.n == MAX_TASKS)
		return;
	t = &m.t[m.n];
	snprintf(m.ids[m.n], sizeof(m.ids[m.n]), "%ld", id);
	*t = (struct cohort_metrics_task){
		.jobid = m.job, .step = m.step, .task = m.ids[m.n], .host = m.host,
		.rank_offset = id, .watch = w, .events = m.events[m.n],
	};
	m.n++;
	m.next = 0;   /* a new task: said at the next tick */
}

void spank_metrics_event(const struct cohort_watch *w, const struct cohort_event *ev)
{
	for (size_t i = 0; i < m.n; i++)
		if (m.t[i].watch == w)
			cohort_metrics_count(m.events[i], ev);
}

static void write_now(int final)
{
	char err[COHORT_MSG_MAX] = "";
	struct cohort_publish_opts po = {
		.flags = COHORT_PUBLISH_NOSYNC, .mode = 0644, .why = err, .why_size = sizeof(err),
	};
	int r;

	for (size_t i = 0; i < m.n; i++)
		m.t[i].final = final;
	r = cohort_metrics_publish(m.path, m.t, m.n, &po);
	if (r < 0 && !m.said)
		fprintf(stderr, "cohort spank-watch: metrics: %s\n", err);
	m.said = r < 0;
}

void spank_metrics_tick(void)
{
	double now = mono();

	if (!m.path[0] || !m.n || now < m.next)
		return;
	m.next = now + m.period;
	write_now(0);
}

void spank_metrics_close(void)
{
	if (!m.path[0])
		return;
	if (m.n)
		write_now(1);
	sweep();
	m.n = 0;
	m.path[0] = '\0';
}
