/*
 * test-metrics.c - Prometheus metrics (src/metrics.c): the text of a
 * fixture state line by line, hostile label values, bad paths, a real
 * `cohort run --metrics` checked by promtool, the file scraped through a
 * real prometheus-node-exporter, and the SLURM plugin's metrics=DIR in the
 * test cluster.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static bool have_program(const char *name)
{
	struct cmd_result r;
	bool ok;

	cmd_run(&r, "command -v %s >/dev/null 2>&1", name);
	ok = r.status == 0;
	cmd_free(&r);
	return ok;
}

/* Lines of text equal to line, counted. */
static int count_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	int count = 0;

	for (const char *p = text; p && *p; ) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		count += len == n && memcmp(p, line, n) == 0;
		p = nl ? nl + 1 : NULL;
	}
	return count;
}

#define CHECK_LINE(text, line)                                                        \
	CHECK_MSG(count_line((text), (line)) == 1, "not exactly once: %s\nin:\n%s", (line), (text))

/* Lines of text that start with prefix. */
static int count_prefix(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	int count = 0;

	for (const char *p = text; p && *p; ) {
		const char *nl = strchr(p, '\n');

		count += strncmp(p, prefix, n) == 0;
		p = nl ? nl + 1 : NULL;
	}
	return count;
}

/* The value of the first series line that starts with prefix; fails the test when there is none. */
static double value_of(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *p = text; p && *p; ) {
		const char *nl = strchr(p, '\n');

		if (strncmp(p, prefix, n) == 0) {
			const char *sp = memchr(p, '}', nl ? (size_t)(nl - p) : strlen(p));

			CHECK(sp != NULL);
			return strtod(sp + 1, NULL);
		}
		p = nl ? nl + 1 : NULL;
	}
	test_fail(__FILE__, __LINE__, "no series %s in:\n%s", prefix, text);
}

/* Every series line that starts with prefix has the value v (and there is one at least). */
static void check_all_values(const char *text, const char *prefix, double v)
{
	size_t n = strlen(prefix);
	int seen = 0;

	for (const char *p = text; p && *p; ) {
		const char *nl = strchr(p, '\n');

		if (strncmp(p, prefix, n) == 0) {
			const char *sp = memchr(p, '}', nl ? (size_t)(nl - p) : strlen(p));

			CHECK(sp != NULL);
			CHECK_MSG(strtod(sp + 1, NULL) == v, "%.*s: not %g", (int)(nl ? nl - p : 80), p, v);
			seen++;
		}
		p = nl ? nl + 1 : NULL;
	}
	CHECK_MSG(seen > 0, "no series %s", prefix);
}

/*
 * The structure the text format asks for: every sample line's metric
 * comes right after its family's HELP and TYPE (the last TYPE seen), each
 * family once, every line ends in a newline, no timestamps (two fields
 * after the labels would be one).
 */
static void check_structure(const char *text)
{
	char family[128] = "", seen[64][128];
	size_t nseen = 0;

	CHECK_MSG(text[0] && text[strlen(text) - 1] == '\n', "the text does not end in a newline");
	for (const char *p = text; *p; ) {
		const char *nl = strchr(p, '\n');
		char line[2048], name[128], type[32];
		size_t len = (size_t)(nl - p);

		CHECK(nl != NULL);
		CHECK_LT(len, sizeof(line));
		memcpy(line, p, len);
		line[len] = '\0';
		p = nl + 1;
		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
			for (size_t i = 0; i < nseen; i++)
				CHECK_MSG(strcmp(seen[i], name) != 0, "family %s twice", name);
			CHECK_LT(nseen, 64);
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
			snprintf(family, sizeof(family), "%s", name);
			CHECK_MSG(strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0, "type %s", type);
			if (strcmp(type, "counter") == 0)
				CHECK_MSG(len > 6 && strstr(name, "_total") == name + strlen(name) - 6,
				          "counter %s does not end in _total", name);
			CHECK_MSG(strncmp(name, "cohort_", 7) == 0, "%s is not cohort_", name);
			continue;
		}
		CHECK_MSG(family[0] && strncmp(line, family, strlen(family)) == 0 && line[strlen(family)] == '{',
		          "the series '%s' is not under its family (%s)", line, family);
		/* After the closing brace: exactly one value. */
		{
			const char *brace = strrchr(line, '}');
			char v[64], extra[64];

			CHECK(brace != NULL);
			CHECK_MSG(sscanf(brace + 1, " %63s %63s", v, extra) == 1, "not one value: %s", line);
		}
	}
}

/* ---- the formatter on a fixture state ---- */

static void fixture(struct cohort_watch_totals *tot, struct cohort_worker_state ws[2])
{
	memset(tot, 0, sizeof(*tot));
	memset(ws, 0, 2 * sizeof(*ws));
	tot->t = 12.5;
	tot->rss_sum = 300ULL << 20;
	tot->pss_sum = 120ULL << 20;
	tot->uss_sum = 80ULL << 20;
	tot->has_cgroup = 1;
	tot->cg_usage = 200ULL << 20;
	tot->cg_peak = 250ULL << 20;
	tot->cg_limit = 1ULL << 30;
	tot->cg_oom_kill = 1;
	tot->ticks = 42;
	ws[0] = (struct cohort_worker_state){
		.rank = 0, .pid = 100, .running = 1, .nprocs = 3, .rss = 200ULL << 20, .pss = 70ULL << 20,
		.uss = 50ULL << 20, .used = 72ULL << 20, .peak_used = 90ULL << 20, .has_cgroup_usage = 1,
		.cg_usage = 75ULL << 20, .peak_cgroup = 91ULL << 20,
	};
	snprintf(ws[0].cgroup, sizeof(ws[0].cgroup), "/sys/fs/cgroup/cohort-1/w0");
	/* Rank 1 was OOM-killed: ended, no cgroup of its own. */
	ws[1] = (struct cohort_worker_state){
		.rank = 1, .pid = 101, .ended = 1, .status = 9, .oom_killed = 1, .oom_kills_below = 1,
		.rss = 100ULL << 20, .pss = 50ULL << 20, .uss = 30ULL << 20, .used = 50ULL << 20,
		.peak_used = 140ULL << 20,
	};
}

TEST(metrics_format_fixture_lines)
{
	struct cohort_watch_totals tot;
	struct cohort_worker_state ws[2];
	uint64_t ev[COHORT_EVENT_KIND_MAX] = { 0 };
	struct cohort_event e = { .kind = COHORT_EVENT_LEAK };
	struct cohort_metrics_task t = {
		.jobid = "4242", .step = "0", .task = "3", .host = "node7", .rank_offset = 6,
		.totals = &tot, .workers = ws, .nworkers = 2, .events = ev,
	};
	char *text = NULL;
	size_t len = 0;

	fixture(&tot, ws);
	cohort_metrics_count(ev, &e);
	cohort_metrics_count(ev, &e);
	e.kind = COHORT_EVENT_OOM_KILL;
	cohort_metrics_count(ev, &e);
	e.kind = COHORT_EVENT_KIND_MAX;   /* out of range: ignored, not written past the end */
	cohort_metrics_count(ev, &e);
	e.kind = 0;
	cohort_metrics_count(ev, &e);
	CHECK_OK(cohort_metrics_format(&t, 1, &text, &len));
	CHECK_EQ(len, strlen(text));
	check_structure(text);

#define L "{jobid=\"4242\",step=\"0\",task=\"3\",host=\"node7\""
	CHECK_LINE(text, "# HELP cohort_task_workers Workers of the task.");
	CHECK_LINE(text, "# TYPE cohort_task_workers gauge");
	CHECK_LINE(text, "cohort_task_workers" L "} 2");
	CHECK_LINE(text, "cohort_task_workers_running" L "} 1");
	CHECK_LINE(text, "cohort_task_rss_bytes" L "} 314572800");
	CHECK_LINE(text, "cohort_task_pss_bytes" L "} 125829120");
	CHECK_LINE(text, "cohort_task_uss_bytes" L "} 83886080");
	CHECK_LINE(text, "cohort_task_cgroup_usage_bytes" L "} 209715200");
	CHECK_LINE(text, "cohort_task_cgroup_peak_bytes" L "} 262144000");
	CHECK_LINE(text, "cohort_task_cgroup_limit_bytes" L "} 1073741824");
	CHECK_LINE(text, "# TYPE cohort_task_oom_kills_total counter");
	CHECK_LINE(text, "cohort_task_oom_kills_total" L "} 1");
	CHECK_LINE(text, "cohort_task_samples_total" L "} 42");
	CHECK_LINE(text, "# TYPE cohort_events_total counter");
	CHECK_LINE(text, "cohort_events_total" L ",kind=\"leak\"} 2");
	CHECK_LINE(text, "cohort_events_total" L ",kind=\"oom_kill\"} 1");
	CHECK_LINE(text, "cohort_events_total" L ",kind=\"cow_unshare\"} 0");
	/* Every kind, once each. */
	CHECK_EQ(count_prefix(text, "cohort_events_total{"), COHORT_EVENT_KIND_MAX - 1);
	/* Ranks are job-wide (rank_offset + worker), worker is the index in the task. */
	CHECK_LINE(text, "cohort_worker_running" L ",rank=\"6\",worker=\"0\"} 1");
	CHECK_LINE(text, "cohort_worker_running" L ",rank=\"7\",worker=\"1\"} 0");
	CHECK_LINE(text, "cohort_worker_processes" L ",rank=\"6\",worker=\"0\"} 3");
	CHECK_LINE(text, "cohort_worker_processes" L ",rank=\"7\",worker=\"1\"} 0");
	CHECK_LINE(text, "cohort_worker_rss_bytes" L ",rank=\"6\",worker=\"0\"} 209715200");
	CHECK_LINE(text, "cohort_worker_rss_bytes" L ",rank=\"7\",worker=\"1\"} 104857600");
	CHECK_LINE(text, "cohort_worker_pss_bytes" L ",rank=\"6\",worker=\"0\"} 73400320");
	CHECK_LINE(text, "cohort_worker_uss_bytes" L ",rank=\"7\",worker=\"1\"} 31457280");
	CHECK_LINE(text, "cohort_worker_used_bytes" L ",rank=\"6\",worker=\"0\"} 75497472");
	CHECK_LINE(text, "cohort_worker_peak_used_bytes" L ",rank=\"7\",worker=\"1\"} 146800640");
	CHECK_LINE(text, "cohort_worker_cgroup_usage_bytes" L ",rank=\"6\",worker=\"0\"} 78643200");
	CHECK_LINE(text, "cohort_worker_cgroup_peak_bytes" L ",rank=\"6\",worker=\"0\"} 95420416");
	CHECK_LINE(text, "cohort_worker_oom_kills_total" L ",rank=\"6\",worker=\"0\"} 0");
	CHECK_LINE(text, "cohort_worker_oom_kills_total" L ",rank=\"7\",worker=\"1\"} 1");
	/* Rank 1 has no cgroup of its own: no cgroup series rather than a false 0. */
	CHECK_EQ(count_prefix(text, "cohort_worker_cgroup_usage_bytes{"), 1);
	CHECK_EQ(count_prefix(text, "cohort_worker_cgroup_peak_bytes{"), 1);
	free(text);

	/* The final file: nothing is said to run. */
	t.final = 1;
	CHECK_OK(cohort_metrics_format(&t, 1, &text, NULL));
	CHECK_LINE(text, "cohort_task_workers_running" L "} 0");
	CHECK_LINE(text, "cohort_worker_running" L ",rank=\"6\",worker=\"0\"} 0");
	free(text);

	/* Unknown figures are left out: no cgroup read, no limit, no sample yet. */
	tot.has_cgroup = 0;
	tot.t = -1;
	t.final = 0;
	CHECK_OK(cohort_metrics_format(&t, 1, &text, NULL));
	CHECK_EQ(count_prefix(text, "cohort_task_cgroup_"), 0);
	CHECK_EQ(count_prefix(text, "cohort_task_oom_kills_total{"), 0);
	CHECK_EQ(count_prefix(text, "cohort_task_rss_bytes{"), 0);
	CHECK_LINE(text, "# TYPE cohort_task_cgroup_limit_bytes gauge");
	check_structure(text);
	free(text);
	tot.has_cgroup = 1;
	tot.cg_limit = UINT64_MAX;   /* "max": no limit */
	CHECK_OK(cohort_metrics_format(&t, 1, &text, NULL));
	CHECK_EQ(count_prefix(text, "cohort_task_cgroup_limit_bytes{"), 0);
	CHECK_EQ(count_prefix(text, "cohort_task_cgroup_usage_bytes{"), 1);
	free(text);
#undef L
}

/* Two tasks in one file (the plugin's case): each family once, both tasks' series under it. */
TEST(metrics_format_two_tasks_grouped)
{
	struct cohort_watch_totals tot;
	struct cohort_worker_state ws[2];
	struct cohort_metrics_task t[2] = {
		{ .jobid = "9", .step = "batch", .task = "0", .host = "n1", .rank_offset = 0,
		  .totals = &tot, .workers = ws, .nworkers = 1 },
		{ .jobid = "9", .step = "batch", .task = "1", .host = "n1", .rank_offset = 1,
		  .totals = &tot, .workers = ws + 1, .nworkers = 1 },
	};
	char *text = NULL, mark[] = "untouched";

	fixture(&tot, ws);
	CHECK_OK(cohort_metrics_format(t, 2, &text, NULL));
	check_structure(text);
	CHECK_EQ(count_prefix(text, "# TYPE cohort_worker_rss_bytes "), 1);
	CHECK_LINE(text, "cohort_worker_rss_bytes{jobid=\"9\",step=\"batch\",task=\"0\",host=\"n1\",rank=\"0\",worker=\"0\"} 209715200");
	CHECK_LINE(text, "cohort_worker_rss_bytes{jobid=\"9\",step=\"batch\",task=\"1\",host=\"n1\",rank=\"1\",worker=\"0\"} 104857600");
	CHECK_EQ(count_prefix(text, "cohort_events_total{"), 2 * (COHORT_EVENT_KIND_MAX - 1));
	free(text);

	/* No task: the HELP and TYPE lines only. */
	CHECK_OK(cohort_metrics_format(NULL, 0, &text, NULL));
	CHECK_EQ(count_prefix(text, "cohort_"), 0);
	CHECK_EQ(count_prefix(text, "# TYPE cohort_"), count_prefix(text, "# HELP cohort_"));
	CHECK_GE(count_prefix(text, "# TYPE cohort_"), 21);
	free(text);

	/* A task with no state at all is refused, and nothing is returned. */
	text = mark;
	t[1].totals = NULL;
	CHECK_EQ(cohort_metrics_format(t, 2, &text, NULL), -EINVAL);
	CHECK_STREQ(text, "untouched");
	CHECK_EQ(cohort_metrics_format(NULL, 1, &text, NULL), -EINVAL);
}

TEST(metrics_label_escaping)
{
	struct cohort_watch_totals tot;
	struct cohort_worker_state ws[2];
	/* A quote, a backslash and a newline; invalid UTF-8 (a stray byte, an overlong '/', a surrogate); valid UTF-8 kept. */
	struct cohort_metrics_task t = {
		.jobid = "j\"1\\x\ny", .step = "s\xff" "t\xc0\xaf", .task = "\xed\xa0\x80", .host = "n\xc3\xa9ud",
		.totals = &tot, .workers = ws, .nworkers = 1,
	};
	char *text = NULL, path[1024];
	struct cmd_result r;

	fixture(&tot, ws);
	CHECK_OK(cohort_metrics_format(&t, 1, &text, NULL));
	check_structure(text);
	CHECK_LINE(text, "cohort_task_workers{jobid=\"j\\\"1\\\\x\\ny\",step=\"s\xef\xbf\xbdt\xef\xbf\xbd\xef\xbf\xbd\","
	                 "task=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\",host=\"n\xc3\xa9ud\"} 1");
	/* The newline never ends a line early: one line per series, the same count as with tame labels. */
	CHECK_EQ(count_prefix(text, "cohort_"), count_prefix(text, "cohort_task_") + count_prefix(text, "cohort_worker_") +
	         count_prefix(text, "cohort_events_total{"));
	if (have_program("promtool")) {
		snprintf(path, sizeof(path), "%s/hostile.prom", test_tmpdir());
		CHECK_OK(cohort_metrics_publish(path, &t, 1, NULL));
		cmd_run(&r, "promtool check metrics < %s", path);
		CHECK_MSG(r.status == 0, "promtool refused the escaped labels (%d): %s%s", r.status, r.out, r.err);
		cmd_free(&r);
	}
	free(text);
}

/* ---- publishing, and the paths it refuses ---- */

TEST(metrics_publish_and_bad_paths)
{
	struct cohort_watch_totals tot;
	struct cohort_worker_state ws[2];
	struct cohort_metrics_task t = { .jobid = "1", .totals = &tot, .workers = ws, .nworkers = 2 };
	char path[1024], err[COHORT_MSG_MAX], *text, *onfile;
	struct cohort_publish_opts po = { .why = err, .why_size = sizeof(err) };
	DIR *d;
	struct dirent *de;
	int n = 0;

	fixture(&tot, ws);
	snprintf(path, sizeof(path), "%s/m.prom", test_tmpdir());
	CHECK_OK(cohort_metrics_check_path(path, err, sizeof(err)));
	CHECK_MSG(access(path, F_OK) < 0, "the check left %s behind", path);
	CHECK_OK(cohort_metrics_publish(path, &t, 1, &po));
	CHECK_OK(cohort_metrics_format(&t, 1, &text, NULL));
	onfile = read_file(path);
	CHECK_STREQ(onfile, text);
	free(onfile);
	free(text);
	/* Nothing else in the directory: no temporary file left. */
	CHECK((d = opendir(test_tmpdir())) != NULL);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.' || strstr(de->d_name, "cohort-tmp") != NULL;
	closedir(d);
	CHECK_EQ(n, 1);

	snprintf(path, sizeof(path), "%s/no/such/dir/m.prom", test_tmpdir());
	CHECK_EQ(cohort_metrics_check_path(path, err, sizeof(err)), -ENOENT);
	CHECK_CONTAINS(err, "no/such/dir");
	CHECK_EQ(cohort_metrics_publish(path, &t, 1, &po), -ENOENT);
	CHECK_EQ(cohort_metrics_check_path(test_tmpdir(), err, sizeof(err)), -EISDIR);
	CHECK_EQ(cohort_metrics_check_path("", err, sizeof(err)), -EINVAL);
	CHECK_CONTAINS(err, "empty");
	write_file("plain", "x\n");
	snprintf(path, sizeof(path), "%s/plain/m.prom", test_tmpdir());
	CHECK_EQ(cohort_metrics_check_path(path, err, sizeof(err)), -ENOTDIR);
}

/* `cohort run --metrics` refuses a path it cannot write before any worker runs. */
TEST(metrics_run_bad_path_before_launch)
{
	struct cmd_result r;
	char marker[1024];

	snprintf(marker, sizeof(marker), "%s/ran", test_tmpdir());
	cmd_run(&r, "%s/cohort run -q --no-record --metrics %s/none/m.prom -- touch %s", test_build_dir(),
	        test_tmpdir(), marker);
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "cannot write the metrics file");
	CHECK_CONTAINS(r.err, "none");
	CHECK_MSG(access(marker, F_OK) < 0, "the worker ran");
	cmd_free(&r);

	/* A path through a regular file. */
	write_file("plain", "x\n");
	cmd_run(&r, "%s/cohort run -q --no-record --metrics %s/plain/m.prom -- touch %s", test_build_dir(),
	        test_tmpdir(), marker);
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "cannot write the metrics file");
	CHECK_MSG(access(marker, F_OK) < 0, "the worker ran");
	cmd_free(&r);

	/* A directory: the task's own file in it, named by the job. */
	CHECK_OK(mkdir("textfile", 0755) < 0 ? -errno : 0);
	cmd_run(&r, "env -u SLURM_JOB_ID COHORT_JOB=dirjob %s/cohort run -q --no-record --metrics %s/textfile -- true",
	        test_build_dir(), test_tmpdir());
	CHECK_MSG(r.status == 0, "cohort run --metrics DIR (%d): %s", r.status, r.err);
	cmd_free(&r);
	{
		char *text = read_file("textfile/cohort_dirjob.prom");

		CHECK_MSG(text != NULL, "no textfile/cohort_dirjob.prom");
		CHECK_CONTAINS(text, "cohort_task_workers{jobid=\"dirjob\",");
		free(text);
	}

	cmd_run(&r, "%s/cohort run -q --no-record --metrics -- true", test_build_dir());
	CHECK_EQ(r.status, 2);
	CHECK_CONTAINS(r.err, "--metrics needs a file");
	cmd_free(&r);

	/* A directory another user cannot write, as that user (root writes anywhere). */
	if (geteuid() == 0 && have_program("setpriv")) {
		CHECK_OK(mkdir("ro", 0755));
		CHECK_OK(chmod(test_tmpdir(), 0755));
		for (int dirform = 0; dirform < 2; dirform++) {
			cmd_run(&r, "setpriv --reuid=65534 --regid=65534 --clear-groups %s/cohort run -q --no-record "
			        "--metrics %s/ro%s -- touch %s", test_build_dir(), test_tmpdir(),
			        dirform ? "" : "/m.prom", marker);
			CHECK_EQ(r.status, 3);
			CHECK_CONTAINS(r.err, "cannot write the metrics file");
			CHECK_CONTAINS(r.err, "Permission denied");
			CHECK_MSG(access(marker, F_OK) < 0, "the worker ran");
			cmd_free(&r);
		}
	}
}

/* A real small job: the file is there while it runs, final at the end, and promtool accepts it. */
TEST_TIMEOUT(metrics_run_promtool, 90)
{
	struct cmd_result r;
	char path[1024], *text = NULL;
	bool running_seen = false;
	pid_t pid;
	int st;

	if (!have_program("promtool"))
		SKIP("promtool is not installed (Debian package prometheus)");
	snprintf(path, sizeof(path), "%s/job.prom", test_tmpdir());
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char cmd[4096];

		snprintf(cmd, sizeof(cmd), "COHORT_JOB=metricsjob %s/cohort run -q --no-record -n 2 -i 0.2 "
		         "--metrics %s -- %s/tests/runner --helper worker --hold 20M --seconds 4 "
		         ">%s/run.out 2>&1", test_build_dir(), path, test_build_dir(), test_tmpdir());
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	/* While it runs: the first sample writes the file, with both workers running. */
	for (int i = 0; i < 80 && !running_seen; i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		free(text);
		text = read_file(path);
		running_seen = text && strstr(text, "\n# TYPE cohort_worker_oom_kills_total counter\n") &&
		               value_of(text, "cohort_task_workers_running{") == 2;
		nanosleep(&ts, NULL);
	}
	free(text);
	CHECK_MSG(running_seen, "no file with 2 running workers within 4 s");
	st = helper_wait(pid, 60000);
	CHECK_MSG(st == 0, "cohort run ended with %d: %s", st, read_file("run.out"));
	text = read_file(path);
	CHECK(text != NULL);
	check_structure(text);
	CHECK_CONTAINS(text, "cohort_task_workers_running{jobid=\"metricsjob\",");
	check_all_values(text, "cohort_task_workers_running{", 0);
	check_all_values(text, "cohort_worker_running{", 0);
	CHECK_CONTAINS(text, "kind=\"spawn\"} 2\n");
	CHECK_CONTAINS(text, "kind=\"exit\"} 2\n");
	/* Each worker held 20 MiB for 4 s: its peak says so, whenever the samples landed. */
	for (int k = 0; k < 2; k++) {
		char needle[64];
		const char *p;
		unsigned long long v = 0;

		snprintf(needle, sizeof(needle), "rank=\"%d\",worker=\"%d\"} ", k, k);
		p = strstr(strstr(text, "\ncohort_worker_peak_used_bytes{"), needle);
		CHECK_MSG(p && sscanf(p + strlen(needle), "%llu", &v) == 1, "no peak of worker %d:\n%s", k, text);
		CHECK_GE(v, 18ULL << 20);
		CHECK_LE(v, 200ULL << 20);
	}
	cmd_run(&r, "promtool check metrics < %s", path);
	CHECK_MSG(r.status == 0, "promtool check metrics (%d): %s%s", r.status, r.out, r.err);
	cmd_free(&r);
	free(text);
}

/* ---- a real node_exporter ---- */

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	CHECK(fd >= 0);
	CHECK_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0);
	CHECK_OK(getsockname(fd, (struct sockaddr *)&a, &len) < 0 ? -errno : 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/*
 * GET http://127.0.0.1:port/metrics. Returns a malloc'd response (headers
 * and body), or NULL when nothing listens (yet). Bounded: 5 s per poll.
 */
static char *http_get(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n";
	size_t len = 0, cap = 65536;
	char *buf;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return NULL;
	}
	CHECK(write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1));
	buf = malloc(cap);
	CHECK(buf != NULL);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		CHECK_MSG(poll(&p, 1, 5000) == 1, "node_exporter did not answer within 5 s");
		if (len + 1 == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			CHECK(buf != NULL);
		}
		n = read(fd, buf + len, cap - 1 - len);
		CHECK(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return buf;
}

static pid_t exporter = -1;

static void stop_exporter(void)
{
	if (exporter > 0) {
		kill(exporter, SIGKILL);
		waitpid(exporter, NULL, 0);
		exporter = -1;
	}
}

/* Start node_exporter with the textfile collector alone on dir; its port. Retries a port taken meanwhile. */
static int start_exporter(const char *dir)
{
	char listen[64], textdir[1100], log[1100];

	for (int attempt = 0; attempt < 5; attempt++) {
		int port = free_port(), st;

		snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", port);
		snprintf(textdir, sizeof(textdir), "--collector.textfile.directory=%s", dir);
		snprintf(log, sizeof(log), "%s/exporter.log", test_tmpdir());
		exporter = fork();
		CHECK(exporter >= 0);
		if (exporter == 0) {
			int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

			/* Dies with the test's process even if the harness's group kill were missed. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			execlp("prometheus-node-exporter", "prometheus-node-exporter", listen, textdir,
			       "--collector.disable-defaults", "--collector.textfile", (char *)NULL);
			_exit(127);
		}
		atexit(stop_exporter);
		/* Up when it answers; gone when the port was taken (or the options refused). */
		for (int i = 0; i < 200; i++) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			char *resp = http_get(port);

			if (resp) {
				free(resp);
				return port;
			}
			if (waitpid(exporter, &st, WNOHANG) == exporter) {
				exporter = -1;
				break;
			}
			nanosleep(&ts, NULL);
		}
		if (exporter > 0)
			test_fail(__FILE__, __LINE__, "node_exporter did not answer in 10 s: %s", read_file(log));
	}
	test_fail(__FILE__, __LINE__, "node_exporter would not start: %s", read_file(log));
}

TEST_TIMEOUT(metrics_node_exporter_scrape, 90)
{
	struct cohort_watch_totals tot;
	struct cohort_worker_state ws[2];
	struct cohort_metrics_task t = {
		.jobid = "5150", .step = "0", .task = "1", .host = "na\"me", .rank_offset = 2,
		.totals = &tot, .workers = ws, .nworkers = 2,
	};
	char dir[1024], path[1100], *resp, *body;
	struct cmd_result r;
	int port;

	if (!have_program("prometheus-node-exporter"))
		SKIP("prometheus-node-exporter is not installed (Debian package prometheus-node-exporter)");
	cmd_run(&r, "prometheus-node-exporter --help 2>&1 | grep -q -- --collector.disable-defaults");
	if (r.status != 0) {
		cmd_free(&r);
		SKIP("this node_exporter has no --collector.disable-defaults");
	}
	cmd_free(&r);
	fixture(&tot, ws);
	snprintf(dir, sizeof(dir), "%s/textfile", test_tmpdir());
	CHECK_OK(mkdir(dir, 0755) < 0 ? -errno : 0);
	snprintf(path, sizeof(path), "%s/cohort_5150_0_n.prom", dir);
	CHECK_OK(cohort_metrics_publish(path, &t, 1, NULL));
	/* A real run's file beside it: two files of one family must merge. */
	cmd_run(&r, "COHORT_JOB=other %s/cohort run -q --no-record -n 1 --metrics %s/cohort_other.prom -- true",
	        test_build_dir(), dir);
	CHECK_MSG(r.status == 0, "cohort run: %s", r.err);
	cmd_free(&r);

	port = start_exporter(dir);
	resp = http_get(port);
	CHECK(resp != NULL);
	CHECK_MSG(strncmp(resp, "HTTP/1.", 7) == 0 && strstr(resp, " 200 "), "response:\n%.300s", resp);
	body = strstr(resp, "\r\n\r\n");
	CHECK(body != NULL);
	/* The exporter read both files without an error... */
	CHECK_MSG(strstr(body, "\nnode_textfile_scrape_error 0\n"), "textfile collector error:\n%s", body);
	/* ...and serves our series with their labels (it sorts labels by name). */
	CHECK_CONTAINS(body, "\ncohort_worker_rss_bytes{host=\"na\\\"me\",jobid=\"5150\",rank=\"2\",step=\"0\",task=\"1\",worker=\"0\"} 2.097152e+08\n");
	CHECK_CONTAINS(body, "\ncohort_worker_oom_kills_total{host=\"na\\\"me\",jobid=\"5150\",rank=\"3\",step=\"0\",task=\"1\",worker=\"1\"} 1\n");
	CHECK_CONTAINS(body, "\ncohort_task_cgroup_limit_bytes{host=\"na\\\"me\",jobid=\"5150\",step=\"0\",task=\"1\"} 1.073741824e+09\n");
	CHECK_CONTAINS(body, "\ncohort_events_total{host=\"na\\\"me\",jobid=\"5150\",kind=\"leak\",step=\"0\",task=\"1\"} 0\n");
	CHECK_CONTAINS(body, "jobid=\"other\"");
	CHECK_CONTAINS(body, "# TYPE cohort_task_oom_kills_total counter\n");
	{
		char mtime[1200];

		/* node_exporter 1.5 names the file by its path, later ones by its name: either. */
		snprintf(mtime, sizeof(mtime), "\nnode_textfile_mtime_seconds{file=\"%s\"} ", path);
		CHECK_MSG(strstr(body, mtime) || strstr(body, "\nnode_textfile_mtime_seconds{file=\"cohort_5150_0_n.prom\"} "),
		          "no mtime of %s:\n%s", path, body);
	}
	free(resp);

	/* Stopped here, and waited for: nothing of it outlives the test. */
	{
		pid_t p = exporter;

		stop_exporter();
		CHECK_MSG(kill(p, 0) < 0 && errno == ESRCH, "node_exporter %d still there", (int)p);
	}
}

/* ---- the SLURM plugin's metrics=DIR ---- */

/*
 * The plugin's helper on its own (no SLURM): a task named on standard
 * input, the step's file while it runs and final after, stale files of
 * other steps removed, fresh ones and files not cohort's kept.
 */
TEST_TIMEOUT(metrics_spank_watch_helper_file, 60)
{
	struct cmd_result r;
	char *text;

	CHECK_OK(mkdir("spool", 0755) < 0 ? -errno : 0);
	CHECK_OK(mkdir("textfile", 0755) < 0 ? -errno : 0);
	write_file("textfile/cohort_1_0_old.prom", "cohort_task_workers{jobid=\"1\"} 1\n");
	write_file("textfile/cohort_2_0_fresh.prom", "cohort_task_workers{jobid=\"2\"} 1\n");
	write_file("textfile/other.prom", "other_metric 1\n");
	cmd_run(&r, "touch -d '-1 hour' textfile/cohort_1_0_old.prom textfile/other.prom");
	CHECK_EQ(r.status, 0);
	cmd_free(&r);
	/*
	 * A task that lives 5 s (the helper waits up to 3 s for SLURM's task_N
	 * cgroup, then takes the one it has); its standard input closes after
	 * 6 s, as at a step's end.
	 */
	cmd_run(&r, "sleep 5 & p=$!; (echo \"task 5 0 $p\"; sleep 6) | %s/cohort spank-watch --dir spool "
	        "--job 77 --step 0 --ntasks 8 --host nodeA --interval 0.2 --metrics textfile; wait",
	        test_build_dir());
	CHECK_MSG(r.status == 0, "spank-watch (%d): %s", r.status, r.err);
	cmd_free(&r);
	CHECK_MSG(access("textfile/cohort_1_0_old.prom", F_OK) < 0, "the stale file is still there");
	CHECK_MSG(access("textfile/cohort_2_0_fresh.prom", F_OK) == 0, "a fresh file of another step was removed");
	CHECK_MSG(access("textfile/other.prom", F_OK) == 0, "a file not cohort's was removed");
	text = read_file("textfile/cohort_77_0_nodeA.prom");
	CHECK_MSG(text != NULL, "no textfile/cohort_77_0_nodeA.prom");
	check_structure(text);
	CHECK_LINE(text, "cohort_task_workers{jobid=\"77\",step=\"0\",task=\"5\",host=\"nodeA\"} 1");
	CHECK_LINE(text, "cohort_task_workers_running{jobid=\"77\",step=\"0\",task=\"5\",host=\"nodeA\"} 0");
	CHECK_LINE(text, "cohort_worker_running{jobid=\"77\",step=\"0\",task=\"5\",host=\"nodeA\",rank=\"5\",worker=\"0\"} 0");
	CHECK_GE(value_of(text, "cohort_task_samples_total{"), 2);
	free(text);

	/* A directory it cannot use: said in its log, the step watched all the same. */
	cmd_run(&r, "sleep 0.3 & p=$!; (echo \"task 0 0 $p\"; sleep 1) | %s/cohort spank-watch --dir spool "
	        "--job 78 --step 0 --host nodeA --metrics nowhere; wait", test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.err, "--metrics nowhere");
	CHECK_CONTAINS(r.err, "no metrics for this step");
	cmd_free(&r);
	CHECK_MSG(access("spool/0.0.nodeA.ndjson", F_OK) == 0, "the step was not recorded");
}

static void metrics_case(void *arg)
{
	const char *dir = arg;
	char spool[1024], mdir[1024], conf[2200], job[64], path[1400], out[1100];
	struct cmd_result r;
	struct dirent *de;
	char *text;
	DIR *d;
	int nfiles = 0;

	snprintf(spool, sizeof(spool), "%s/spool", test_tmpdir());
	snprintf(mdir, sizeof(mdir), "%s/textfile", test_tmpdir());
	CHECK_OK(mkdir(mdir, 0755) < 0 ? -errno : 0);
	/* A stale file of a step long over: the helpers remove it. */
	write_file("textfile/cohort_1_0_gone.prom", "cohort_task_workers{jobid=\"1\"} 1\n");
	cmd_run(&r, "touch -d '-1 hour' %s/cohort_1_0_gone.prom", mdir);
	cmd_free(&r);
	snprintf(conf, sizeof(conf), "mode=record interval=0.5 spool=%s metrics=%s", spool, mdir);
	slurm_set_plugstack(dir, conf);

	write_file("job.sh", "#!/bin/sh\nsrun -n2 sh -c 'sleep 2'\necho done\n");
	snprintf(out, sizeof(out), "%s/job.out", test_tmpdir());
	cmd_run(&r, "timeout 150 sbatch --parsable --wait -n2 --mem=100M -o %s %s/job.sh", out, test_tmpdir());
	snprintf(job, sizeof(job), "%.*s", (int)strcspn(r.out, ";\n"), r.out);
	CHECK_MSG(r.status == 0 && job[0] >= '0' && job[0] <= '9', "sbatch (%d): %s%s", r.status, r.out, r.err);
	cmd_free(&r);

	/* Step 0's file on this node: both tasks, final. */
	CHECK((d = opendir(mdir)) != NULL);
	while ((de = readdir(d)) != NULL) {
		CHECK_MSG(strcmp(de->d_name, "cohort_1_0_gone.prom") != 0, "the stale file was not removed");
		nfiles += strstr(de->d_name, ".prom") != NULL;
	}
	closedir(d);
	/* The batch step's and step 0's. */
	CHECK_EQ(nfiles, 2);
	snprintf(path, sizeof(path), "%s/cohort_%s_0_", mdir, job);
	cmd_run(&r, "cat %s*.prom", path);
	CHECK_MSG(r.status == 0, "no %s*.prom: %s", path, r.err);
	text = r.out;
	check_structure(text);
	{
		char l0[256], l1[256];

		snprintf(l0, sizeof(l0), "cohort_task_workers_running{jobid=\"%s\",step=\"0\",task=\"0\",", job);
		snprintf(l1, sizeof(l1), "cohort_task_workers_running{jobid=\"%s\",step=\"0\",task=\"1\",", job);
		CHECK_CONTAINS(text, l0);
		CHECK_CONTAINS(text, l1);
		snprintf(l0, sizeof(l0), ",task=\"1\",host=\"");
		CHECK_CONTAINS(text, l0);
		CHECK_CONTAINS(text, ",rank=\"1\",worker=\"0\"} ");
	}
	CHECK_EQ(count_prefix(text, "cohort_task_workers_running{"), 2);
	CHECK_EQ(count_prefix(text, "cohort_worker_running{"), 2);
	/* The final file: nothing runs. */
	check_all_values(text, "cohort_task_workers_running{", 0);
	check_all_values(text, "cohort_worker_running{", 0);
	check_all_values(text, "cohort_task_workers{", 1);
	if (have_program("promtool")) {
		struct cmd_result p;

		cmd_run(&p, "promtool check metrics < $(ls %s*.prom | head -1)", path);
		CHECK_MSG(p.status == 0, "promtool: %s%s", p.out, p.err);
		cmd_free(&p);
	}
	cmd_free(&r);
	snprintf(path, sizeof(path), "%s/cohort_%s_batch_", mdir, job);
	cmd_run(&r, "cat %s*.prom", path);
	CHECK_MSG(r.status == 0, "no batch step file %s*.prom: %s", path, r.err);
	CHECK_CONTAINS(r.out, "step=\"batch\"");
	cmd_free(&r);
	exit(0);
}

TEST_TIMEOUT(slurm_metrics_spank_step_file, 240)
{
	slurm_case(slurm_spank_dir(), metrics_case, 220000);
}
