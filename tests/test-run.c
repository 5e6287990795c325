/*
 * test-run.c - `cohort run` with real programs: exit codes, signals,
 * labels, workers that must die with the supervisor, enforcement in each
 * mode, leak and copy-on-write detection, and the recording.
 */
#include "harness.h"

#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUN "%s/cohort run"
#define HELPER "%s/tests/runner --helper"
#define FAULT "%s/examples/faults/"
#define CHECK_NE(a, b) CHECK_MSG((a) != (b), "%s == %s", #a, #b)

/* Every complete line of a recording, parsed; a cut last line is allowed. */
struct rec {
	json_t *lines[20000];
	size_t n;
	bool cut;
};

static void rec_load(struct rec *r, const char *path)
{
	char *text = read_file(path), *line, *next;

	CHECK_MSG(text != NULL, "no recording at %s", path);
	r->n = 0;
	r->cut = false;
	for (line = text; *line && r->n < 20000; line = next) {
		json_error_t err;
		char *nl = strchr(line, '\n');

		if (!nl) {
			r->cut = true;   /* the supervisor died mid-line */
			break;
		}
		*nl = '\0';
		next = nl + 1;
		r->lines[r->n] = json_loads(line, 0, &err);
		CHECK_MSG(r->lines[r->n] != NULL, "bad line %zu in %s: %s\n%s", r->n + 1, path, err.text, line);
		r->n++;
	}
	free(text);
}

static void rec_free(struct rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		json_decref(r->lines[i]);
	r->n = 0;
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Count events of a kind (for a rank, or any when rank < 0). */
static int events(const struct rec *r, const char *kind, int rank)
{
	int n = 0;

	for (size_t i = 0; i < r->n; i++) {
		json_t *e = r->lines[i];

		if (strcmp(str(e, "type"), "event") != 0 || strcmp(str(e, "kind"), kind) != 0)
			continue;
		if (rank < 0 || json_integer_value(json_object_get(e, "rank")) == rank)
			n++;
	}
	return n;
}

static json_t *event_of(const struct rec *r, const char *kind, int rank)
{
	for (size_t i = 0; i < r->n; i++) {
		json_t *e = r->lines[i];

		if (strcmp(str(e, "type"), "event") == 0 && strcmp(str(e, "kind"), kind) == 0 &&
		    (rank < 0 || json_integer_value(json_object_get(e, "rank")) == rank))
			return e;
	}
	return NULL;
}

/* The index of the first event of a kind, or 0 (the header's) when there is none. */
static size_t line_of_event(const struct rec *r, const char *kind)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(str(r->lines[i], "type"), "event") == 0 && strcmp(str(r->lines[i], "kind"), kind) == 0)
			return i;
	return 0;
}

static bool alive(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;

	if (kill(pid, 0) < 0)
		return false;
	/* A zombie waiting for its parent is not alive. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return !strstr(buf, ") Z ");
}

TEST(run_exit_status_like_srun)
{
	struct cmd_result r;
	const char *b = test_build_dir();

	cmd_run(&r, RUN " -q --no-record -n 3 -- sh -c 'exit 0'", b);
	CHECK_EQ(r.status, 0);
	cmd_free(&r);
	/* Ranks 1 and 2 fail: the first failure's code. */
	cmd_run(&r, RUN " -q --no-record -n 3 -- sh -c 'sleep 0.$COHORT_RANK; exit $COHORT_RANK'", b);
	CHECK_EQ(r.status, 1);
	cmd_free(&r);
	cmd_run(&r, RUN " -q --no-record -n 2 -- sh -c 'kill -9 $$'", b);
	CHECK_EQ(r.status, 128 + 9);
	cmd_free(&r);
	cmd_run(&r, RUN " --no-record -n 1 -- /nonexistent/worker", b);
	CHECK_EQ(r.status, 127);
	CHECK_CONTAINS(r.err, "cannot run '/nonexistent/worker': No such file or directory");
	cmd_free(&r);
}

TEST(run_environment_and_labels)
{
	struct cmd_result r;

	cmd_run(&r, "COHORT_JOB=myjob " RUN " -q --no-record -l -n 3 -- sh -c "
	        "'echo rank=$COHORT_RANK size=$COHORT_SIZE job=$COHORT_JOB; echo err$COHORT_RANK >&2'",
	        test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.out, "0: rank=0 size=3 job=myjob\n");
	CHECK_CONTAINS(r.out, "1: rank=1 size=3 job=myjob\n");
	CHECK_CONTAINS(r.out, "2: rank=2 size=3 job=myjob\n");
	CHECK_CONTAINS(r.err, "1: err1\n");
	CHECK(strstr(r.out, "err") == NULL);
	cmd_free(&r);
	/* A last line without a newline still comes out, labelled. */
	cmd_run(&r, RUN " -q --no-record -l -n 1 -- printf 'no newline'", test_build_dir());
	CHECK_CONTAINS(r.out, "0: no newline\n");
	cmd_free(&r);
	/* Bytes pass as bytes: a NUL ends nothing (shown here as @). */
	cmd_run(&r, RUN " -q --no-record -l -n 1 -- printf 'abc\\000def\\ngh\\000\\n' | tr '\\000' @",
	        test_build_dir());
	CHECK_STREQ(r.out, "0: abc@def\n0: gh@\n");
	cmd_free(&r);
}

/*
 * A COHORT_JOB the segment calls refuse is refused before any worker
 * starts; a good one still reaches the worker, whose segment create then
 * works. The rule is the library's: the test asks it.
 */
TEST(run_refuses_a_job_scope_segments_refuse)
{
	struct cmd_result r;
	const char *b = test_build_dir();

	CHECK(!cohort_job_scope_valid("a.b"));
	CHECK(!cohort_job_scope_valid(""));
	CHECK(!cohort_job_scope_valid(NULL));
	CHECK(cohort_job_scope_valid("job_1-x"));
	cmd_run(&r, "COHORT_JOB=a.b " RUN " --no-record -n 1 -- sh -c 'touch started'", b);
	CHECK_EQ(r.status, 2);
	CHECK_CONTAINS(r.err, "invalid COHORT_JOB 'a.b'");
	CHECK_CONTAINS(r.err, "[A-Za-z0-9_-]");
	CHECK_MSG(access("started", F_OK) < 0, "a worker started under a refused COHORT_JOB");
	cmd_free(&r);
	cmd_run(&r, "COHORT_JOB=$(printf 'x%%.0s' $(seq 64)) " RUN " --no-record -n 1 -- true", b);
	CHECK_EQ(r.status, 2);
	CHECK_CONTAINS(r.err, "invalid COHORT_JOB");
	cmd_free(&r);
	cmd_run(&r, "COHORT_JOB=a_b-1 " RUN " -q --no-record -n 1 -- sh -c 'echo job=$COHORT_JOB'", b);
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.out, "job=a_b-1\n");
	cmd_free(&r);
}

TEST(run_usage_errors)
{
	static const struct { const char *args, *want; } cases[] = {
		{ "", "no command to run" },
		{ "-n 0 -- true", "invalid count '0' for --workers" },
		{ "--enforce magic -- true", "invalid --enforce 'magic'" },
		{ "--interval 0 -- true", "invalid value '0' for --interval" },
		{ "--pss-budget 0 -- true", "invalid value '0' for --pss-budget" },
		{ "--budget 4Q -- true", "invalid size '4Q' for --budget" },
		{ "--record x --no-record -- true", "contradict" },
		{ "--frob -- true", "unknown option '--frob'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cmd_result r;

		cmd_run(&r, RUN " %s", test_build_dir(), cases[i].args);
		CHECK_MSG(r.status == 2, "'cohort run %s' exited %d", cases[i].args, r.status);
		CHECK_CONTAINS(r.err, cases[i].want);
		cmd_free(&r);
	}
}

TEST(run_refuses_a_plan_that_does_not_fit)
{
	struct cmd_result r;

	cmd_run(&r, RUN " --no-record --budget 100M -n 4 -m 50M -- true", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "not starting: the plan does not fit");
	CHECK_CONTAINS(r.err, "4 workers x 50.0 MiB = 200.0 MiB, above the 100.0 MiB memory limit");
	CHECK_CONTAINS(r.err, "use --workers 2");
	cmd_free(&r);
	cmd_run(&r, RUN " --no-record --budget 16T -- true", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "--budget 16.0 TiB is above the allocation's");
	cmd_free(&r);
}

/* Start `cohort run ARGS` in the background (ARGS made by printf); returns its pid. */
static pid_t start_bg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static pid_t start_bg(const char *fmt, ...)
{
	char args[4096], cmd[8192];
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "exec %s/cohort run %s", test_build_dir(), args);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The worker pids from a recording's spawn events, once all n are there. */
static int spawned(const char *path, pid_t *pids, int n)
{
	for (int tries = 0; tries < 500; tries++) {
		struct rec r;
		int got = 0;
		char *text = read_file(path);

		if (text && strstr(text, "\n")) {
			free(text);
			rec_load(&r, path);
			for (size_t i = 0; i < r.n && got < n; i++)
				if (strcmp(str(r.lines[i], "type"), "event") == 0 &&
				    strcmp(str(r.lines[i], "kind"), "spawn") == 0)
					pids[got++] = (pid_t)json_integer_value(json_object_get(r.lines[i], "pid"));
			rec_free(&r);
			if (got == n)
				return got;
		} else {
			free(text);
		}
		usleep(10000);
	}
	return 0;
}

TEST(run_workers_die_with_a_killed_supervisor)
{
	pid_t sup, pids[3];
	struct rec r;
	int st;

	sup = start_bg("-q -n 3 -i 0.05 -o rec.ndjson -- sleep 100");
	CHECK_EQ(spawned("rec.ndjson", pids, 3), 3);
	usleep(300000);   /* a few samples in the recording */
	CHECK_OK(kill(sup, SIGKILL));
	waitpid(sup, &st, 0);
	for (int i = 0; i < 3; i++) {
		int tries = 0;

		while (alive(pids[i]) && tries++ < 200)
			usleep(10000);
		CHECK_MSG(!alive(pids[i]), "worker %d outlived its supervisor", (int)pids[i]);
	}
	/* The recording of a SIGKILLed supervisor is still readable. */
	rec_load(&r, "rec.ndjson");
	CHECK(r.n >= 5);
	CHECK_STREQ(str(r.lines[0], "type"), "header");
	CHECK(events(&r, "spawn", -1) == 3);
	/* Its empty worker cgroups are reaped by the next supervisor that makes some. */
	if (strcmp(str(r.lines[0], "enforce"), "cgroup") == 0) {
		struct cmd_result c;
		long long dead = json_integer_value(json_object_get(r.lines[0], "supervisor_pid"));

		cmd_run(&c, "find /sys/fs/cgroup/memory -name 'cohort-%lld-*' -type d", dead);
		CHECK_MSG(c.out[0] != '\0', "the killed supervisor's cgroup is already gone?");
		cmd_free(&c);
		cmd_run(&c, "%s/cohort run -q --no-record -n 1 --enforce cgroup -- true; "
		        "find /sys/fs/cgroup/memory -name 'cohort-%lld-*' -type d", test_build_dir(), dead);
		CHECK_MSG(c.out[0] == '\0', "stale cgroup not reaped:\n%s", c.out);
		cmd_free(&c);
	}
	rec_free(&r);
}

TEST(run_sigterm_forwarded_then_sigkill_after_grace)
{
	pid_t sup, pids[2];
	struct rec r;
	json_t *e;
	int st;

	/* Workers that take SIGTERM end with it. */
	sup = start_bg("-q -n 2 -o rec1.ndjson -- sleep 60");
	CHECK_EQ(spawned("rec1.ndjson", pids, 2), 2);
	CHECK_OK(kill(sup, SIGTERM));
	st = helper_wait(sup, 10000);
	CHECK_MSG(st != -1, "cohort run did not end after SIGTERM");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGTERM);

	/* Workers that ignore it are killed after the grace period. */
	sup = start_bg("-q -n 2 --grace 1 -o rec2.ndjson -- " HELPER " ignore-term 60",
	               test_build_dir());
	CHECK_EQ(spawned("rec2.ndjson", pids, 2), 2);
	usleep(200000);   /* let the workers install their SIG_IGN */
	CHECK_OK(kill(sup, SIGTERM));
	st = helper_wait(sup, 10000);
	CHECK_MSG(st != -1, "cohort run did not end 1 s after SIGTERM to workers that ignore it");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGKILL);
	rec_load(&r, "rec2.ndjson");
	CHECK(!r.cut);
	CHECK_EQ(events(&r, "exit", -1), 2);
	CHECK_EQ(json_integer_value(json_object_get(event_of(&r, "exit", 0), "signal")), SIGKILL);
	/* The supervisor's own signal is an event of its own, with the figures of that moment before it. */
	e = event_of(&r, "signal", -1);
	CHECK_MSG(e != NULL, "no signal event");
	CHECK_EQ(json_integer_value(json_object_get(e, "signal")), SIGTERM);
	CHECK_STREQ(str(e, "signal_name"), "SIGTERM");
	CHECK_EQ(json_integer_value(json_object_get(e, "sender_pid")), getpid());
	CHECK_CONTAINS(str(e, "message"), "the supervisor got SIGTERM from pid ");
	CHECK(line_of_event(&r, "signal") > 0);
	CHECK_STREQ(str(r.lines[line_of_event(&r, "signal") - 1], "type"), "sample");
	CHECK_STREQ(str(r.lines[r.n - 1], "type"), "end");
	rec_free(&r);
}

/* SIGUSR1 (sbatch --signal=B:USR1@60) is a notice for the workers, not a stop. */
TEST(run_usr1_is_passed_to_the_workers)
{
	pid_t sup, pids[1];
	struct rec r;
	json_t *e;
	int st;

	sup = start_bg("-q -n 1 -o usr1.ndjson -- sh -c 'trap \"touch got-usr1\" USR1; "
	               "touch ready; i=0; while [ $i -lt 40 ] && [ ! -e got-usr1 ]; do sleep 0.1; i=$((i+1)); done; exit 0'");
	CHECK_EQ(spawned("usr1.ndjson", pids, 1), 1);
	for (int i = 0; i < 100 && access("ready", F_OK) != 0; i++)
		usleep(50000);
	CHECK_OK(kill(sup, SIGUSR1));
	st = helper_wait(sup, 20000);
	CHECK_MSG(st != -1, "cohort run did not end");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_OK(access("got-usr1", F_OK));
	rec_load(&r, "usr1.ndjson");
	e = event_of(&r, "signal", -1);
	CHECK_MSG(e != NULL, "no signal event");
	CHECK_STREQ(str(e, "signal_name"), "SIGUSR1");
	CHECK_STREQ(str(r.lines[r.n - 1], "type"), "end");
	rec_free(&r);
}

/* A process that left its worker's group (setsid) does not outlive the supervisor either. */
TEST(run_setsid_escapee_killed_at_end)
{
	struct cmd_result r;
	char *text;
	pid_t pid;

	cmd_run(&r, "cd %s && " RUN " -q -n 1 --enforce watch --no-record -- sh -c "
	        "'setsid sleep 60 & echo $! > escapee; sleep 0.3; exit 0'", test_tmpdir(), test_build_dir());
	CHECK_EQ(r.status, 0);
	cmd_free(&r);
	text = read_file("escapee");
	CHECK(text != NULL);
	pid = (pid_t)atoi(text);
	free(text);
	CHECK(pid > 0);
	for (int i = 0; i < 50 && alive(pid); i++)
		usleep(20000);
	CHECK_MSG(!alive(pid), "pid %d (setsid sleep) outlived cohort run", (int)pid);
}

TEST(run_grandchildren_killed_at_end)
{
	struct cmd_result r;
	char *text;
	pid_t gc;

	cmd_run(&r, RUN " -q --no-record -n 1 -- " HELPER " grandchild %s/gc.pid",
	        test_build_dir(), test_build_dir(), test_tmpdir());
	CHECK_EQ(r.status, 0);
	cmd_free(&r);
	text = read_file("gc.pid");
	CHECK(text != NULL);
	gc = atoi(text);
	free(text);
	CHECK(gc > 0);
	for (int tries = 0; alive(gc) && tries < 100; tries++)
		usleep(10000);
	CHECK_MSG(!alive(gc), "grandchild %d outlived cohort run", (int)gc);
}

/* Two supervisors of one job with the same default name never write the same file. */
TEST(run_default_recordings_never_collide)
{
	struct cmd_result r;

	cmd_run(&r, "cd %s && COHORT_JOB=shared " RUN " -q -n 1 -- true & cd %s && COHORT_JOB=shared " RUN
	        " -q -n 1 -- true; wait; ls %s | grep -c '^cohort-shared.*ndjson$'", test_tmpdir(),
	        test_build_dir(), test_tmpdir(), test_build_dir(), test_tmpdir());
	CHECK_EQ(atoi(r.out), 2);
	cmd_free(&r);
	cmd_run(&r, "cd %s && for f in cohort-shared*.ndjson; do tail -n 1 \"$f\" | grep -c '\"type\":\"end\"'; done "
	        "| awk '{ s += $1 } END { print s }'", test_tmpdir());
	CHECK_EQ(atoi(r.out), 2);
	cmd_free(&r);
}

/* A program that exits 0 on SIGTERM: cohort stopped it, so cohort run fails all the same. */
TEST_TIMEOUT(run_exit_status_fails_after_a_stop, 60)
{
	struct cmd_result r;
	struct rec rec;
	json_t *e;

	cmd_run(&r, RUN " -n 1 -i 0.1 --enforce watch --grace 5 -m 60M -o rec.ndjson -- "
	        FAULT "grow --graceful --size 300 --rate 100 --hold 6",
	        test_build_dir(), test_build_dir());
	CHECK_EQ(r.status, 128 + SIGTERM);
	cmd_free(&r);
	rec_load(&rec, "rec.ndjson");
	e = event_of(&rec, "exit", 0);
	CHECK_MSG(e != NULL, "no exit event");
	CHECK_EQ(json_integer_value(json_object_get(e, "exit_code")), 0);
	CHECK(json_is_true(json_object_get(e, "stopped_by_cohort")));
	CHECK_EQ(json_integer_value(json_object_get(rec.lines[rec.n - 1], "exit_status")), 128 + SIGTERM);
	rec_free(&rec);
}

TEST_TIMEOUT(run_watch_stops_the_worker_over_its_budget, 60)
{
	struct cmd_result r;
	struct rec rec;
	json_t *e;

	cmd_run(&r, RUN " -n 2 -i 0.1 --enforce watch --grace 1 -m 100M -o rec.ndjson -- "
	        FAULT "grow --size 300 --rank 1 --rate 50 --base 10 --hold 6",
	        test_build_dir(), test_build_dir());
	CHECK_EQ(r.status, 128 + SIGTERM);
	CHECK_CONTAINS(r.err, "rank 1 (pid ");
	CHECK_CONTAINS(r.err, "above its 100.0 MiB budget: stopped by cohort");
	cmd_free(&r);
	rec_load(&rec, "rec.ndjson");
	CHECK_STREQ(str(rec.lines[0], "enforce"), "watch");
	CHECK_EQ(events(&rec, "warning", 1), 1);            /* the soft threshold first */
	CHECK_EQ(events(&rec, "limit", 1), 1);
	CHECK_EQ(events(&rec, "limit", 0), 0);
	CHECK_EQ(events(&rec, "oom_kill", -1), 0);
	e = event_of(&rec, "exit", 1);
	CHECK(json_is_true(json_object_get(e, "stopped_by_cohort")));
	/* Stopped near its limit, not after running away: at most one 0.1 s step (5 MiB) over. */
	CHECK(json_integer_value(json_object_get(e, "peak_pss")) < (100 + 16) << 20);
	e = event_of(&rec, "exit", 0);
	CHECK_EQ(json_integer_value(json_object_get(e, "exit_code")), 0);
	rec_free(&rec);
}

TEST_TIMEOUT(run_cgroup_enforcement_oom_kill_recorded, 60)
{
	struct cmd_result r;
	struct rec rec;
	json_t *e;

	if (geteuid() != 0)
		SKIP("--enforce cgroup needs root here (cgroup v1)");
	cmd_run(&r, RUN " -n 2 -i 0.1 --enforce cgroup -m 64M -o rec.ndjson -- "
	        FAULT "grow --size 300 --rank 0 --rate 100 --base 10 --hold 4",
	        test_build_dir(), test_build_dir());
	CHECK_EQ(r.status, 128 + SIGKILL);
	CHECK_CONTAINS(r.err, "rank 0 (pid ");
	CHECK_CONTAINS(r.err, "was killed by the kernel's OOM killer: its cgroup limit is 64.0 MiB");
	cmd_free(&r);
	rec_load(&rec, "rec.ndjson");
	CHECK_STREQ(str(rec.lines[0], "enforce"), "cgroup");
	CHECK_EQ(events(&rec, "oom_kill", 0), 1);
	CHECK_EQ(events(&rec, "oom_kill", 1), 0);
	CHECK_EQ(events(&rec, "limit", -1), 0);
	e = event_of(&rec, "exit", 0);
	CHECK_EQ(json_integer_value(json_object_get(e, "signal")), SIGKILL);
	CHECK(json_is_false(json_object_get(e, "stopped_by_cohort")));
	CHECK_EQ(json_integer_value(json_object_get(event_of(&rec, "exit", 1), "exit_code")), 0);
	/* The worker cgroups are gone afterwards. */
	cmd_run(&r, "find /sys/fs/cgroup/memory -name 'cohort-%lld-*' -type d",
	        (long long)json_integer_value(json_object_get(rec.lines[0], "supervisor_pid")));
	CHECK_MSG(r.out[0] == '\0', "cgroups left behind:\n%s", r.out);
	cmd_free(&r);
	rec_free(&rec);
}

TEST(run_rlimit_makes_allocation_fail_in_the_worker)
{
	struct cmd_result r;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	SKIP("the worker here is a sanitizer build, whose shadow memory cannot start under RLIMIT_DATA");
#endif

	cmd_run(&r, RUN " -q --no-record -n 1 --enforce rlimit -m 64M -- " HELPER " touch 200M",
	        test_build_dir(), test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "malloc failed");
	cmd_free(&r);
	cmd_run(&r, RUN " -q --no-record -n 1 --enforce rlimit -m 300M -- " HELPER " touch 200M",
	        test_build_dir(), test_build_dir());
	CHECK_EQ(r.status, 0);
	cmd_free(&r);
}

TEST_TIMEOUT(run_leak_flagged_in_the_leaking_worker_only, 90)
{
	struct cmd_result r;
	struct rec rec;
	json_t *e;
	double rate;

	cmd_run(&r, RUN " -n 3 -i 0.2 --enforce watch -o rec.ndjson -- "
	        FAULT "leak --rate 8 --seconds 18 --rank 1",
	        test_build_dir(), test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.err, "rank 1 (pid ");
	CHECK_CONTAINS(r.err, "is leaking");
	cmd_free(&r);
	rec_load(&rec, "rec.ndjson");
	CHECK_EQ(events(&rec, "leak", 1), 1);
	CHECK_EQ(events(&rec, "leak", -1), 1);
	CHECK_EQ(events(&rec, "cow_unshare", -1), 0);
	e = event_of(&rec, "leak", 1);
	rate = json_real_value(json_object_get(e, "rate_bytes_per_s"));
	CHECK_MSG(rate > 6.0 * (1 << 20) && rate < 10.0 * (1 << 20), "leak rate %.0f B/s, want ~8 MiB/s", rate);
	CHECK(json_real_value(json_object_get(e, "t")) < 30.0);
	rec_free(&rec);
}

/*
 * Copy-on-write against the truth, at the default interval and page-walk
 * budget: each rank's parent fills 120 MiB and forks 3 children that at
 * once copy 40, 80 and 120 MiB of it, 240 MiB in all. A forked child's
 * baseline is its state at fork, so the figure holds however late the
 * first page walk lands; the parent's pages that its children unshared are
 * not copies.
 */
TEST_TIMEOUT(run_copy_on_write_figure_is_the_truth, 60)
{
	const long long truth = 240LL << 20;
	struct cmd_result r;
	struct rec rec;

	cmd_run(&r, RUN " -n 2 --enforce watch -o rec.ndjson -- " HELPER " cow-now 120M 3 6",
	        test_build_dir(), test_build_dir());
	CHECK_EQ(r.status, 0);
	cmd_free(&r);
	rec_load(&rec, "rec.ndjson");
	for (int rank = 0; rank < 2; rank++) {
		json_t *e = event_of(&rec, "exit", rank);
		long long copied = e ? (long long)json_integer_value(json_object_get(e, "cow_copied")) : -1;

		CHECK_GE(copied, truth / 10 * 8);
		CHECK_LE(copied, truth / 10 * 12);
	}
	CHECK_EQ(events(&rec, "leak", -1), 0);
	rec_free(&rec);
}

/*
 * A 0.3 s spike of 400 MiB between two samples 1 s apart: the worker's
 * cgroup keeps its exact peak (memory.max_usage_in_bytes, memory.peak),
 * whatever the sampling phase.
 */
TEST_TIMEOUT(run_spike_between_samples_is_the_peak, 60)
{
	struct cmd_result r;
	struct rec rec;
	json_t *e;

	if (geteuid() != 0)
		SKIP("a cgroup per worker needs root here (cgroup v1)");
	cmd_run(&r, RUN " -n 1 -i 1 --enforce cgroup -m 1G -o rec.ndjson -- " HELPER " spike 400M 3.4 0.3 2",
	        test_build_dir(), test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	cmd_free(&r);
	rec_load(&rec, "rec.ndjson");
	e = event_of(&rec, "exit", 0);
	CHECK_MSG(e != NULL, "no exit event");
	CHECK_GE(json_integer_value(json_object_get(e, "peak_cgroup")), 360LL << 20);
	rec_free(&rec);
}

/*
 * Copy-on-write under a cgroup per worker and a limit: the parent fills
 * 200 MiB and forks two children that each write all of it over 2 s, 400
 * MiB copied, which RSS does not show. The finding is the cgroup's count,
 * and its figures are bounded by what happened, not by when a sample
 * landed: the copies are 400 MiB in the end whichever tick saw them.
 */
TEST_TIMEOUT(run_copy_on_write_by_the_worker_cgroup, 60)
{
	const long long truth = 400LL << 20;
	struct cmd_result r;
	struct rec rec;
	json_t *e;
	long long copied;

	if (geteuid() != 0)
		SKIP("a cgroup per worker needs root here (cgroup v1)");
	cmd_run(&r, RUN " -n 1 -i 0.2 --enforce cgroup -m 800M -o rec.ndjson -- " HELPER " cow 200M 2 9",
	        test_build_dir(), test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.err, "cow_unshare, rank 0");
	CHECK_CONTAINS(r.err, "copy-on-write, by its cgroup's count");
	cmd_free(&r);
	rec_load(&rec, "rec.ndjson");
	CHECK_EQ(events(&rec, "cow_unshare", 0), 1);
	CHECK_EQ(events(&rec, "leak", -1), 0);
	CHECK_EQ(events(&rec, "oom_kill", -1), 0);
	e = event_of(&rec, "cow_unshare", 0);
	CHECK_STREQ(str(e, "kind_of_growth"), "cow");
	CHECK_STREQ(str(e, "source"), "cgroup");
	/* Said once past the threshold, at most all there was; the cgroup held it. */
	CHECK_GE(json_integer_value(json_object_get(e, "copied_bytes")), 16LL << 20);
	CHECK_LE(json_integer_value(json_object_get(e, "copied_bytes")), truth / 10 * 11);
	CHECK_GE(json_integer_value(json_object_get(e, "cgroup_anon_bytes")),
	         json_integer_value(json_object_get(e, "copied_bytes")));
	e = event_of(&rec, "exit", 0);
	CHECK_MSG(e != NULL, "no exit event");
	CHECK_STREQ(str(e, "cow_source"), "cgroup");
	copied = (long long)json_integer_value(json_object_get(e, "cow_copied"));
	CHECK_GE(copied, truth / 10 * 8);
	CHECK_LE(copied, truth / 10 * 11);
	/* The parent's 200 MiB and the copies: the cgroup's exact peak, and the figure judged. */
	CHECK_GE(json_integer_value(json_object_get(e, "peak_cgroup")), 560LL << 20);
	CHECK_LE(json_integer_value(json_object_get(e, "peak_cgroup")), 700LL << 20);
	CHECK_GE(json_integer_value(json_object_get(e, "peak_used")), 560LL << 20);
	rec_free(&rec);
}

TEST_TIMEOUT(run_copy_on_write_is_not_a_leak, 60)
{
	struct cmd_result r;
	struct rec rec;
	json_t *e;

	/* A generous page-walk budget: the children's first reads must come before they write. */
	cmd_run(&r, RUN " -n 1 -i 0.2 --pss-budget 20 --enforce watch -o rec.ndjson -- "
	        HELPER " cow 200M 2 9",
	        test_build_dir(), test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.err, "copy-on-write");
	cmd_free(&r);
	rec_load(&rec, "rec.ndjson");
	CHECK_EQ(events(&rec, "cow_unshare", 0), 1);
	CHECK_EQ(events(&rec, "leak", -1), 0);
	/* Two children each copied most of the parent's 200 MiB by the end. */
	e = event_of(&rec, "exit", 0);
	CHECK_MSG(json_integer_value(json_object_get(e, "cow_copied")) > 300 << 20,
	          "only %lld bytes counted as copied",
	          (long long)json_integer_value(json_object_get(e, "cow_copied")));
	rec_free(&rec);
}

TEST_TIMEOUT(run_warns_of_slurm_rss_overcount, 60)
{
	struct cmd_result r;
	struct rec rec;
	json_t *e;

	/*
	 * A job of 1000 MiB (SLURM_MEM_PER_NODE, as sbatch sets it; no SLURM
	 * config reachable, so the accounting plugin is unknown): five
	 * processes sharing 300 MiB have an RSS sum of 1.5 GiB and a PSS sum
	 * of 300 MiB.
	 */
	cmd_run(&r, "env -u SLURM_CONF SLURM_JOB_ID=77 SLURM_MEM_PER_NODE=1000 " RUN
	        " -n 1 -i 0.2 --enforce watch -o rec.ndjson -- %s/examples/cow-workers/cow-workers "
	        "--size 300M --workers 5 --write 0 --hold 4", test_build_dir(), test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	/* No SLURM config is reachable: the message says the plugin is not known to sum RSS. */
	CHECK_CONTAINS(r.err, "SLURM's jobacct_gather/linux, if the cluster uses it, counts shared pages once per process");
	cmd_free(&r);
	rec_load(&rec, "rec.ndjson");
	CHECK_STREQ(str(json_object_get(json_object_get(rec.lines[0], "allocation"), "slurm"), "job_id"), "77");
	CHECK_EQ(events(&rec, "slurm_rss_risk", -1), 1);
	e = event_of(&rec, "slurm_rss_risk", -1);
	/*
	 * The warning comes at the first sample whose RSS sum passes 80% of
	 * the limit; how far past depends on how many workers had forked by
	 * then (each adds 300 MiB), which on a loaded machine may be fewer.
	 */
	CHECK_MSG(json_integer_value(json_object_get(e, "rss_sum_bytes")) > 800LL << 20,
	          "warned at an RSS sum of %lld bytes",
	          (long long)json_integer_value(json_object_get(e, "rss_sum_bytes")));
	CHECK(json_integer_value(json_object_get(e, "pss_sum_bytes")) < 600LL << 20);
	CHECK_EQ(json_integer_value(json_object_get(e, "limit_bytes")), 1000LL << 20);
	CHECK_EQ(events(&rec, "limit", -1), 0);
	/* Once all had forked, the RSS sum passed the limit while the PSS sum stayed far below. */
	long long rss_max = 0, pss_at_max = 0;
	for (size_t i = 0; i < rec.n; i++) {
		json_t *tot = json_object_get(rec.lines[i], "totals");
		long long rss = (long long)json_integer_value(json_object_get(tot, "rss_sum"));

		if (tot && rss > rss_max) {
			rss_max = rss;
			pss_at_max = (long long)json_integer_value(json_object_get(tot, "pss_sum"));
		}
	}
	CHECK_MSG(rss_max > 1000LL << 20, "the RSS sum never passed 1000 MiB (%lld bytes at most)",
	          rss_max);
	CHECK_MSG(pss_at_max < 600LL << 20, "PSS sum %lld bytes when the RSS sum was %lld",
	          pss_at_max, rss_max);
	rec_free(&rec);
}

TEST(run_removes_the_segments_its_local_job_left)
{
	struct cmd_result r;
	struct rec rec;
	char pattern[128];

	/* Each worker leaves a file named as its job's segment would be. */
	cmd_run(&r, RUN " -q -n 2 -o rec.ndjson -- sh -c 'touch /dev/shm/cohort.%d.$COHORT_JOB.left-$COHORT_RANK'",
	        test_build_dir(), (int)getuid());
	CHECK_EQ(r.status, 0);
	cmd_free(&r);
	rec_load(&rec, "rec.ndjson");
	CHECK_EQ(events(&rec, "segments_removed", -1), 1);
	CHECK_EQ(json_integer_value(json_object_get(event_of(&rec, "segments_removed", -1), "removed")), 2);
	snprintf(pattern, sizeof(pattern), "/dev/shm/cohort.%d.%s.*", (int)getuid(),
	         str(rec.lines[0], "job"));
	cmd_run(&r, "ls %s 2>/dev/null | wc -l", pattern);
	CHECK_EQ(atoi(r.out), 0);
	cmd_free(&r);
	rec_free(&rec);
}

/* ---- deaths below a worker's root ---- */

static void need_shim(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	SKIP("the helper is a sanitizer build here: cohort run does not preload its shim into it");
#endif
}

/* The spawn event's pid: the worker's root. */
static pid_t root_pid(const struct rec *rec)
{
	return (pid_t)json_integer_value(json_object_get(event_of(rec, "spawn", 0), "pid"));
}

/*
 * A program forks 4 children and child 3 segfaults: its parent's waitpid
 * tells the shim, and the finding is a segfault naming that child's pid
 * as child k of rank 0, with its backtrace; cohort run fails.
 */
TEST_TIMEOUT(run_child_segfault_named, 60)
{
	struct cmd_result r;
	struct rec rec;
	json_t *e;
	char want[128];
	pid_t pid;
	long k;

	need_shim();
	cmd_run(&r, RUN " -n 1 -o rec.ndjson -- " HELPER " children 4 3", test_build_dir(),
	        test_build_dir());
	CHECK_NE(r.status, 0);
	rec_load(&rec, "rec.ndjson");
	CHECK_EQ(events(&rec, "child_exit", 0), 1);
	e = event_of(&rec, "child_exit", 0);
	pid = (pid_t)json_integer_value(json_object_get(e, "process_pid"));
	k = (long)json_integer_value(json_object_get(e, "process_child"));
	CHECK_GT(pid, 0);
	CHECK_NE(pid, root_pid(&rec));
	CHECK_GE(k, 1);
	CHECK_LE(k, 4);
	CHECK_EQ(json_integer_value(json_object_get(e, "signal")), SIGSEGV);
	CHECK_EQ(json_integer_value(json_object_get(e, "reaper_pid")), root_pid(&rec));
	CHECK_STREQ(str(e, "process"), "runner");
	CHECK_CONTAINS(str(e, "process_cmdline"), "--helper children 4 3");
	snprintf(want, sizeof(want), "segfault, rank 0: pid %d (runner), child %ld of rank 0", (int)pid, k);
	CHECK_CONTAINS(r.err, want);
	CHECK_CONTAINS(r.err, "helper_children");   /* the child's backtrace */
	cmd_free(&r);
	rec_free(&rec);
}

/* A child its parent kills with SIGKILL: told by the parent's waitpid, no crash finding. */
TEST_TIMEOUT(run_child_killed_by_its_parent_is_told, 60)
{
	struct cmd_result r;
	struct rec rec;
	json_t *e;

	need_shim();
	cmd_run(&r, RUN " -n 1 -o rec.ndjson -- " HELPER " children 3 2 kill", test_build_dir(),
	        test_build_dir());
	CHECK_EQ(r.status, 1);   /* the program's own exit: one child did not end well */
	rec_load(&rec, "rec.ndjson");
	CHECK_EQ(events(&rec, "child_exit", 0), 1);
	e = event_of(&rec, "child_exit", 0);
	CHECK_EQ(json_integer_value(json_object_get(e, "signal")), SIGKILL);
	CHECK_EQ(json_integer_value(json_object_get(e, "reaper_pid")), root_pid(&rec));
	CHECK_GE(json_integer_value(json_object_get(e, "process_child")), 1);
	CHECK_CONTAINS(str(e, "message"), "signal 9 (Killed)");
	CHECK(strstr(r.err, "segfault") == NULL);
	CHECK(strstr(r.err, "oom_kill") == NULL);
	CHECK_CONTAINS(r.err, "exit_nonzero, rank 0");
	cmd_free(&r);
	rec_free(&rec);
}

/*
 * stress-ng's vm workers over a 300 MiB per-worker cgroup: the kernel
 * OOM-kills them and stress-ng restarts them. One oom_kill finding with
 * the count, naming stress-ng-vm and the evidence; cohort run fails as a
 * process killed by SIGKILL would.
 */
TEST_TIMEOUT(run_stress_ng_oom_kills_below_the_root, 90)
{
	struct cmd_result r;
	struct rec rec;
	json_t *e;
	const char *evidence;
	int n;

	if (geteuid() != 0)
		SKIP("a cgroup per worker needs root here (cgroup v1)");
	if (system("command -v stress-ng >/dev/null 2>&1") != 0)
		SKIP("stress-ng is not installed");
	cmd_run(&r, RUN " -n 1 -m 300M -o rec.ndjson -- stress-ng --vm 3 --vm-bytes 400M --timeout 8s",
	        test_build_dir());
	CHECK_EQ(r.status, 128 + SIGKILL);
	CHECK_CONTAINS(r.err, "oom_kill, rank 0: the kernel OOM-killed ");
	CHECK_CONTAINS(r.err, "(stress-ng-vm)");
	CHECK_CONTAINS(r.err, "not the worker's own process");
	rec_load(&rec, "rec.ndjson");
	n = events(&rec, "oom_kill", 0);
	CHECK_GE(n, 1);
	/* Told in detail up to 8, then counted: a summary at the end. */
	CHECK_LE(n, 9);
	e = event_of(&rec, "oom_kill", 0);
	CHECK_STREQ(str(e, "process"), "stress-ng-vm");
	CHECK_NE(json_integer_value(json_object_get(e, "process_pid")), root_pid(&rec));
	CHECK_GE(json_integer_value(json_object_get(e, "process_child")), 1);
	CHECK_GE(json_integer_value(json_object_get(e, "count")), 1);
	evidence = str(e, "evidence");
	CHECK(evidence != NULL);
	CHECK_MSG(strcmp(evidence, "kernel_log") == 0 || strcmp(evidence, "reaper_status") == 0 ||
	          strcmp(evidence, "vanished") == 0, "evidence %s", evidence);
	/* The root, stress-ng itself, was not the victim. */
	CHECK_EQ(json_integer_value(json_object_get(event_of(&rec, "exit", 0), "signal")), 0);
	cmd_free(&r);
	rec_free(&rec);
}

/*
 * No cgroup per worker (--enforce none) inside a job's cgroup of 200 MiB:
 * a forked Python child grows over it and the kernel kills it. Its parent
 * goes on and exits 0; the kill is attributed to that child (child 1 of
 * rank 0) and cohort run fails.
 */
TEST_TIMEOUT(run_oom_kill_of_a_child_in_the_jobs_cgroup, 90)
{
	struct cmd_result r;
	struct rec rec;
	char own[512], job[600], path[700];
	const char *evidence;
	int version = 0;
	json_t *e;

	if (geteuid() != 0)
		SKIP("a job cgroup with a limit needs root here");
	if (cohort_cgroup_of_pid(NULL, 0, own, sizeof(own), &version) < 0 || version != 1)
		SKIP("this test makes a cgroup v1 memory cgroup");
	if (access("/usr/bin/python3", X_OK) != 0)
		SKIP("/usr/bin/python3 is not installed");
	snprintf(job, sizeof(job), "%s/cohort-test-job-%d", own, (int)getpid());
	CHECK_OK(mkdir(job, 0755));
	snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", job);
	write_file(path, "209715200\n");
	/* With swap accounting, the same bound on memory and swap: the kernel kills rather than swaps. */
	snprintf(path, sizeof(path), "%s/memory.memsw.limit_in_bytes", job);
	if (access(path, F_OK) == 0)
		write_file(path, "209715200\n");
	write_file("grow.py", "import os, time\n"
	           "time.sleep(0.5)\n"
	           "pid = os.fork()\n"
	           "if pid == 0:\n"
	           "    blocks = []\n"
	           "    for i in range(80):\n"
	           "        blocks.append(bytearray(8 << 20))\n"
	           "        time.sleep(0.02)\n"
	           "    os._exit(0)\n"
	           "os.waitpid(pid, 0)\n");
	cmd_run(&r, "sh -c 'echo $$ > %s/cgroup.procs && exec " RUN " -n 1 --enforce none -o rec.ndjson "
	        "-- /usr/bin/python3 grow.py'", job, test_build_dir());
	rmdir(job);
	CHECK_EQ(r.status, 128 + SIGKILL);
	CHECK_CONTAINS(r.err, "oom_kill, rank 0: the kernel OOM-killed 1 process of rank 0, pid ");
	CHECK_CONTAINS(r.err, "(python3), child 1 of rank 0");
	rec_load(&rec, "rec.ndjson");
	CHECK_EQ(events(&rec, "oom_kill", 0), 1);
	e = event_of(&rec, "oom_kill", 0);
	CHECK_STREQ(str(e, "process"), "python3");
	CHECK_EQ(json_integer_value(json_object_get(e, "process_child")), 1);
	CHECK_CONTAINS(str(e, "process_cmdline"), "grow.py");
	evidence = str(e, "evidence");
	CHECK(evidence != NULL);
	CHECK_MSG(strcmp(evidence, "kernel_log") == 0 || strcmp(evidence, "reaper_status") == 0 ||
	          strcmp(evidence, "vanished") == 0, "evidence %s", evidence);
	CHECK_EQ(json_integer_value(json_object_get(event_of(&rec, "exit", 0), "exit_code")), 0);
	cmd_free(&r);
	rec_free(&rec);
}
