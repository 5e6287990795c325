/*
 * test-slurm.c - cohort inside real SLURM jobs, on the throwaway cluster
 * that tests/run-all.sh starts (tests/slurm/cluster.sh).
 */
#include "harness.h"

#include <jansson.h>

/* Skip (or fail, when the cluster should have come up) unless SLURM is up. */
static void need_slurm(void)
{
	const char *s = getenv("COHORT_SLURM");

	if (!s)
		SKIP("the SLURM suite runs through make check, which starts the test cluster");
	if (strncmp(s, "failed", 6) == 0)
		test_fail(__FILE__, __LINE__, "SLURM test cluster: %s", s);
	if (strncmp(s, "up:", 3) != 0)
		SKIP("SLURM test cluster %s", s);
	CHECK_MSG(getenv("SLURM_CONF") != NULL, "SLURM_CONF is not set for the test cluster");
}

TEST_TIMEOUT(slurm_check_reports_job_cgroup_limit, 120)
{
	struct cmd_result r;
	const char *text;
	char job[64] = "";
	int seen_proc[2] = { 0, 0 }, n = 0;

	need_slurm();
	cmd_run(&r, "timeout 100 srun --mem=300M -n2 %s/cohort check --json", test_build_dir());
	CHECK_MSG(r.status == 0, "srun exited %d: %s", r.status, r.err);
	/* Two tasks, two JSON objects one after the other. */
	for (text = r.out; *text; ) {
		json_error_t err;
		json_t *j, *a, *s, *cg;

		while (*text == '\n' || *text == ' ')
			text++;
		if (!*text)
			break;
		j = json_loads(text, JSON_DISABLE_EOF_CHECK, &err);
		CHECK_MSG(j != NULL, "bad JSON from task: %s\n%s", err.text, r.out);
		text += err.position;
		n++;
		a = json_object_get(j, "allocation");
		CHECK_EQ(json_integer_value(json_object_get(a, "mem_limit_bytes")), 300 << 20);
		CHECK_STREQ(json_string_value(json_object_get(a, "mem_limit_source")), "cgroup");
		/* Two tasks of the step on this one node: each has half. */
		CHECK_EQ(json_integer_value(json_object_get(json_object_get(a, "slurm"), "tasks_on_node")), 2);
		CHECK_EQ(json_integer_value(json_object_get(a, "task_share_bytes")), 150 << 20);
		cg = json_object_get(a, "cgroup");
		CHECK(json_integer_value(json_object_get(cg, "version")) >= 1);
		s = json_object_get(a, "slurm");
		CHECK(json_is_object(s));
		CHECK_STREQ(json_string_value(json_object_get(s, "step_id")), "0");
		if (!job[0])
			snprintf(job, sizeof(job), "%s", json_string_value(json_object_get(s, "job_id")));
		CHECK_STREQ(json_string_value(json_object_get(s, "job_id")), job);
		char where[128];
		snprintf(where, sizeof(where), "job_%s/", job);
		CHECK_CONTAINS(json_string_value(json_object_get(a, "mem_limit_where")), where);
		json_int_t proc = json_integer_value(json_object_get(s, "proc_id"));
		CHECK(proc == 0 || proc == 1);
		seen_proc[proc]++;
		json_decref(j);
	}
	CHECK_EQ(n, 2);
	CHECK(seen_proc[0] == 1 && seen_proc[1] == 1);
	cmd_free(&r);
}

TEST_TIMEOUT(slurm_mem_limit_is_enforced_by_oom_kill, 120)
{
	struct cmd_result r;

	need_slurm();
	cmd_run(&r, "timeout 100 srun --mem=64M -n1 %s/tests/runner --helper touch 200M", test_build_dir());
	CHECK_MSG(r.status != 0, "a 200 MiB program survived --mem=64M:\n%s%s", r.out, r.err);
	CHECK(strstr(r.out, "touched") == NULL);
	CHECK_CONTAINS(r.err, "oom-kill event");
	CHECK_CONTAINS(r.err, "Out Of Memory");
	cmd_free(&r);

	/* The same program fits in --mem=300M: the kill above was the limit's doing. */
	cmd_run(&r, "timeout 100 srun --mem=300M -n1 %s/tests/runner --helper touch 200M", test_build_dir());
	CHECK_MSG(r.status == 0, "srun --mem=300M exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "touched 209715200 bytes");
	cmd_free(&r);
}

/* cohort run inside a job step: the budget comes from the job's cgroup. */
TEST_TIMEOUT(slurm_run_watch_stops_before_the_oom_killer, 120)
{
	struct cmd_result r;
	char *rec;

	need_slurm();
	cmd_run(&r, "timeout 100 srun --mem=400M -n1 %s/cohort run -n 2 -i 0.1 --grace 1 "
	        "--enforce watch -o %s/rec.ndjson -- %s/examples/faults/grow --size 1024 --rank 1 "
	        "--rate 100 --base 10 --hold 6",
	        test_build_dir(), test_tmpdir(), test_build_dir());
	CHECK_MSG(r.status == 128 + 15, "srun exited %d:\n%s", r.status, r.err);
	CHECK_CONTAINS(r.err, "stopped by cohort");
	CHECK_MSG(strstr(r.err, "oom-kill") == NULL && strstr(r.err, "Out Of Memory") == NULL,
	          "the kernel's OOM killer acted first:\n%s", r.err);
	rec = read_file("rec.ndjson");
	CHECK(rec != NULL);
	/* 400 MiB from the job's cgroup, less the 64 MiB margin, split over 2 workers. */
	CHECK_CONTAINS(rec, "\"mem_limit_bytes\":419430400");
	CHECK_CONTAINS(rec, "\"mem_limit_source\":\"cgroup\"");
	CHECK_CONTAINS(rec, "\"budget_bytes\":352321536");
	CHECK_CONTAINS(rec, "\"mem_per_worker_bytes\":176160768");
	CHECK_CONTAINS(rec, "\"kind\":\"limit\",\"rank\":1");
	CHECK(strstr(rec, "\"kind\":\"oom_kill\"") == NULL);
	free(rec);
	cmd_free(&r);
}

TEST_TIMEOUT(slurm_run_cgroup_per_worker_inside_the_step, 120)
{
	struct cmd_result r;
	char *rec;

	need_slurm();
	cmd_run(&r, "timeout 100 srun --mem=400M -n1 %s/cohort run -n 2 -i 0.1 --enforce cgroup -m 64M "
	        "-o %s/rec.ndjson -- %s/examples/faults/grow --size 300 --rank 0 "
	        "--rate 100 --base 10 --hold 4",
	        test_build_dir(), test_tmpdir(), test_build_dir());
	CHECK_MSG(r.status == 128 + 9, "srun exited %d:\n%s", r.status, r.err);
	CHECK_CONTAINS(r.err, "rank 0 (pid ");
	CHECK_CONTAINS(r.err, "killed by the kernel's OOM killer: its cgroup limit is 64.0 MiB");
	rec = read_file("rec.ndjson");
	CHECK(rec != NULL);
	CHECK_CONTAINS(rec, "\"enforce\":\"cgroup\"");
	CHECK_CONTAINS(rec, "\"kind\":\"oom_kill\",\"rank\":0");
	CHECK(strstr(rec, "\"kind\":\"oom_kill\",\"rank\":1") == NULL);
	/* The worker cgroups sat under the step's: /slurm.../job_N/step_0/... */
	CHECK_CONTAINS(rec, "/step_0/");
	free(rec);
	cmd_free(&r);
}

/* The node has 2 CPUs: four tasks need --overcommit. */

/* The job id of the only recording named cohort-<job>.<step>.0.ndjson here, in job (or ""). */
static void job_of_recordings(const char *step, char *job, size_t size)
{
	struct cmd_result r;

	cmd_run(&r, "ls cohort-*.%s.0.ndjson | sed -n 's/^cohort-\\([0-9]*\\)\\.%s\\.0\\.ndjson$/\\1/p'", step, step);
	snprintf(job, size, "%.*s", (int)strcspn(r.out, "\n"), r.out);
	cmd_free(&r);
}

TEST_TIMEOUT(slurm_run_four_tasks_share_the_node_and_merge, 180)
{
	struct cmd_result r;
	char job[64], path[128], *rec;
	json_error_t jerr;
	json_t *root, *ws;

	need_slurm();
	cmd_run(&r, "timeout 50 srun -n 4 --overcommit --mem=1200M %s/cohort run -q -n 1 -i 0.2 --enforce watch -- "
	        "%s/tests/runner --helper worker --hold 10M --seconds 2", test_build_dir(), test_build_dir());
	CHECK_MSG(r.status == 0, "srun exited %d: %s", r.status, r.err);
	cmd_free(&r);
	job_of_recordings("0", job, sizeof(job));
	CHECK_MSG(job[0], "no recording cohort-<job>.0.0.ndjson");
	for (int t = 0; t < 4; t++) {
		char want[128];

		snprintf(path, sizeof(path), "cohort-%s.0.%d.ndjson", job, t);
		rec = read_file(path);
		CHECK_MSG(rec != NULL, "no recording %s for task %d", path, t);
		/* A quarter of the job's 1200 MiB, less the 64 MiB margin. */
		CHECK_CONTAINS(rec, "\"mem_limit_bytes\":1258291200");
		CHECK_CONTAINS(rec, "\"task_share_bytes\":314572800");
		CHECK_CONTAINS(rec, "\"budget_bytes\":247463936");
		snprintf(want, sizeof(want), "\"task\":{\"source\":\"slurm\",\"job\":\"%s\",\"step\":\"0\",\"id\":%d,"
		         "\"ntasks\":4,", job, t);
		CHECK_CONTAINS(rec, want);
		CHECK_CONTAINS(rec, "\"tasks_on_node\":4,");
		snprintf(want, sizeof(want), "\"rank_offset\":%d}", t);
		CHECK_CONTAINS(rec, want);
		free(rec);
	}
	cmd_run(&r, "ls cohort-%s.* | wc -l", job);
	CHECK_STREQ(r.out, "4\n");
	cmd_free(&r);

	cmd_run(&r, "%s/cohort report --job %s", test_build_dir(), job);
	CHECK_MSG(r.status == 0, "report exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "4 recordings, 4 workers; the step has 4 tasks");
	CHECK_CONTAINS(r.out, "total: 4 workers, 4 exited 0");
	CHECK(strstr(r.out, "no recording") == NULL);
	cmd_free(&r);
	cmd_run(&r, "%s/cohort report --json --job %s", test_build_dir(), job);
	root = json_loads(r.out, 0, &jerr);
	CHECK_MSG(root != NULL, "not JSON: %s", jerr.text);
	ws = json_object_get(root, "workers");
	CHECK_EQ(json_array_size(ws), 4);
	for (size_t i = 0; i < 4; i++) {
		CHECK_EQ(json_integer_value(json_object_get(json_array_get(ws, i), "rank")), (long long)i);
		CHECK_EQ(json_integer_value(json_object_get(json_array_get(ws, i), "task")), (long long)i);
	}
	json_decref(root);
	cmd_free(&r);
}

TEST_TIMEOUT(slurm_salloc_mpirun_ranks_record_apart_and_merge, 180)
{
	struct cmd_result r;
	char job[64];

	need_slurm();
	cmd_run(&r, "command -v mpirun");
	if (r.status != 0)
		SKIP("Open MPI's mpirun is not installed");
	cmd_free(&r);
	cmd_run(&r, "timeout 50 salloc -n 4 --overcommit --mem=1200M mpirun --allow-run-as-root --oversubscribe -np 4 "
	        "%s/cohort run -q -n 1 -i 0.2 --enforce watch -- %s/tests/runner --helper worker --hold 10M "
	        "--seconds 1", test_build_dir(), test_build_dir());
	CHECK_MSG(r.status == 0, "salloc mpirun exited %d: %s", r.status, r.err);
	cmd_free(&r);
	job_of_recordings("mpi", job, sizeof(job));
	CHECK_MSG(job[0], "no recording cohort-<job>.mpi.0.ndjson");
	cmd_run(&r, "ls cohort-%s.mpi.[0-3].ndjson | wc -l", job);
	CHECK_STREQ(r.out, "4\n");
	cmd_free(&r);
	cmd_run(&r, "%s/cohort report --job %s", test_build_dir(), job);
	CHECK_MSG(r.status == 0, "report exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "step mpi: 4 recordings, 4 workers; the step has 4 tasks");
	CHECK(strstr(r.out, "no recording") == NULL);
	cmd_free(&r);
}
