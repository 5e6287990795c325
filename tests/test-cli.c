/* test-cli.c - the cohort binary as a user meets it: help, errors, check. */
#include "harness.h"

#include <unistd.h>

#include <jansson.h>

#define COHORT "%s/cohort"

/* Run cohort check against a fixture tree, with the fixture's SLURM env. */
static void check_fixture(struct cmd_result *r, const char *fixture, const char *args)
{
	const char *src = test_src_dir();

	cmd_run(r, "env -i PATH=\"$PATH\" $(cat %s/tests/fixtures/%s/env) "
	        "COHORT_ROOT_PROC=%s/tests/fixtures/%s/proc COHORT_ROOT_CGROUP=%s/tests/fixtures/%s/cgroup "
	        COHORT " check %s", src, fixture, src, fixture, src, fixture, test_build_dir(), args);
}

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);

	CHECK_MSG(j != NULL, "not JSON (%s at line %d):\n%s", err.text, err.line, text);
	return j;
}

static json_t *path(json_t *root, const char *a, const char *b)
{
	json_t *j = json_object_get(root, a);

	CHECK_MSG(j != NULL, "no key '%s'", a);
	if (b) {
		j = json_object_get(j, b);
		CHECK_MSG(j != NULL, "no key '%s.%s'", a, b);
	}
	return j;
}

TEST(cli_help_and_version)
{
	struct cmd_result r;

	cmd_run(&r, COHORT " --help", test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.out, "check");
	cmd_free(&r);
	cmd_run(&r, COHORT " check --help", test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.out, "--mem-per-worker SIZE");
	cmd_free(&r);
	cmd_run(&r, COHORT " --version", test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.out, cohort_version());
	cmd_free(&r);
	/* One version: the header's, which the Makefile reads for the shared library's name. */
	CHECK_STREQ(cohort_version(), COHORT_VERSION_STRING);
	{
		char so[4096];
		snprintf(so, sizeof(so), "%s/libcohort.so." COHORT_VERSION_STRING, test_build_dir());
		CHECK_MSG(access(so, F_OK) == 0, "no %s: the Makefile's version is not the header's", so);
	}
	cmd_run(&r, COHORT, test_build_dir());
	CHECK_EQ(r.status, 2);
	CHECK_CONTAINS(r.err, "Usage: cohort COMMAND");
	cmd_free(&r);
}

TEST(cli_bad_arguments_exit_2_with_clear_errors)
{
	static const struct { const char *args, *want; } cases[] = {
		{ "nope", "cohort: no command 'nope'" },
		{ "check --mem-per-worker 4Q",
		  "cohort: invalid size '4Q' for --mem-per-worker: expected a number with an optional K, M, G or T suffix" },
		{ "check --shm 0.1K", "invalid size '0.1K' for --shm: not a whole number of bytes" },
		{ "check --shm 99999999T", "invalid size '99999999T' for --shm: larger than 16 EiB" },
		{ "check --workers 0", "invalid count '0' for --workers" },
		{ "check -n -3", "invalid count '-3' for --workers" },
		{ "check --workers 3x", "invalid count '3x' for --workers" },
		{ "check --workers", "option '--workers' needs a value" },
		{ "check --frobnicate", "unknown option '--frobnicate'" },
		{ "check extra", "unexpected argument 'extra'" },
		{ "top --pid", "option '--pid' needs a value" },
		{ "top --bogus", "unknown option '--bogus'" },
		{ "gather --ranks", "option '--ranks' needs a value" },
		{ "gather --bogus x", "unknown option '--bogus'" },
		{ "shm ls --bogus", "unknown option '--bogus'" },
		{ "shm gc -x", "unknown option '-x'" },
		{ "check -n 4096 -m 16000000T", "impossible plan" },
		{ "check -n 4097", "invalid count '4097' for --workers" },
		{ "run -n 4097 -- true", "invalid count '4097' for --workers" },
		{ "check -m 0", "--mem-per-worker 0 is 0 bytes: give each worker's memory" },
		{ "check --mem-per-worker 0K", "--mem-per-worker 0K is 0 bytes" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cmd_result r;

		cmd_run(&r, COHORT " %s", test_build_dir(), cases[i].args);
		CHECK_MSG(r.status == 2, "'cohort %s' exited %d, want 2", cases[i].args, r.status);
		CHECK_CONTAINS(r.err, cases[i].want);
		/* One message, cohort's: not getopt's own before it. */
		CHECK_MSG(!strstr(r.err, "unrecognized option") && !strstr(r.err, "requires an argument") &&
		          !strstr(r.err, "invalid option"), "'cohort %s': getopt's message too: %s", cases[i].args, r.err);
		CHECK_MSG(r.out[0] == '\0', "'cohort %s' printed to stdout: %s", cases[i].args, r.out);
		cmd_free(&r);
	}
}

TEST(cli_check_v1_fixture_json)
{
	struct cmd_result r;
	json_t *j, *p;

	check_fixture(&r, "slurm-v1", "--workers 2 --mem-per-worker 100M --json");
	CHECK_EQ(r.status, 0);
	j = parse(r.out);
	CHECK_EQ(json_integer_value(path(j, "allocation", "mem_limit_bytes")), 314572800);
	CHECK_STREQ(json_string_value(path(j, "allocation", "mem_limit_source")), "cgroup");
	CHECK_EQ(json_integer_value(path(j, "allocation", "cpus")), 1);
	CHECK(json_is_integer(path(j, "allocation", "shm_free_bytes")));
	p = path(path(j, "allocation", NULL), "slurm", NULL);
	CHECK_STREQ(json_string_value(json_object_get(p, "job_id")), "2");
	CHECK_STREQ(json_string_value(json_object_get(p, "step_id")), "0");
	CHECK(json_is_true(path(j, "fits", NULL)));
	CHECK_EQ(json_array_size(path(j, "problems", NULL)), 0);
	json_decref(j);
	cmd_free(&r);

	check_fixture(&r, "slurm-v1", "-n 4 -m 100M --json");
	CHECK_EQ(r.status, 1);
	j = parse(r.out);
	CHECK(json_is_false(path(j, "fits", NULL)));
	p = json_array_get(path(j, "problems", NULL), 0);
	CHECK_STREQ(json_string_value(json_object_get(p, "kind")), "mem_limit");
	CHECK_CONTAINS(json_string_value(json_object_get(p, "message")),
	               "4 workers x 100.0 MiB = 400.0 MiB, above the 300.0 MiB memory limit");
	CHECK_CONTAINS(json_string_value(json_object_get(p, "fix")), "request --mem=400M");
	CHECK_CONTAINS(json_string_value(json_object_get(p, "fix")), "use --workers 3");
	json_decref(j);
	cmd_free(&r);
}

TEST(cli_check_v2_fixture_text)
{
	struct cmd_result r;

	check_fixture(&r, "slurm-v2", "-n 2 -m 1G");
	CHECK_EQ(r.status, 1);
	CHECK_CONTAINS(r.out, "Allocation: SLURM job 77, step 0 on node07");
	CHECK_CONTAINS(r.out, "memory limit   1.8 GiB");
	CHECK_CONTAINS(r.out, "job_77/step_0/memory.high");
	CHECK_CONTAINS(r.out, "Verdict: does NOT fit");
	CHECK_CONTAINS(r.out, "fix: request --mem=2G (sbatch/srun), or use --workers 1");
	cmd_free(&r);
	/* One worker is "1 worker", not "1 workers". */
	check_fixture(&r, "slurm-v2", "-n 1 -m 100G");
	CHECK_CONTAINS(r.out, "Plan: 1 worker x 100.0 GiB");
	CHECK_MSG(strstr(r.out, "1 workers") == NULL, "%s", r.out);
	/* No segments were given: none to shrink. */
	CHECK_CONTAINS(r.out, "fix: request --mem=100G (sbatch/srun), or use at most 1.8 GiB per worker");
	CHECK_MSG(strstr(r.out, "shared segments") == NULL, "%s", r.out);
	cmd_free(&r);
}

/* One node of a step across three (srun -N3 cohort check): the verdict names it; on one node it does not. */
TEST(cli_check_names_its_node_when_the_step_spans_nodes)
{
	const char *src = test_src_dir();
	struct cmd_result r;
	json_t *j;

	/* The fixture's variables, then the step's node count of a 3-node step (the later one wins). */
	cmd_run(&r, "env -i PATH=\"$PATH\" $(cat %s/tests/fixtures/slurm-v2/env) SLURM_STEP_NUM_NODES=3 "
	        "SLURM_JOB_NUM_NODES=3 COHORT_ROOT_PROC=%s/tests/fixtures/slurm-v2/proc "
	        "COHORT_ROOT_CGROUP=%s/tests/fixtures/slurm-v2/cgroup " COHORT " check -n 2 -m 1G", src, src, src,
	        test_build_dir());
	CHECK_EQ(r.status, 1);
	CHECK_CONTAINS(r.out, "Verdict: does NOT fit on node node07\n");
	cmd_free(&r);
	cmd_run(&r, "env -i PATH=\"$PATH\" $(cat %s/tests/fixtures/slurm-v2/env) SLURM_STEP_NUM_NODES=3 "
	        "COHORT_ROOT_PROC=%s/tests/fixtures/slurm-v2/proc COHORT_ROOT_CGROUP=%s/tests/fixtures/slurm-v2/cgroup "
	        COHORT " check -n 1 -m 100M --json", src, src, src, test_build_dir());
	CHECK_EQ(r.status, 0);
	j = parse(r.out);
	CHECK_STREQ(json_string_value(path(j, "node", NULL)), "node07");
	json_decref(j);
	cmd_free(&r);

	/* The fixture's own step has one node: no name in the verdict, null in JSON. */
	check_fixture(&r, "slurm-v2", "-n 2 -m 1G");
	CHECK_CONTAINS(r.out, "Verdict: does NOT fit\n");
	cmd_free(&r);
	check_fixture(&r, "slurm-v2", "-n 1 -m 100M --json");
	j = parse(r.out);
	CHECK(json_is_null(path(j, "node", NULL)));
	json_decref(j);
	cmd_free(&r);
}

TEST(cli_check_live_outside_slurm)
{
	struct cmd_result r;
	json_t *j;
	struct cohort_alloc a;

	CHECK_OK(cohort_alloc_detect(NULL, &a));
	cmd_run(&r, "env -u SLURM_JOB_ID " COHORT " check --json", test_build_dir());
	CHECK_EQ(r.status, 0);
	j = parse(r.out);
	CHECK(json_is_null(path(j, "allocation", "slurm")));
	CHECK_EQ(json_integer_value(path(j, "allocation", "ram_total_bytes")), (json_int_t)a.ram_total);
	CHECK_EQ(json_integer_value(path(j, "plan", "workers")), a.cpus);
	json_decref(j);
	cmd_free(&r);
}

TEST(cli_check_unreadable_system_exits_3)
{
	struct cmd_result r;

	cmd_run(&r, "COHORT_ROOT_PROC=/nonexistent " COHORT " check", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "cannot read the allocation");
	CHECK_CONTAINS(r.err, "/nonexistent/meminfo");
	cmd_free(&r);
}

/* What --help says of -o is what happens: an existing file named with -o is replaced. */
TEST_TIMEOUT(cli_run_help_says_o_replaces_a_file, 60)
{
	struct cmd_result r;
	FILE *f;
	char *text;

	cmd_run(&r, COHORT " run --help", test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.out, "record to FILE, as given: an existing regular file\n"
	               "                             of yours is replaced");
	CHECK_CONTAINS(r.out, "is created new, never an existing\n");
	cmd_free(&r);
	CHECK((f = fopen("old.ndjson", "w")) != NULL);
	fputs("an earlier file\n", f);
	fclose(f);
	cmd_run(&r, COHORT " run -q -n 1 -i 0.1 -o old.ndjson -- true", test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	cmd_free(&r);
	text = read_file("old.ndjson");
	CHECK(text != NULL);
	CHECK_MSG(strstr(text, "an earlier file") == NULL && strstr(text, "\"type\":\"header\"") != NULL,
	          "-o did not replace the file: %.200s", text);
	free(text);
}

/* A plan over the caller's --budget: raising the budget is offered, not a check that ignores it. */
TEST(cli_run_over_its_budget_offers_a_larger_budget)
{
	struct cmd_result r;
	struct cohort_alloc a;

	CHECK_OK(cohort_alloc_detect(NULL, &a));
	if (a.mem_limit < (200ULL << 20))
		SKIP("the allocation holds less than 200 MiB");
	cmd_run(&r, "env -u SLURM_JOB_ID " COHORT " run --budget 100M -m 80M -n 2 -- true", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "2 workers x 80.0 MiB = 160.0 MiB, above the 100.0 MiB memory limit (--budget)");
	CHECK_CONTAINS(r.err, "use --workers 1, or at most 50.0 MiB per worker; or raise --budget to 160M");
	CHECK_MSG(strstr(r.err, "cohort check") == NULL, "points to a check that ignores --budget: %s", r.err);
	cmd_free(&r);
	/* Without --budget, cohort check shows the same limit. */
	cmd_run(&r, "env -u SLURM_JOB_ID " COHORT " run -m 100T -n 2 -- true", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "(`cohort check --workers 2 --mem-per-worker 104857600M` shows the allocation)");
	CHECK_MSG(strstr(r.err, "--budget") == NULL, "offers --budget: %s", r.err);
	cmd_free(&r);
}

/* A metrics path under a file: the error names the problem and a fix, never an empty one. */
TEST(cli_run_metrics_under_a_file_has_a_fix)
{
	struct cmd_result r;
	FILE *f;

	CHECK((f = fopen("plain", "w")) != NULL);
	fclose(f);
	cmd_run(&r, COHORT " run --metrics plain/x -n 1 -- true", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "Not a directory; a part of the path is a file, not a directory");
	CHECK_MSG(!strstr(r.err, "; \n") && !strstr(r.err, ";\n"), "an empty fix: %s", r.err);
	cmd_free(&r);
}

/* An existing directory that is no memory cgroup is called that, not "No such file or directory". */
TEST(cli_top_cgroup_that_is_not_one)
{
	struct cmd_result r;

	cmd_run(&r, COHORT " top --cgroup %s --once", test_build_dir(), test_tmpdir());
	CHECK(r.status != 0);
	CHECK_CONTAINS(r.err, "is not a memory cgroup");
	CHECK_CONTAINS(r.err, "memory.current (v2) or memory.usage_in_bytes (v1)");
	CHECK_CONTAINS(r.err, "/proc/PID/cgroup");
	CHECK_MSG(strstr(r.err, "No such file") == NULL, "%s", r.err);
	cmd_free(&r);
	cmd_run(&r, COHORT " top --cgroup /nonexistent-cgroup --once", test_build_dir());
	CHECK(r.status != 0);
	CHECK_CONTAINS(r.err, "no memory cgroup '/nonexistent-cgroup' under ");
	cmd_free(&r);
}

/* cohort shm ls counts the processes it could not read, and says so with the count, not a guess. */
TEST(cli_shm_ls_counts_unreadable_processes)
{
	struct cmd_result r;
	json_t *j;
	json_int_t n;
	char want[64];

	cmd_run(&r, COHORT " shm ls --json", test_build_dir());
	CHECK_EQ(r.status, 0);
	j = parse(r.out);
	CHECK(json_is_integer(path(j, "uninspected_processes", NULL)));
	n = json_integer_value(path(j, "uninspected_processes", NULL));
	CHECK_EQ(n == 0, json_is_true(path(j, "mappers_complete", NULL)));
	json_decref(j);
	cmd_free(&r);
	cmd_run(&r, COHORT " shm ls", test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK_MSG(strstr(r.out, "belong to other users") == NULL, "%s", r.out);
	if (n > 0) {
		/* Processes come and go between the two listings: the wording, not the figure. */
		snprintf(want, sizeof(want), "could not be read");
		CHECK_CONTAINS(r.out, want);
	}
	cmd_free(&r);
}

/* --job that finds nothing: where it looked, what names, and that a directory is missing. */
TEST(cli_report_job_not_found_says_where_and_what)
{
	struct cmd_result r;

	cmd_run(&r, "env -u COHORT_SPOOL " COHORT " report --job nosuch --spool /nonexistent", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "no recording of job nosuch: searched the SLURM plugin's spool /nonexistent/nosuch "
	               "(<step>.<task>.<host>.ndjson), but the spool directory /nonexistent does not exist");
	CHECK_MSG(strstr(r.err, "cohort run") == NULL, "%s", r.err);
	cmd_free(&r);
	cmd_run(&r, "COHORT_SPOOL=/nonexistent " COHORT " report --job nosuch", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "searched . (cohort run's cohort-nosuch.ndjson or cohort-nosuch.<step>.<task>.ndjson) "
	               "and the SLURM plugin's spool /nonexistent/nosuch");
	cmd_free(&r);
	cmd_run(&r, COHORT " report --job nosuch --step 0 .", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "no recording of job nosuch step 0: searched . (cohort run's cohort-nosuch.0.<task>.ndjson)");
	cmd_free(&r);
}
