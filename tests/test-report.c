/*
 * test-report.c - every finding kind produced by a real program under
 * cohort run, read back by cohort report (text, JSON, HTML); and hostile
 * recordings that must give an error or a partial report, never a crash.
 */
#include "harness.h"
#include "report-util.h"

#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#define COHORT "%s/cohort"
#define FAULT "%s/examples/faults/"

/* Run cohort run ARGS with the recording in rec.ndjson, then cohort report --json on it. */
static json_t *run_and_report(const char *args_fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *run_and_report(const char *args_fmt, ...)
{
	char args[4096];
	struct cmd_result r;
	va_list ap;

	va_start(ap, args_fmt);
	vsnprintf(args, sizeof(args), args_fmt, ap);
	va_end(ap);
	cmd_run(&r, COHORT " run -o rec.ndjson %s", test_build_dir(), args);
	/* The findings cohort run printed are the report's: kept for the caller's checks. */
	write_file("run.err", "%s", r.err);
	write_file("run.status", "%d\n", r.status);
	cmd_free(&r);
	return report_json("rec.ndjson");
}

static long long rank_of(json_t *f)
{
	return json_integer_value(json_object_get(f, "rank"));
}

/* cohort run's own findings name the same kind: same engine, same recording. */
static void run_said(const char *kind)
{
	char *err = read_file("run.err");
	char want[64];

	snprintf(want, sizeof(want), ". %s", kind);
	CHECK_CONTAINS(err, want);
	free(err);
}

TEST_TIMEOUT(report_oom_kill, 60)
{
	json_t *rep, *f;

	if (geteuid() != 0)
		SKIP("--enforce cgroup needs root here");
	rep = run_and_report("-n 2 -i 0.1 --enforce cgroup -m 64M -- " FAULT "grow --size 300 --rank 0",
	                     test_build_dir());
	f = report_need(rep, "oom_kill", REPORT_ANY_RANK);
	CHECK_EQ(rank_of(f), 0);
	CHECK_EQ(report_ev(f, "limit_bytes"), 64LL << 20);
	/*
	 * The last sample before the kill: the worker grows 16 MiB every 50 ms
	 * and is sampled every 0.1 s (a slow supervisor may not have sampled
	 * it at all), so never more than its limit plus a step.
	 */
	CHECK(report_ev(f, "last_est_bytes") <= (64LL + 16) << 20);
	CHECK_CONTAINS(json_string_value(json_object_get(f, "message")), "killed by the kernel's OOM killer");
	CHECK_EQ(report_count(rep, "oom_kill"), 1);
	run_said("oom_kill");
	json_decref(rep);
}

/*
 * stress-ng, as a user runs it under cohort run -n 1: its parent forks
 * the vm workers, and the kernel OOM-kills those inside the rank's
 * cgroup while the parent restarts them and exits 0. The kernel's
 * notification names the rank; the worker's own exit says nothing.
 */
TEST_TIMEOUT(report_oom_kill_below_the_worker_stress_ng, 60)
{
	json_t *rep, *f;

	if (geteuid() != 0)
		SKIP("--enforce cgroup needs root here");
	if (access("/usr/bin/stress-ng", X_OK) != 0)
		SKIP("stress-ng is not installed (apt-get install stress-ng)");
	rep = run_and_report("-n 1 --enforce cgroup -m 200M -- stress-ng --vm 2 --vm-bytes 300M "
	                     "--vm-keep --timeout 5s");
	{
		/* stress-ng itself exits 0; cohort run does not, so a batch script's || exit 1 fires. */
		char *err = read_file("run.status");

		CHECK_MSG(err && atoi(err) == 128 + SIGKILL, "cohort run exited %s", err ? err : "?");
		free(err);
	}
	f = report_need(rep, "oom_kill", REPORT_ANY_RANK);
	CHECK_MSG(f != NULL, "no oom_kill finding");
	CHECK_EQ(rank_of(f), 0);
	CHECK_GE(report_ev(f, "oom_kills"), 1);
	/*
	 * The cgroup's peak, not the RSS sum of 600 MiB: at its limit, give or
	 * take the pages the kernel force-charges to a task it is killing
	 * (seen: 4 KiB over), far below what a per-process sum would say.
	 */
	CHECK_LE(report_ev(f, "peak_cgroup_bytes"), (200LL + 2) << 20);
	CHECK_GE(report_ev(f, "peak_cgroup_bytes"), 150LL << 20);
	CHECK_CONTAINS(json_string_value(json_object_get(f, "message")), "not the worker's own process");
	run_said("oom_kill");
	json_decref(rep);
}

TEST_TIMEOUT(report_budget_kill, 60)
{
	json_t *rep, *f, *w;

	rep = run_and_report("-n 2 -i 0.1 --enforce watch --grace 1 -m 100M -- " FAULT "grow --size 300 --rank 1",
	                     test_build_dir());
	f = report_need(rep, "budget_kill", REPORT_ANY_RANK);
	CHECK_EQ(rank_of(f), 1);
	CHECK_EQ(report_ev(f, "limit_bytes"), 100LL << 20);
	CHECK(report_ev(f, "est_bytes") > 100LL << 20);
	CHECK_CONTAINS(json_string_value(json_object_get(f, "fix")), "--mem-per-worker");
	w = json_array_get(json_object_get(rep, "workers"), 1);
	CHECK_EQ(json_integer_value(json_object_get(w, "signal")), SIGTERM);
	CHECK(json_is_true(json_object_get(w, "stopped_by_cohort")));
	w = json_array_get(json_object_get(rep, "workers"), 0);
	CHECK_EQ(json_integer_value(json_object_get(w, "exit_code")), 0);
	CHECK(json_integer_value(json_object_get(w, "peak_pss_bytes")) > 16 << 20);
	run_said("budget_kill");
	json_decref(rep);
}

TEST_TIMEOUT(report_leak, 90)
{
	json_t *rep, *f;

	rep = run_and_report("-n 2 -i 0.2 --enforce watch -- " FAULT "leak --rate 8 --seconds 16 --rank 0",
	                     test_build_dir());
	f = report_need(rep, "leak", REPORT_ANY_RANK);
	CHECK_EQ(rank_of(f), 0);
	CHECK_MSG(report_ev(f, "rate_bytes_per_s") > 6 << 20 && report_ev(f, "rate_bytes_per_s") < 10 << 20,
	          "rate %lld", report_ev(f, "rate_bytes_per_s"));
	CHECK(report_ev(f, "eta_s") > 0);
	CHECK_EQ(report_count(rep, "leak"), 1);
	CHECK_EQ(report_count(rep, "cow_unshare"), 0);
	run_said("leak");
	json_decref(rep);
}

TEST_TIMEOUT(report_cow_unshare, 60)
{
	json_t *rep, *f;

	rep = run_and_report("-n 1 -i 0.2 --pss-budget 20 --enforce watch -- %s/examples/cow-workers/cow-workers "
	                     "--size 200M --workers 3 --write 100 --hold 3", test_build_dir());
	f = report_need(rep, "cow_unshare", REPORT_ANY_RANK);
	CHECK_EQ(rank_of(f), 0);
	CHECK_MSG(report_ev(f, "copied_bytes") > 200LL << 20, "copied %lld", report_ev(f, "copied_bytes"));
	CHECK_EQ(report_count(rep, "leak"), 0);
	run_said("cow_unshare");
	json_decref(rep);
}

static void need_catch(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	SKIP("the test runner is built with a sanitizer here, which catches the signal itself");
#endif
}

/* examples/faults are never built with a sanitizer (Makefile): the shim catches their signals. */
TEST_TIMEOUT(report_segfault_with_address_and_backtrace, 60)
{
	json_t *rep, *f, *bt;
	char *text;

	rep = run_and_report("-n 1 -- " FAULT "segfault", test_build_dir());
	f = report_need(rep, "segfault", REPORT_ANY_RANK);
	CHECK_EQ(rank_of(f), 0);
	CHECK(report_ev(f, "fault_addr") > 0);
	CHECK_CONTAINS(json_string_value(json_object_get(f, "message")), "SIGSEGV");
	CHECK_CONTAINS(json_string_value(json_object_get(f, "message")), "which no mapping holds");
	bt = json_object_get(f, "backtrace");
	CHECK(json_array_size(bt) >= 2);
	text = json_dumps(bt, 0);
	CHECK_CONTAINS(text, "store");
	CHECK_CONTAINS(text, "segfault.c:");
	free(text);
	run_said("segfault");
	json_decref(rep);
}

TEST_TIMEOUT(report_bus_error, 60)
{
	json_t *rep, *f;

	need_catch();
	rep = run_and_report("-n 1 -- %s/tests/runner --helper bus-error %s/mapped", test_build_dir(),
	                     test_tmpdir());
	f = report_need(rep, "bus_error", REPORT_ANY_RANK);
	CHECK_EQ(rank_of(f), 0);
	CHECK_CONTAINS(json_string_value(json_object_get(f, "message")), "/mapped");
	json_decref(rep);
}

TEST_TIMEOUT(report_shm_exhausted, 60)
{
	struct cmd_result r;
	json_t *rep, *f;
	json_error_t err;

	if (geteuid() != 0)
		SKIP("mounting a small /dev/shm in a private mount namespace needs root");
	/* A 32 MiB /dev/shm, private to this command; the worker writes a 64 MiB segment. */
	cmd_run(&r, "unshare -m sh -c 'mount -t tmpfs -o size=32M tmpfs /dev/shm && "
	        COHORT " run -n 1 -i 0.1 -o rec.ndjson -- " FAULT "shm-full --size 64'",
	        test_build_dir(), test_build_dir());
	CHECK_MSG(r.status == 128 + SIGBUS, "exit %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.err, ". shm_exhausted");
	cmd_free(&r);
	cmd_run(&r, COHORT " report --json rec.ndjson", test_build_dir());
	rep = json_loads(r.out, 0, &err);
	CHECK(rep != NULL);
	cmd_free(&r);
	f = report_need(rep, "shm_exhausted", REPORT_ANY_RANK);
	CHECK_EQ(rank_of(f), 0);
	CHECK_EQ(report_ev(f, "shm_size_bytes"), 32LL << 20);
	CHECK_EQ(report_ev(f, "shm_free_start_bytes"), 32LL << 20);
	/*
	 * The fault's address lies in the segment's file in /dev/shm (the
	 * samples before it may have caught the filling at any point: the
	 * free space at the end is evidence, not a fixed figure).
	 */
	CHECK_CONTAINS(json_string_value(json_object_get(f, "message")), "in /dev/shm/shm-full-example.");
	CHECK(report_ev(f, "shm_free_end_bytes") <= 32LL << 20);
	CHECK_CONTAINS(json_string_value(json_object_get(f, "fix")), "posix_fallocate");
	json_decref(rep);

	/* The right way: reserved at creation, a clear error and no SIGBUS. */
	cmd_run(&r, "unshare -m sh -c 'mount -t tmpfs -o size=32M tmpfs /dev/shm && "
	        COHORT " run -n 1 --no-record -- " FAULT "shm-full --size 64 --reserve'",
	        test_build_dir(), test_build_dir());
	CHECK_EQ(r.status, 1);
	CHECK_CONTAINS(r.err, "cannot reserve 64 MiB in /dev/shm: No space left on device");
	CHECK(strstr(r.err, "shm_exhausted") == NULL);
	cmd_free(&r);
}

TEST_TIMEOUT(report_slurm_rss_overcount, 60)
{
	json_t *rep, *f;

	rep = run_and_report("-n 1 -i 0.2 --enforce watch -- %s/examples/cow-workers/cow-workers "
	                     "--size 300M --workers 5 --write 0 --hold 4", test_build_dir());
	/* Outside SLURM: nothing to say about SLURM's accounting. */
	CHECK_EQ(report_count(rep, "slurm_rss_overcount"), 0);
	json_decref(rep);

	setenv("SLURM_JOB_ID", "77", 1);
	setenv("SLURM_MEM_PER_NODE", "1000", 1);
	unsetenv("SLURM_CONF");
	rep = run_and_report("-n 1 -i 0.2 --enforce watch -- %s/examples/cow-workers/cow-workers "
	                     "--size 300M --workers 5 --write 0 --hold 4", test_build_dir());
	f = report_need(rep, "slurm_rss_overcount", REPORT_ANY_RANK);
	CHECK_EQ(report_ev(f, "limit_bytes"), 1000LL << 20);
	CHECK(report_ev(f, "rss_sum_bytes") > 1000LL << 20);
	CHECK(report_ev(f, "pss_sum_bytes") < 600LL << 20);
	CHECK_CONTAINS(json_string_value(json_object_get(f, "fix")), "UsePss");
	json_decref(rep);
}

TEST(report_crash_and_exit_nonzero)
{
	json_t *rep, *f;

	rep = run_and_report("-n 2 -- sh -c 'if [ $COHORT_RANK = 0 ]; then kill -ABRT $$; else exit 3; fi'");
	f = report_need(rep, "crash", REPORT_ANY_RANK);
	CHECK_EQ(rank_of(f), 0);
	CHECK_EQ(report_ev(f, "signal"), SIGABRT);
	f = report_need(rep, "exit_nonzero", REPORT_ANY_RANK);
	CHECK_EQ(rank_of(f), 1);
	CHECK_EQ(report_ev(f, "exit_code"), 3);
	/* Most important first: the crash before the exit. */
	CHECK_STREQ(json_string_value(json_object_get(json_array_get(json_object_get(rep, "diagnosis"), 0), "kind")),
	            "crash");
	json_decref(rep);
	/* Nothing wrong, nothing said. */
	rep = run_and_report("-n 2 -- true");
	CHECK_EQ(json_array_size(json_object_get(rep, "diagnosis")), 0);
	json_decref(rep);
}

TEST(report_cut_recording_of_a_killed_supervisor)
{
	struct cmd_result r;
	char cmd[2048];
	pid_t sup;
	int st;
	char *text;

	snprintf(cmd, sizeof(cmd), "exec %s/cohort run -q -n 2 -i 0.05 -o rec.ndjson -- sleep 100",
	         test_build_dir());
	sup = fork();
	CHECK(sup >= 0);
	if (sup == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	usleep(500000);
	kill(sup, SIGKILL);
	waitpid(sup, &st, 0);
	/* Cut the last line in the middle too, as a kill mid-write would. */
	text = read_file("rec.ndjson");
	CHECK(text && strlen(text) > 100);
	write_file("rec.ndjson", "%s{\"type\":\"sample\",\"t\":9.", text);
	free(text);
	cmd_run(&r, COHORT " report rec.ndjson", test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.out, "recording cut short");
	CHECK_CONTAINS(r.out, ". cut:");
	CHECK_CONTAINS(r.out, "running at the end");
	cmd_free(&r);
}

TEST(report_hostile_recordings)
{
	static const struct { const char *content, *want; } cases[] = {
		{ "", "is empty" },
		{ "hello\n", "is not a cohort recording" },
		{ "\x7f" "ELF\x02\x01\x01\n\x00\x00", "is not a cohort recording" },
		{ "{\"type\":\"sample\",\"t\":1}\n", "is not a cohort recording" },
		{ "{\"type\":\"header\",\"format\":99,\"workers\":1}\n", "format 99" },
		{ "{\"type\":\"header\",\"format\":1,\"workers\":1000000000}\n", "1000000000 workers" },
		{ "{\"type\":\"header\",\"format\":1,\"workers\":-4}\n", "-4 workers" },
		{ "{\"type\":\"header\",\"format\":1,\"wor", "no complete header" },
	};
	struct cmd_result r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_file("bad.ndjson", "%s", cases[i].content);
		cmd_run(&r, COHORT " report bad.ndjson", test_build_dir());
		CHECK_MSG(r.status == 3, "case %zu: exit %d", i, r.status);
		CHECK_CONTAINS(r.err, cases[i].want);
		cmd_free(&r);
	}
	/* A header, then nonsense: a partial report that counts what it skipped. */
	write_file("odd.ndjson",
	           "{\"type\":\"header\",\"format\":1,\"workers\":2,\"command\":[\"x\"]}\n"
	           "not json\n"
	           "{\"type\":\"event\",\"kind\":\"exit\",\"rank\":99,\"signal\":9}\n"
	           "{\"type\":\"event\",\"kind\":\"exit\",\"rank\":-1}\n"
	           "{\"type\":\"sample\",\"t\":\"soon\",\"workers\":[{\"rank\":1e300,\"pss\":-5},{\"rank\":1,\"pss\":\"big\"}]}\n"
	           "{\"type\":\"mystery\"}\n"
	           "[1,2,3]\n"
	           "{\"type\":\"event\",\"kind\":\"leak\",\"rank\":0,\"t\":1e400}\n");
	cmd_run(&r, COHORT " report --json odd.ndjson", test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	/* not JSON, an unknown type, an array, and a number JSON cannot hold (1e400) */
	CHECK_CONTAINS(r.out, "\"bad_lines\": 4");
	cmd_free(&r);
	cmd_run(&r, COHORT " report nonexistent.ndjson", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "cannot read nonexistent.ndjson: No such file or directory");
	cmd_free(&r);
	cmd_run(&r, COHORT " report", test_build_dir());
	CHECK_EQ(r.status, 2);
	cmd_free(&r);
}

TEST_TIMEOUT(report_merges_recordings_and_html_renders, 120)
{
	struct cmd_result r;
	char *html;

	/* Two runs of one job (COHORT_JOB): recordings of two jobs are refused without --force. */
	cmd_run(&r, "COHORT_JOB=merged " COHORT " run -q -n 2 -i 0.1 -o a.ndjson -- " FAULT "leak --rate 4 --seconds 2; "
	        "COHORT_JOB=merged " COHORT " run -q -n 1 -i 0.1 -o b.ndjson -- sh -c 'sleep 1; exit 5'",
	        test_build_dir(), test_build_dir(), test_build_dir());
	cmd_free(&r);
	cmd_run(&r, COHORT " report --html page.html a.ndjson b.ndjson", test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "a.ndjson: 2 workers");
	CHECK_CONTAINS(r.out, "b.ndjson: 1 worker");
	CHECK_CONTAINS(r.out, "exit_nonzero, rank 0: ");
	CHECK_CONTAINS(r.out, "HTML report: page.html");
	cmd_free(&r);
	html = read_file("page.html");
	CHECK(html != NULL);
	CHECK_CONTAINS(html, "<polyline");
	CHECK_CONTAINS(html, "data-kind=\"exit_nonzero\"");
	CHECK(strstr(html, "<script") == NULL && strstr(html, "http://") == strstr(html, "http://www.w3.org"));
	free(html);

	/* In a real browser: loads, no console error, the plots are there. */
	if (access("/usr/bin/chromium", X_OK) != 0)
		SKIP("chromium is not installed (apt-get install chromium) to render the page");
	cmd_run(&r, "timeout 60 /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic "
	        "--no-first-run --disable-background-networking --disable-component-update --disable-sync "
	        "--user-data-dir=%s/chrome --enable-logging=stderr --v=0 --dump-dom file://%s/page.html",
	        test_tmpdir(), test_tmpdir());
	CHECK_MSG(r.status == 0, "chromium exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "<polyline");
	CHECK_CONTAINS(r.out, "cohort report");
	CHECK_MSG(strstr(r.err, "CONSOLE") == NULL && strstr(r.err, "Uncaught") == NULL,
	          "console messages:\n%s", r.err);
	cmd_free(&r);
}

/* Two unrelated local runs (local-<pid> each, no task) are two jobs: refused, with --force merged. */
TEST_TIMEOUT(report_refuses_local_recordings_of_two_jobs, 60)
{
	struct cmd_result r;
	char ja[64] = "", jb[64] = "", want[256];
	char *a, *b, *p;

	cmd_run(&r, "env -u COHORT_JOB " COHORT " run -q -n 1 -i 0.1 -o a.ndjson -- true; "
	        "env -u COHORT_JOB " COHORT " run -q -n 1 -i 0.1 -o b.ndjson -- true", test_build_dir(),
	        test_build_dir());
	cmd_free(&r);
	a = read_file("a.ndjson");
	b = read_file("b.ndjson");
	CHECK(a != NULL && b != NULL);
	CHECK((p = strstr(a, "\"job\":\"local-")) != NULL && sscanf(p, "\"job\":\"%63[^\"]", ja) == 1);
	CHECK((p = strstr(b, "\"job\":\"local-")) != NULL && sscanf(p, "\"job\":\"%63[^\"]", jb) == 1);
	CHECK(strcmp(ja, jb) != 0);
	free(a);
	free(b);
	cmd_run(&r, COHORT " report a.ndjson b.ndjson", test_build_dir());
	CHECK_MSG(r.status == 3, "exit %d: %s%s", r.status, r.out, r.err);
	snprintf(want, sizeof(want), "b.ndjson is of job %s, but a.ndjson is of job %s", jb, ja);
	CHECK_CONTAINS(r.err, want);
	CHECK_CONTAINS(r.err, "--force");
	CHECK_MSG(r.out[0] == '\0', "printed a report: %s", r.out);
	cmd_free(&r);
	cmd_run(&r, COHORT " report --force a.ndjson b.ndjson", test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	snprintf(want, sizeof(want), "b.ndjson is of job %s, not job %s: merged anyway", jb, ja);
	CHECK_CONTAINS(r.out, want);
	cmd_free(&r);
	/* One recording is one job. */
	cmd_run(&r, COHORT " report a.ndjson", test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	cmd_free(&r);
}

TEST_TIMEOUT(report_segfault_in_a_segment_guard_page, 60)
{
	json_t *rep, *f;
	const char *msg;

	/* examples/faults are never built with a sanitizer: the shim catches their signals. */
	rep = run_and_report("-n 1 -- " FAULT "overrun", test_build_dir());
	f = report_need(rep, "segfault", REPORT_ANY_RANK);
	msg = json_string_value(json_object_get(f, "message"));
	CHECK_CONTAINS(msg, "in the guard page after segment /dev/shm/cohort.");
	CHECK_CONTAINS(msg, "a write past the end of the segment");
	CHECK_CONTAINS(json_string_value(json_object_get(f, "fix")), "wrote past the end of a shared segment");
	CHECK_CONTAINS(json_dumps(json_object_get(f, "backtrace"), 0), "overrun.c:");
	json_decref(rep);
	/* The right way fills the grid and says nothing. */
	rep = run_and_report("-n 1 -- " FAULT "overrun --fixed", test_build_dir());
	CHECK_MSG(json_array_size(json_object_get(rep, "diagnosis")) == 0, "findings of the right way: %s",
	          json_dumps(json_object_get(rep, "diagnosis"), 0));
	json_decref(rep);
}

/* Run in a child: the parent turns the swap off whatever happens. */
static void oversubscribed_case(void *arg)
{
	json_t *rep, *f;

	struct cmd_result r;
	char cg[512];

	(void)arg;
	/*
	 * A job whose cgroup limits RAM to 100 MiB but not swap (SLURM's
	 * ConstrainRAMSpace=yes without ConstrainSwapSpace), and a worker that
	 * needs 300: the kernel swaps instead of killing. cohort only watches
	 * (--enforce none: its own worker cgroups would hold swap too).
	 */
	cmd_run(&r, "awk -F: '$2 == \"memory\" { print $3 }' /proc/self/cgroup");
	snprintf(cg, sizeof(cg), "/sys/fs/cgroup/memory%.*s/cohort-test-swap-%d", (int)strcspn(r.out, "\n"),
	         r.out, (int)getpid());
	cmd_free(&r);
	cmd_run(&r, "mkdir %s && echo 100M > %s/memory.limit_in_bytes", cg, cg);
	CHECK_MSG(r.status == 0, "cannot make the job's cgroup %s: %s", cg, r.err);
	cmd_free(&r);
	cmd_run(&r, "sh -c 'echo $$ > %s/cgroup.procs && exec " COHORT " run -o rec.ndjson -n 1 -i 0.2 "
	        "--enforce none -- " FAULT "grow --size 300 --hold 2'", cg, test_build_dir(), test_build_dir());
	cmd_free(&r);
	cmd_run(&r, "rmdir %s", cg);
	cmd_free(&r);
	cmd_run(&r, COHORT " report --json rec.ndjson", test_build_dir());
	rep = json_loads(r.out, 0, NULL);
	CHECK_MSG(rep != NULL, "report is not JSON: %s", r.out);
	cmd_free(&r);
	f = report_need(rep, "oversubscribed", REPORT_ANY_RANK);
	CHECK(report_ev(f, "swap_growth_bytes") > 64LL << 20);
	CHECK_CONTAINS(json_string_value(json_object_get(f, "message")), "went to swap");
	CHECK_EQ(report_count(rep, "oom_kill"), 0);
	json_decref(rep);
}

TEST_TIMEOUT(report_oversubscribed_when_workers_swap, 90)
{
	struct cmd_result r;
	pid_t pid;
	int st;

	if (geteuid() != 0)
		SKIP("it turns on a swap file, which needs root");
	cmd_run(&r, "tail -n +2 /proc/swaps | grep -q . && echo busy");
	if (strstr(r.out, "busy"))
		SKIP("swap is already on here; the test needs to measure its own");
	cmd_free(&r);
	cmd_run(&r, "fallocate -l 512M %s/swap && chmod 600 %s/swap && mkswap %s/swap && swapon %s/swap",
	        test_tmpdir(), test_tmpdir(), test_tmpdir(), test_tmpdir());
	if (r.status != 0)
		SKIP("cannot turn on a swap file here: %s", r.err);
	cmd_free(&r);
	pid = helper_spawn(oversubscribed_case, NULL);
	st = helper_wait(pid, 80000);
	if (st == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	cmd_run(&r, "swapoff %s/swap", test_tmpdir());
	CHECK_MSG(r.status == 0, "swapoff failed: %s", r.err);
	cmd_free(&r);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the case failed (status %d)", st);
}

/* A worker the recording never saw start has no pid: the table shows "-", not 0. */
TEST_TIMEOUT(report_worker_never_started_has_no_pid, 60)
{
	struct cmd_result r;

	cmd_run(&r, COHORT " run -q -n 2 -i 0.1 -o full.ndjson -- true && "
	        "grep -v -e '\"kind\":\"[a-z_]*\",\"rank\":1,' -e '\"type\":\"sample\"' full.ndjson > rec.ndjson",
	        test_build_dir());
	CHECK_EQ(r.status, 0);
	cmd_free(&r);
	cmd_run(&r, COHORT " report rec.ndjson", test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "\n  1     -        not started");
	CHECK_MSG(strstr(r.out, " 0        not started") == NULL, "%s", r.out);
	cmd_free(&r);
}
