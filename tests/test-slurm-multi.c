/*
 * test-slurm-multi.c - one job across several SLURM nodes: one cohort
 * run per task on each node, one report merged from all of them.
 *
 * The slurm_multi_ tests run on the 3-node cluster that tests/run-all.sh
 * starts beside the single-node one (tests/slurm/cluster.sh --nodes 3:
 * node1..node3 in SLURM's multiple-slurmd mode on this one machine, each
 * slurmd in a mount namespace with its own /dev/shm and PMIx directory:
 * tests/slurm/README.md), and check cohort's report against SLURM's own
 * record of the job (srun's per-task errors, scontrol, the slurmd logs:
 * there is no slurmdbd, so no sacct). The report_multinode_
 * tests read recordings such jobs left (tests/fixtures/recordings/multinode).
 */
#include "harness.h"

#include <jansson.h>
#include <unistd.h>

/* The 3-node cluster's directory; skips (or fails, when it should be up) otherwise. */
static const char *multi_dir(void)
{
	const char *s = getenv("COHORT_SLURM_MULTI");

	if (!s)
		SKIP("the multi-node SLURM suite runs through make check, which starts its 3-node cluster");
	if (strncmp(s, "failed", 6) == 0)
		test_fail(__FILE__, __LINE__, "3-node SLURM test cluster: %s", s);
	if (strncmp(s, "up: ", 4) != 0)
		SKIP("3-node SLURM test cluster %s", s);
	return s + 4;
}

/*
 * scontrol show job, once the job is no longer COMPLETING: while some of
 * its nodes still clean up, NodeList names only those (node2 of three, as
 * seen on a loaded machine), and NumNodes with it. 60 s at most.
 */
static void show_job(struct cmd_result *r, const char *d, const char *job)
{
	for (int i = 0; i < 300; i++) {
		cmd_run(r, "SLURM_CONF=%s/slurm.conf scontrol show job %s", d, job);
		if (!strstr(r->out, "JobState=COMPLETING"))
			return;
		cmd_free(r);
		usleep(200 * 1000);
	}
	cmd_run(r, "SLURM_CONF=%s/slurm.conf scontrol show job %s", d, job);
}

/* The job id of the recording cohort-<job>.0.0.ndjson in the working directory, in job. */
static void job_of_recordings(char *job, size_t size)
{
	struct cmd_result r;

	cmd_run(&r, "ls cohort-*.0.0.ndjson | sed -n 's/^cohort-\\([0-9]*\\)\\.0\\.0\\.ndjson$/\\1/p'");
	snprintf(job, size, "%.*s", (int)strcspn(r.out, "\n"), r.out);
	cmd_free(&r);
}

static json_t *report_json(const char *args)
{
	struct cmd_result r;
	json_error_t jerr;
	json_t *root;

	cmd_run(&r, "%s/cohort report --json %s", test_build_dir(), args);
	CHECK_MSG(r.status == 0, "report exited %d: %s", r.status, r.err);
	root = json_loads(r.out, 0, &jerr);
	CHECK_MSG(root != NULL, "not JSON: %s", jerr.text);
	cmd_free(&r);
	return root;
}

/* srun -N3 -n6: two tasks per node, each task's budget is half its node's limit. */
TEST_TIMEOUT(slurm_multi_six_tasks_on_three_nodes_merge, 150)
{
	const char *d = multi_dir();
	struct cmd_result r;
	char job[64], want[256];
	json_t *root, *ws, *rs;

	cmd_run(&r, "SLURM_CONF=%s/slurm.conf timeout 90 srun -N3 -n6 --overcommit --mem=300M %s/cohort run -q -n 1 "
	        "-i 0.2 --enforce watch -- %s/tests/runner --helper worker --hold 10M --seconds 2",
	        d, test_build_dir(), test_build_dir());
	CHECK_MSG(r.status == 0, "srun exited %d: %s", r.status, r.err);
	cmd_free(&r);
	job_of_recordings(job, sizeof(job));
	CHECK_MSG(job[0], "no recording cohort-<job>.0.0.ndjson");

	/* SLURM's view: the job ran on the three nodes, six tasks. */
	show_job(&r, d, job);
	CHECK_CONTAINS(r.out, "NodeList=node[1-3]");
	CHECK_CONTAINS(r.out, "NumNodes=3");
	CHECK_CONTAINS(r.out, "NumTasks=6");
	CHECK_CONTAINS(r.out, "JobState=COMPLETED");
	cmd_free(&r);

	for (int t = 0; t < 6; t++) {
		char path[128], *rec;

		snprintf(path, sizeof(path), "cohort-%s.0.%d.ndjson", job, t);
		rec = read_file(path);
		CHECK_MSG(rec != NULL, "no recording %s for task %d", path, t);
		/* Block distribution: tasks 2k and 2k+1 on node k+1, in that node's own job cgroup. */
		snprintf(want, sizeof(want), "\"task\":{\"source\":\"slurm\",\"job\":\"%s\",\"step\":\"0\",\"id\":%d,"
		         "\"ntasks\":6,\"node\":\"node%d\",\"node_id\":%d,\"tasks_on_node\":2,", job, t, t / 2 + 1, t / 2);
		CHECK_CONTAINS(rec, want);
		snprintf(want, sizeof(want), "/sys/fs/cgroup/memory/slurm_node%d/uid_0/job_%s/memory.limit_in_bytes",
		         t / 2 + 1, job);
		if (strstr(rec, "\"version\":1"))
			CHECK_CONTAINS(rec, want);
		/* The node's 300 MiB, half for each of its two tasks. */
		CHECK_CONTAINS(rec, "\"mem_limit_bytes\":314572800");
		CHECK_CONTAINS(rec, "\"task_share_bytes\":157286400");
		CHECK_CONTAINS(rec, "1/2 for the 2 tasks of the step on this node");
		free(rec);
	}
	cmd_run(&r, "ls cohort-%s.* | wc -l", job);
	CHECK_STREQ(r.out, "6\n");
	cmd_free(&r);

	cmd_run(&r, "%s/cohort report --job %s", test_build_dir(), job);
	CHECK_MSG(r.status == 0, "report exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "job ");
	CHECK_CONTAINS(r.out, "6 recordings, 6 workers; the step has 6 tasks");
	CHECK_CONTAINS(r.out, "(node node3), job ");
	CHECK_CONTAINS(r.out, "total: 6 workers, 6 exited 0");
	CHECK(strstr(r.out, "no recording") == NULL && strstr(r.out, "cut short") == NULL);
	cmd_free(&r);

	snprintf(want, sizeof(want), "--job %s", job);
	root = report_json(want);
	ws = json_object_get(root, "workers");
	CHECK_EQ(json_array_size(ws), 6);
	for (size_t i = 0; i < 6; i++) {
		json_t *w = json_array_get(ws, i);
		char node[16];

		snprintf(node, sizeof(node), "node%zu", i / 2 + 1);
		CHECK_EQ(json_integer_value(json_object_get(w, "rank")), (long long)i);
		CHECK_EQ(json_integer_value(json_object_get(w, "task")), (long long)i);
		CHECK_STREQ(json_string_value(json_object_get(w, "node")), node);
	}
	rs = json_object_get(root, "recordings");
	CHECK_EQ(json_array_size(rs), 6);
	CHECK_STREQ(json_string_value(json_object_get(json_array_get(rs, 5), "node")), "node3");
	json_decref(root);
}

/* Task 4 (node3) over its node's limit: SLURM's OOM kill, and the report names node3, task 4, its pid. */
TEST_TIMEOUT(slurm_multi_oom_on_node3_names_node_task_and_process, 150)
{
	const char *d = multi_dir();
	struct cmd_result r;
	char job[64], want[256], *log;
	json_t *root, *fs, *ws;
	bool found = false;

	/* The runner may be built with a sanitizer, which wants no preload (cohort's shim) before it. */
	write_file("prog.sh", "#!/bin/sh\nunset LD_PRELOAD\nif [ \"$SLURM_PROCID\" = 4 ]; then exec %s/tests/runner --helper touch 400M; "
	           "else exec %s/tests/runner --helper worker --hold 10M --seconds 3; fi\n", test_build_dir(),
	           test_build_dir());
	cmd_run(&r, "chmod +x prog.sh && SLURM_CONF=%s/slurm.conf timeout 90 srun -N3 -n6 --overcommit --mem=200M "
	        "%s/cohort run -q -n 1 -i 0.2 --enforce none -- ./prog.sh", d, test_build_dir());
	CHECK_MSG(r.status != 0, "a 400 MiB task survived --mem=200M:\n%s", r.err);
	/* SLURM's view: node3's task 4, out of memory. */
	CHECK_CONTAINS(r.err, "node3: task 4: Out Of Memory");
	CHECK(strstr(r.err, "node1: task") == NULL && strstr(r.err, "node2: task") == NULL);
	cmd_free(&r);
	job_of_recordings(job, sizeof(job));
	CHECK_MSG(job[0], "no recording cohort-<job>.0.0.ndjson");
	show_job(&r, d, job);
	CHECK_CONTAINS(r.out, "JobState=OUT_OF_MEMORY");
	cmd_free(&r);
	snprintf(want, sizeof(want), "%s/slurmd-node3.log", d);
	log = read_file(want);
	CHECK(log != NULL);
	snprintf(want, sizeof(want), "Detected 1 oom-kill event(s) in StepId=%s.0", job);
	CHECK_CONTAINS(log, want);
	free(log);
	for (int n = 1; n <= 2; n++) {
		snprintf(want, sizeof(want), "%s/slurmd-node%d.log", d, n);
		log = read_file(want);
		snprintf(want, sizeof(want), "oom-kill event(s) in StepId=%s.0", job);
		CHECK_MSG(!log || !strstr(log, want), "node%d's slurmd saw an OOM kill too", n);
		free(log);
	}

	snprintf(want, sizeof(want), "--job %s", job);
	root = report_json(want);
	ws = json_object_get(root, "workers");
	CHECK_EQ(json_array_size(ws), 6);
	json_int_t pid4 = json_integer_value(json_object_get(json_array_get(ws, 4), "pid"));
	CHECK(pid4 > 0);
	fs = json_object_get(root, "diagnosis");
	CHECK_MSG(json_is_array(fs), "no findings array in the report");
	for (size_t i = 0; i < json_array_size(fs); i++) {
		json_t *f = json_array_get(fs, i);

		if (strcmp(json_string_value(json_object_get(f, "kind")) ?: "", "oom_kill") != 0)
			continue;
		CHECK_MSG(!found, "two oom_kill findings");
		found = true;
		CHECK_EQ(json_integer_value(json_object_get(f, "task")), 4);
		CHECK_STREQ(json_string_value(json_object_get(f, "node")), "node3");
		CHECK_EQ(json_integer_value(json_object_get(f, "rank")), 4);
		CHECK_EQ(json_integer_value(json_object_get(f, "pid")), pid4);
	}
	CHECK_MSG(found, "no oom_kill finding");
	json_decref(root);
	cmd_run(&r, "%s/cohort report --job %s", test_build_dir(), job);
	snprintf(want, sizeof(want), "oom_kill, rank 4 (task 4, node node3): rank 4 (pid %lld) was killed by the "
	         "kernel's OOM killer", (long long)pid4);
	CHECK_CONTAINS(r.out, want);
	cmd_free(&r);
}

/* Poll cmd (a shell test) every 0.2 s for up to secs; true when it held. */
static bool wait_until(unsigned secs, const char *cmd)
{
	for (unsigned i = 0; i < secs * 5; i++) {
		struct cmd_result r;
		int st;

		cmd_run(&r, "%s", cmd);
		st = r.status;
		cmd_free(&r);
		if (st == 0)
			return true;
		usleep(200 * 1000);
	}
	return false;
}

static void node_lost_case(void *arg)
{
	const char *d = arg;
	struct cmd_result r;
	char job[64], cmd[1024];

	/* The step runs in the background: node3 lost, srun waits for it until SLURM gives up. */
	cmd_run(&r, "SLURM_CONF=%s/slurm.conf timeout 120 srun -N3 -n3 --mem=200M %s/cohort run -q -n 1 "
	        "-i 0.2 --enforce watch -- %s/tests/runner --helper worker --hold 10M --seconds 6 "
	        ">srun.out 2>srun.err </dev/null &", d, test_build_dir(), test_build_dir());
	cmd_free(&r);
	CHECK_MSG(wait_until(60, "for t in 0 1 2; do grep -q '\"type\":\"sample\"' cohort-*.0.$t.ndjson || exit 1; "
	                         "done 2>/dev/null"),
	          "the three tasks did not start recording");
	job_of_recordings(job, sizeof(job));
	CHECK(job[0]);
	/* node3 lost: its slurmd, then every process of the job there (slurmstepd, cohort, worker). */
	cmd_run(&r, "kill -9 $(cat %s/slurmd-node3.pid) && find /sys/fs/cgroup/memory/slurm_node3/uid_0/job_%s "
	        "-name cgroup.procs -exec cat {} + | sort -u | xargs -r kill -9", d, job);
	CHECK_MSG(r.status == 0, "killing node3 failed: %s", r.err);
	cmd_free(&r);
	/* The other two tasks end their 6 s and their recordings. */
	snprintf(cmd, sizeof(cmd), "grep -q '\"type\":\"end\"' cohort-%s.0.0.ndjson && "
	         "grep -q '\"type\":\"end\"' cohort-%s.0.1.ndjson", job, job);
	CHECK_MSG(wait_until(40, cmd), "tasks 0 and 1 did not end their recordings");
	/* SLURM's view: node3 stops answering (SlurmdTimeout=20 on this cluster). */
	snprintf(cmd, sizeof(cmd), "SLURM_CONF=%s/slurm.conf sinfo -h -n node3 -o %%T | grep -Eq 'down|not_responding|\\*'",
	         d);
	CHECK_MSG(wait_until(60, cmd), "SLURM never saw node3 go");

	cmd_run(&r, "%s/cohort report --job %s", test_build_dir(), job);
	CHECK_MSG(r.status == 0, "report exited %d: %s", r.status, r.err);
	snprintf(cmd, sizeof(cmd), "task 2 on node node3: its recording cohort-%s.0.2.ndjson is cut short at ", job);
	CHECK_CONTAINS(r.out, cmd);
	CHECK_CONTAINS(r.out, "(the step's longest runs ");
	CHECK(strstr(r.out, "task 0 on node") == NULL && strstr(r.out, "task 1 on node") == NULL);
	cmd_free(&r);
	/* Its recording never arrived (a node-local directory): the report says where it was expected. */
	snprintf(cmd, sizeof(cmd), "mkdir -p gone && mv cohort-%s.0.2.ndjson gone/", job);
	cmd_run(&r, "%s", cmd);
	cmd_free(&r);
	cmd_run(&r, "%s/cohort report --job %s", test_build_dir(), job);
	snprintf(cmd, sizeof(cmd), "task 2 of 3 on the step's node 2 (by block distribution), from which no "
	         "recording came: no recording (expected cohort-%s.0.2.ndjson)", job);
	CHECK_CONTAINS(r.out, cmd);
	cmd_free(&r);
	cmd_run(&r, "SLURM_CONF=%s/slurm.conf scancel %s", d, job);
	cmd_free(&r);
}

/* A node lost mid-job: the report names the node whose recording is cut, or missing. */
TEST_TIMEOUT(slurm_multi_node_lost_mid_job_is_said, 240)
{
	const char *d = multi_dir();
	struct cmd_result r;

	cmd_run(&r, "test -d /sys/fs/cgroup/memory");
	if (r.status != 0)
		SKIP("finding node3's processes by their cgroup is written for cgroup v1");
	cmd_free(&r);
	/* slurm_case restarts the cluster after, whatever the case did: node3 comes back. */
	slurm_case(d, node_lost_case, 200 * 1000);
	cmd_run(&r, "SLURM_CONF=%s/slurm.conf timeout 60 sh -c 'until [ $(sinfo -h -N -o %%T | grep -c ^idle) -ge 3 ]; "
	        "do sleep 0.5; done'", d);
	CHECK_MSG(r.status == 0, "node3 did not come back after the case");
	cmd_free(&r);
}

/* The same from a batch script: sbatch -N3, srun inside it; the batch step itself runs on node1. */
TEST_TIMEOUT(slurm_multi_sbatch_three_nodes_one_report, 150)
{
	const char *d = multi_dir();
	struct cmd_result r;
	char job[64];

	write_file("job.sh", "#!/bin/sh\n#SBATCH -N3 --ntasks-per-node=2 --overcommit --mem=300M\n"
	           "srun %s/cohort run -q -n 1 -i 0.2 --enforce watch -- %s/tests/runner --helper worker "
	           "--hold 10M --seconds 2\necho srun=$?\n", test_build_dir(), test_build_dir());
	cmd_run(&r, "SLURM_CONF=%s/slurm.conf timeout 100 sbatch --wait -o job.out job.sh", d);
	CHECK_MSG(r.status == 0, "sbatch exited %d: %s%s", r.status, r.out, r.err);
	cmd_free(&r);
	job_of_recordings(job, sizeof(job));
	CHECK_MSG(job[0], "no recording cohort-<job>.0.0.ndjson");
	show_job(&r, d, job);
	CHECK_CONTAINS(r.out, "BatchFlag=1");
	CHECK_CONTAINS(r.out, "BatchHost=node1");
	CHECK_CONTAINS(r.out, "NodeList=node[1-3]");
	CHECK_CONTAINS(r.out, "JobState=COMPLETED");
	cmd_free(&r);
	cmd_run(&r, "cat job.out");
	CHECK_CONTAINS(r.out, "srun=0");
	cmd_free(&r);
	cmd_run(&r, "%s/cohort report --job %s", test_build_dir(), job);
	CHECK_MSG(r.status == 0, "report exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "6 recordings, 6 workers; the step has 6 tasks");
	for (int t = 0; t < 6; t++) {
		char row[64];

		/* Each worker's row: its rank, its task, its node. */
		snprintf(row, sizeof(row), "  %-5d %-5d node%-8d ", t, t, t / 2 + 1);
		CHECK_CONTAINS(r.out, row);
	}
	CHECK_CONTAINS(r.out, "total: 6 workers, 6 exited 0");
	CHECK(strstr(r.out, "no recording") == NULL && strstr(r.out, "cut short") == NULL);
	cmd_free(&r);
}

/* node3's task holds three times what the others hold: a node_imbalance finding with the figures. */
TEST_TIMEOUT(slurm_multi_one_node_at_three_times_is_an_imbalance, 150)
{
	const char *d = multi_dir();
	struct cmd_result r;
	char job[64], want[64];
	json_t *root, *fs, *f = NULL;
	double ratio;

	write_file("prog.sh", "#!/bin/sh\nunset LD_PRELOAD\nhold=80M; [ \"$SLURMD_NODENAME\" = node3 ] && hold=240M\n"
	           "exec %s/tests/runner --helper worker --hold $hold --seconds 3\n", test_build_dir());
	cmd_run(&r, "chmod +x prog.sh && SLURM_CONF=%s/slurm.conf timeout 90 srun -N3 -n3 --mem=400M "
	        "%s/cohort run -q -n 1 -i 0.2 --enforce watch -- ./prog.sh", d, test_build_dir());
	CHECK_MSG(r.status == 0, "srun exited %d: %s", r.status, r.err);
	cmd_free(&r);
	job_of_recordings(job, sizeof(job));
	CHECK(job[0]);
	show_job(&r, d, job);
	CHECK_CONTAINS(r.out, "JobState=COMPLETED");
	CHECK_CONTAINS(r.out, "NodeList=node[1-3]");
	cmd_free(&r);
	snprintf(want, sizeof(want), "--job %s", job);
	root = report_json(want);
	fs = json_object_get(root, "diagnosis");
	for (size_t i = 0; i < json_array_size(fs); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(fs, i), "kind")) ?: "", "node_imbalance") == 0)
			f = json_array_get(fs, i);
	CHECK_MSG(f != NULL, "no node_imbalance finding");
	CHECK_STREQ(json_string_value(json_object_get(f, "node")), "node3");
	CHECK_CONTAINS(json_string_value(json_object_get(f, "message")), "node node3's 1 task peaked at ");
	/* 240 MiB against 80 MiB, each with the helper's own few MiB: about 3x, whatever the sampling phase. */
	ratio = json_real_value(json_object_get(json_object_get(f, "evidence"), "ratio"));
	CHECK_MSG(ratio > 2.5 && ratio < 3.2, "ratio %.2f", ratio);
	CHECK(json_integer_value(json_object_get(json_object_get(f, "evidence"), "node_task_peak_mean")) >= 240 << 20);
	json_decref(root);
}

/* The findings of a kind in a report, and the one of them (NULL when not exactly one). */
static json_t *only_finding(json_t *root, const char *kind, size_t *ret_n)
{
	json_t *fs = json_object_get(root, "diagnosis"), *hit = NULL;
	size_t n = 0;

	for (size_t i = 0; i < json_array_size(fs); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(fs, i), "kind")) ?: "", kind) == 0) {
			hit = json_array_get(fs, i);
			n++;
		}
	*ret_n = n;
	return n == 1 ? hit : NULL;
}

static json_int_t evidence_of(json_t *f, const char *name)
{
	json_t *v = json_object_get(json_object_get(f, "evidence"), name);

	return v ? (json_int_t)json_number_value(v) : -1;
}

static void shm_small_case(void *arg)
{
	const char *d = arg;
	struct cmd_result r;
	char job[64], want[256], *rec;
	json_t *root, *f;
	size_t n;

	/* node3's slurmd again, in a namespace whose /dev/shm is 32 MiB; node1's and node2's as large as this host's. */
	cmd_run(&r, "%s/tests/slurm/cluster.sh start %s --shm-size node3=32M", test_src_dir(), d);
	CHECK_MSG(r.status == 0, "reconfiguring node3's /dev/shm failed: %s", r.err);
	cmd_free(&r);

	/* What each node's tasks see, with SLURM's own task ids and node names. */
	cmd_run(&r, "SLURM_CONF=%s/slurm.conf timeout 60 srun -N3 -n3 sh -c 'echo \"task $SLURM_PROCID on "
	        "$SLURMD_NODENAME: $(df -k --output=size /dev/shm | tail -n 1 | tr -d \" \")K\"' | sort", d);
	CHECK_MSG(r.status == 0, "srun exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "task 2 on node3: 32768K\n");
	CHECK_MSG(strstr(r.out, "task 0 on node1: 32768K") == NULL && strstr(r.out, "task 1 on node2: 32768K") == NULL,
	          "node1 or node2 has node3's /dev/shm:\n%s", r.out);
	cmd_free(&r);

	/* cohort check on every node, one output file per task (srun -o %%t): node3's says it, by name. */
	cmd_run(&r, "SLURM_CONF=%s/slurm.conf timeout 60 srun -N3 -n3 --mem=400M -o check-%%t.txt %s/cohort check --shm 48M",
	        d, test_build_dir());
	CHECK_MSG(r.status != 0, "48 MiB of segments fit every node");
	CHECK_CONTAINS(r.err, "node3: task 2: Exited with exit code 1");
	CHECK(strstr(r.err, "node1: task") == NULL && strstr(r.err, "node2: task") == NULL);
	cmd_free(&r);
	for (int t = 0; t < 3; t++) {
		char path[32], *out;

		snprintf(path, sizeof(path), "check-%d.txt", t);
		out = read_file(path);
		CHECK_MSG(out != NULL, "no %s", path);
		snprintf(want, sizeof(want), "Verdict: %s on node node%d\n", t == 2 ? "does NOT fit" : "fits", t + 1);
		CHECK_CONTAINS(out, want);
		if (t == 2)
			CHECK_CONTAINS(out, "the shared segments need 48.0 MiB but /dev/shm has 32.0 MiB free of 32.0 MiB");
		free(out);
	}
	cmd_run(&r, "SLURM_CONF=%s/slurm.conf timeout 60 srun -N3 -n3 --mem=400M -o check-%%t.json %s/cohort check "
	        "--json --shm 48M", d, test_build_dir());
	cmd_free(&r);
	for (int t = 0; t < 3; t++) {
		char path[32], node[16], *out;
		json_error_t jerr;

		snprintf(path, sizeof(path), "check-%d.json", t);
		out = read_file(path);
		CHECK_MSG(out != NULL, "no %s", path);
		root = json_loads(out, 0, &jerr);
		CHECK_MSG(root != NULL, "%s is not JSON: %s", path, jerr.text);
		snprintf(node, sizeof(node), "node%d", t + 1);
		CHECK_STREQ(json_string_value(json_object_get(root, "node")), node);
		CHECK_MSG(json_is_true(json_object_get(root, "fits")) == (t != 2), "%s: fits is wrong:\n%s", node, out);
		if (t == 2)
			CHECK_EQ(json_integer_value(json_object_get(json_object_get(root, "allocation"), "shm_size_bytes")),
			         32LL << 20);
		json_decref(root);
		free(out);
	}

	/* The job: every task writes a 48 MiB segment (ftruncate, then memset); node3's dies of SIGBUS. */
	cmd_run(&r, "SLURM_CONF=%s/slurm.conf timeout 90 srun -N3 -n3 --mem=400M %s/cohort run -q -n 1 -i 0.1 -- "
	        "%s/examples/faults/shm-full --size 48", d, test_build_dir(), test_build_dir());
	CHECK_MSG(r.status != 0, "node3's task survived a 48 MiB segment in a 32 MiB /dev/shm:\n%s", r.err);
	/* SLURM's view: node3's task 2, and only it, ended by signal 7 (128 + SIGBUS). */
	CHECK_CONTAINS(r.err, "node3: task 2: Exited with exit code 135");
	CHECK(strstr(r.err, "node1: task") == NULL && strstr(r.err, "node2: task") == NULL);
	cmd_free(&r);
	job_of_recordings(job, sizeof(job));
	CHECK_MSG(job[0], "no recording cohort-<job>.0.0.ndjson");
	show_job(&r, d, job);
	CHECK_CONTAINS(r.out, "NodeList=node[1-3]");
	CHECK_CONTAINS(r.out, "NumTasks=3");
	cmd_free(&r);
	/* Each task's recording has its own node's /dev/shm. */
	for (int t = 0; t < 3; t++) {
		char path[128];

		snprintf(path, sizeof(path), "cohort-%s.0.%d.ndjson", job, t);
		rec = read_file(path);
		CHECK_MSG(rec != NULL, "no recording %s", path);
		snprintf(want, sizeof(want), "\"node\":\"node%d\"", t + 1);
		CHECK_CONTAINS(rec, want);
		CHECK_MSG((strstr(rec, "\"shm_size_bytes\":33554432,") != NULL) == (t == 2),
		          "task %d's recording has the wrong /dev/shm", t);
		free(rec);
	}

	snprintf(want, sizeof(want), "--job %s", job);
	root = report_json(want);
	f = only_finding(root, "shm_exhausted", &n);
	CHECK_MSG(f != NULL, "%zu shm_exhausted findings, want 1", n);
	CHECK_EQ(json_integer_value(json_object_get(f, "task")), 2);
	CHECK_EQ(json_integer_value(json_object_get(f, "rank")), 2);
	CHECK_STREQ(json_string_value(json_object_get(f, "node")), "node3");
	CHECK_EQ(evidence_of(f, "shm_size_bytes"), 32LL << 20);
	CHECK(only_finding(root, "bus_error", &n) == NULL && n == 0);
	for (size_t i = 0; i < 2; i++) {
		json_t *w = json_array_get(json_object_get(root, "workers"), i);

		CHECK_MSG(json_is_integer(json_object_get(w, "exit_code")) &&
		          json_integer_value(json_object_get(w, "exit_code")) == 0,
		          "task %zu did not exit 0: %s", i, json_dumps(w, 0));
	}
	json_decref(root);
	cmd_run(&r, "%s/cohort report --job %s", test_build_dir(), job);
	CHECK_CONTAINS(r.out, "shm_exhausted, rank 2 (task 2, node node3): rank 2 (pid ");
	CHECK_CONTAINS(r.out, "/dev/shm had 32.0 MiB free of 32.0 MiB at the start");
	CHECK_CONTAINS(r.out, "total: 3 workers, 2 exited 0");
	cmd_free(&r);
}

/* node3's /dev/shm (its own mount) too small for the segment every task writes: only node3's task is told. */
TEST_TIMEOUT(slurm_multi_shm_too_small_on_one_node, 240)
{
	const char *d = multi_dir();

	/* slurm_case restarts the cluster after: every node's /dev/shm as large as this host's again. */
	slurm_case(d, shm_small_case, 200 * 1000);
}

/*
 * An MPI job across the three nodes, launched by srun --mpi=pmix (Debian's
 * Open MPI on SLURM's PMIx plugin, one cohort run per rank): rank 2, on
 * node3, grows past its node's limit and the kernel kills it; srun -K1
 * ends the others, as MPI jobs are run. Each node's slurmstepd makes its
 * PMIx client directory in a tmpfs of its own (cluster.sh: mpi.conf's
 * PMIxCliTmpDirBase in the node's mount namespace).
 */
TEST_TIMEOUT(slurm_multi_mpi_rank_oom_killed_on_node3_is_named, 180)
{
	const char *d = multi_dir();
	struct cmd_result r;
	char job[64], want[256], *log;
	json_t *root, *f;
	long long pid2;
	size_t n;

	cmd_run(&r, "command -v mpicc");
	if (r.status != 0)
		SKIP("no mpicc (apt-get install libopenmpi-dev openmpi-bin)");
	cmd_free(&r);
	cmd_run(&r, "SLURM_CONF=%s/slurm.conf srun --mpi=list 2>&1", d);
	if (!strstr(r.out, "pmix"))
		SKIP("SLURM has no PMIx plugin here (srun --mpi=list: %s)", r.out);
	cmd_free(&r);
	cmd_run(&r, "mpicc -o mpi_over %s/tests/progs/mpi_over.c", test_src_dir());
	CHECK_MSG(r.status == 0, "mpicc failed: %s", r.err);
	cmd_free(&r);

	cmd_run(&r, "SLURM_CONF=%s/slurm.conf timeout 120 srun -K1 -N3 -n3 --mpi=pmix --mem=200M %s/cohort run -q "
	        "-n 1 -i 0.2 --enforce none -- ./mpi_over --hold 10 --grow-rank 2 --grow-to 400 --seconds 60",
	        d, test_build_dir());
	CHECK_MSG(r.status != 0 && r.status != 124, "srun exited %d: %s", r.status, r.err);
	/* Every rank came up through PMIx, on its node: no temp-dir collision, no launch failure. */
	for (int k = 0; k < 3; k++) {
		snprintf(want, sizeof(want), "mpi_over: rank %d of 3 is pid ", k);
		CHECK_MSG(strstr(r.out, want), "rank %d did not start:\n%s%s", k, r.out, r.err);
	}
	pid2 = atoll(strstr(r.out, "mpi_over: rank 2 of 3 is pid ") + strlen("mpi_over: rank 2 of 3 is pid "));
	CHECK(pid2 > 0);
	/* SLURM's view: node3's task 2 out of memory, the others ended by srun -K1. */
	CHECK_CONTAINS(r.err, "node3: task 2: Out Of Memory");
	/* (PMIx's own error handler may speak as -K1 ends the step: only a launch failure counts here.) */
	CHECK_MSG(strstr(r.err, "launch failed") == NULL && strstr(r.err, "File exists") == NULL,
	          "the step did not launch cleanly:\n%s", r.err);
	cmd_free(&r);
	job_of_recordings(job, sizeof(job));
	CHECK_MSG(job[0], "no recording cohort-<job>.0.0.ndjson");
	show_job(&r, d, job);
	CHECK_CONTAINS(r.out, "NodeList=node[1-3]");
	CHECK_CONTAINS(r.out, "NumTasks=3");
	cmd_free(&r);
	snprintf(want, sizeof(want), "%s/slurmd-node3.log", d);
	log = read_file(want);
	CHECK(log != NULL);
	snprintf(want, sizeof(want), "Detected 1 oom-kill event(s) in StepId=%s.0", job);
	CHECK_CONTAINS(log, want);
	free(log);
	for (int k = 1; k <= 3; k++) {
		snprintf(want, sizeof(want), "%s/slurmd-node%d.log", d, k);
		log = read_file(want);
		CHECK(log != NULL);
		snprintf(want, sizeof(want), "spmix_appdir_0_%s.0\": File exists", job);
		CHECK_MSG(!strstr(log, want), "node%d: the PMIx client directories of two nodes collided", k);
		free(log);
	}

	snprintf(want, sizeof(want), "--job %s", job);
	root = report_json(want);
	f = only_finding(root, "oom_kill", &n);
	CHECK_MSG(f != NULL, "%zu oom_kill findings, want 1", n);
	CHECK_EQ(json_integer_value(json_object_get(f, "task")), 2);
	CHECK_STREQ(json_string_value(json_object_get(f, "node")), "node3");
	CHECK_EQ(json_integer_value(json_object_get(f, "pid")), pid2);
	CHECK_EQ(evidence_of(f, "process_mpi_rank"), 2);
	json_decref(root);
	cmd_run(&r, "%s/cohort report --job %s", test_build_dir(), job);
	snprintf(want, sizeof(want), "oom_kill, rank 2 (task 2, node node3): rank 2 (MPI rank 2, pid %lld) was killed "
	         "by the kernel's OOM killer", pid2);
	CHECK_CONTAINS(r.out, want);
	cmd_free(&r);
}

/*
 * The same program started by mpirun inside salloc -N3 (Open MPI starts an
 * orted per node through srun, step 0, and the ranks below it): six ranks
 * mapped by node, rank 5 on node3 OOM-killed. Every rank's recording is
 * one MPI rank's (cohort-<job>.mpi.<rank>.ndjson), and they merge.
 */
TEST_TIMEOUT(slurm_multi_mpirun_in_salloc_rank_oom_killed_is_named, 180)
{
	const char *d = multi_dir();
	struct cmd_result r;
	char job[64] = "", want[256], *log;
	json_t *root, *f;
	long long pid5;
	size_t n;

	cmd_run(&r, "command -v mpicc && command -v mpirun");
	if (r.status != 0)
		SKIP("no mpicc or mpirun (apt-get install libopenmpi-dev openmpi-bin)");
	cmd_free(&r);
	cmd_run(&r, "mpicc -o mpi_over %s/tests/progs/mpi_over.c", test_src_dir());
	CHECK_MSG(r.status == 0, "mpicc failed: %s", r.err);
	cmd_free(&r);
	/* Open MPI refuses root without --allow-run-as-root; six ranks on three one-CPU nodes oversubscribe. */
	cmd_run(&r, "SLURM_CONF=%s/slurm.conf timeout 120 salloc -N3 --mem=200M sh -c 'echo job=$SLURM_JOB_ID; "
	        "mpirun --allow-run-as-root -np 6 --map-by node --oversubscribe --mca btl self,vader,tcp %s/cohort run "
	        "-q -n 1 -i 0.2 --enforce none -- ./mpi_over --hold 10 --grow-rank 5 --grow-to 400 --seconds 60'",
	        d, test_build_dir());
	CHECK_MSG(r.status != 0 && r.status != 124, "salloc exited %d: %s", r.status, r.err);
	for (int k = 0; k < 6; k++) {
		snprintf(want, sizeof(want), "mpi_over: rank %d of 6 is pid ", k);
		CHECK_MSG(strstr(r.out, want), "rank %d did not start:\n%s%s", k, r.out, r.err);
	}
	pid5 = atoll(strstr(r.out, "mpi_over: rank 5 of 6 is pid ") + strlen("mpi_over: rank 5 of 6 is pid "));
	CHECK(pid5 > 0);
	sscanf(strstr(r.out, "job=") + 4, "%63[0-9]", job);
	CHECK(job[0]);
	/*
	 * mpirun's view: a rank's process ended 137, SIGKILL's status. It names
	 * the first it was told of, which is rank 5's or, as mpirun aborts the
	 * job in its wake, another's on the same node: which rank it was is the
	 * report's to say (below), from the kernel's word.
	 */
	CHECK_CONTAINS(r.err, "  Exit code:    137");
	cmd_free(&r);
	snprintf(want, sizeof(want), "%s/slurmd-node3.log", d);
	log = read_file(want);
	CHECK(log != NULL);
	snprintf(want, sizeof(want), "Detected 1 oom-kill event(s) in StepId=%s.0", job);
	CHECK_CONTAINS(log, want);
	free(log);
	cmd_run(&r, "ls cohort-%s.mpi.*.ndjson | wc -l", job);
	CHECK_STREQ(r.out, "6\n");
	cmd_free(&r);

	snprintf(want, sizeof(want), "--job %s", job);
	root = report_json(want);
	CHECK_EQ(json_array_size(json_object_get(root, "recordings")), 6);
	f = only_finding(root, "oom_kill", &n);
	CHECK_MSG(f != NULL, "%zu oom_kill findings, want 1", n);
	CHECK_EQ(json_integer_value(json_object_get(f, "task")), 5);
	CHECK_STREQ(json_string_value(json_object_get(f, "node")), "node3");
	CHECK_EQ(json_integer_value(json_object_get(f, "pid")), pid5);
	json_decref(root);
	cmd_run(&r, "%s/cohort report --job %s", test_build_dir(), job);
	CHECK_CONTAINS(r.out, "6 recordings, 6 workers; the step has 6 tasks");
	snprintf(want, sizeof(want), "oom_kill, rank 5 (task 5, node node3): rank 5 (MPI rank 5, pid %lld) was killed "
	         "by the kernel's OOM killer", pid5);
	CHECK_CONTAINS(r.out, want);
	cmd_free(&r);
}

/* ---- the recordings such jobs left ---- */

static const char *fixtures(void)
{
	static char dir[1024];

	snprintf(dir, sizeof(dir), "%s/tests/fixtures/recordings/multinode", test_src_dir());
	return dir;
}

/* Job 5: srun -N3 -n3, node3's slurmd and processes killed at 3.8 s; recording trimmed. */
TEST(report_multinode_cut_recording_names_its_node)
{
	struct cmd_result r;
	json_t *root, *ps;
	char args[1200];

	cmd_run(&r, "%s/cohort report --job 5 %s", test_build_dir(), fixtures());
	CHECK_MSG(r.status == 0, "report exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "job 5 step 0: 3 recordings, 3 workers; the step has 3 tasks\n"
	               "  task 2 on node node3: its recording ");
	CHECK_CONTAINS(r.out, "cohort-5.0.2.ndjson is cut short at 0.3 s (the step's longest runs 20.0 s): "
	               "its supervisor was killed or its node lost\n");
	CHECK_CONTAINS(r.out, "on vm (node node3), job 5, task 2 of 3\n");
	CHECK(strstr(r.out, "task 0 on node") == NULL && strstr(r.out, "task 1 on node") == NULL);
	cmd_free(&r);
	snprintf(args, sizeof(args), "--job 5 %s", fixtures());
	root = report_json(args);
	ps = json_object_get(json_object_get(root, "job"), "problems");
	CHECK_EQ(json_array_size(ps), 1);
	CHECK_STREQ(json_string_value(json_object_get(json_array_get(ps, 0), "kind")), "cut");
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(ps, 0), "task")), 2);
	json_decref(root);
}

/* Job 4 (srun -N3 -n6) without task 4's recording: placed on node3, whose task 5 has its own. */
TEST(report_multinode_missing_task_placed_on_its_node)
{
	struct cmd_result r;

	cmd_run(&r, "cp %s/cohort-4.0.[0-35].ndjson . && %s/cohort report --job 4", fixtures(), test_build_dir());
	CHECK_MSG(r.status == 0, "report exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "job 4 step 0: 5 recordings, 5 workers; the step has 6 tasks\n"
	               "  task 4 of 6 on node node3 (its other tasks have theirs): no recording "
	               "(expected cohort-4.0.4.ndjson)\n");
	cmd_free(&r);
	/* Without task 5 either, no recording names node3: its index in the step is what is known. */
	cmd_run(&r, "rm cohort-4.0.5.ndjson && %s/cohort report --job 4", test_build_dir());
	CHECK_CONTAINS(r.out, "task 4 of 6 on the step's node 2 (by block distribution), from which no "
	               "recording came: no recording (expected cohort-4.0.4.ndjson)\n");
	CHECK_CONTAINS(r.out, "task 5 of 6 on the step's node 2 (by block distribution)");
	cmd_free(&r);
}

/* Job 4: task 4 on node3 grew to 172 MiB before its OOM kill, every other task held 10 MiB. */
TEST(report_multinode_node_imbalance_has_the_figures)
{
	struct cmd_result r;

	cmd_run(&r, "%s/cohort report --job 4 %s", test_build_dir(), fixtures());
	CHECK_MSG(r.status == 0, "report exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "  1. oom_kill, rank 4 (task 4, node node3)");
	CHECK_CONTAINS(r.out, "  2. node_imbalance: node node3's 2 tasks peaked at 91.1 MiB each on average, 8.8x "
	               "those of the next node, node2 (10.3 MiB); the other nodes' tasks: node1 10.3 MiB, node2 "
	               "10.3 MiB (3 nodes, 6 tasks;");
	cmd_free(&r);
	/* Job 5: every node's task held the same 10 MiB. */
	cmd_run(&r, "%s/cohort report --job 5 %s", test_build_dir(), fixtures());
	CHECK(strstr(r.out, "node_imbalance") == NULL);
	cmd_free(&r);
}

/* Job 2: an MPI job under srun --mpi=pmix; the OOM-killed worker is MPI rank 2 (PMIX_RANK), told as such. */
TEST(report_multinode_mpi_rank_under_srun_is_named)
{
	struct cmd_result r;
	char args[1200];
	json_t *root, *f;
	size_t n;

	cmd_run(&r, "%s/cohort report --job 2 %s", test_build_dir(), fixtures());
	CHECK_MSG(r.status == 0, "report exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "  1. oom_kill, rank 2 (task 2, node node3): rank 2 (MPI rank 2, pid 29392) was killed by "
	               "the kernel's OOM killer at 1.0 s");
	/* The others, ended by srun -K1's SIGTERM, are not MPI-worded: no event of theirs names an MPI rank. */
	CHECK_CONTAINS(r.out, "signalled (task 0, node node1): cohort got SIGTERM");
	cmd_free(&r);
	snprintf(args, sizeof(args), "--job 2 %s", fixtures());
	root = report_json(args);
	f = only_finding(root, "oom_kill", &n);
	CHECK_MSG(f != NULL, "%zu oom_kill findings, want 1", n);
	CHECK_EQ(evidence_of(f, "process_mpi_rank"), 2);
	CHECK_EQ(json_integer_value(json_object_get(f, "pid")), 29392);
	f = only_finding(root, "node_imbalance", &n);
	CHECK(f != NULL);
	CHECK_EQ(evidence_of(f, "process_mpi_rank"), -1);
	json_decref(root);
	/* Job 4 (no PMIx: srun's default MpiDefault=none): its OOM-killed task has no MPI rank to tell. */
	cmd_run(&r, "%s/cohort report --job 4 %s", test_build_dir(), fixtures());
	CHECK(strstr(r.out, "MPI rank") == NULL);
	cmd_free(&r);
}
