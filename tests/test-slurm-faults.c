/*
 * test-slurm-faults.c - each failure of a multi-worker job, end to end
 * under the real SLURM test cluster, as a user meets it: srun or sbatch
 * with --mem, cohort run around the examples in examples/faults, and
 * cohort's finding checked against what SLURM itself says.
 *
 * Cases that need another SLURM configuration reconfigure the cluster in
 * a child process and restore it afterwards whatever the child did.
 */
#include "harness.h"
#include "report-util.h"

#include <jansson.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define COHORT "%s/cohort"
#define FAULT "%s/examples/faults/"

TEST_TIMEOUT(slurm_fault_oom_kill_of_one_worker, 120)
{
	struct cmd_result r;
	json_t *rep, *f;

	slurm_cluster_dir();
	/* cohort watches and records, and leaves the enforcing to SLURM's cgroup: the kernel kills. */
	cmd_run(&r, "cd %s && timeout 100 srun --mem=200M -n1 " COHORT " run -n 3 --enforce none "
	        "-o oom.ndjson -- " FAULT "grow --size 400 --rank 1", test_tmpdir(),
	        test_build_dir(), test_build_dir());
	/* SLURM's own words. */
	CHECK_CONTAINS(r.err, "Detected 1 oom-kill event(s)");
	CHECK_CONTAINS(r.err, "Out Of Memory");
	/* cohort's, next to them. */
	CHECK_CONTAINS(r.err, "1. oom_kill, rank 1:");
	cmd_free(&r);
	rep = report_json("oom.ndjson");
	f = report_finding(rep, "oom_kill", 1);
	CHECK_MSG(f != NULL, "no oom_kill finding for rank 1");
	CHECK_EQ(report_ev(f, "limit_bytes"), 200LL << 20);
	CHECK(report_finding(rep, "oom_kill", 0) == NULL && report_finding(rep, "oom_kill", 2) == NULL);
	json_decref(rep);
}

/* A job script under salloc (which sets SLURM_MEM_PER_NODE as sbatch does); its output in r->out. */
static void job(struct cmd_result *r, const char *mem, const char *script)
{
	write_file("job.sh", "#!/bin/sh\n%s\necho srun=$?\n", script);
	cmd_run(r, "cd %s && chmod +x job.sh && timeout 150 salloc --mem=%s ./job.sh > job.out 2>&1; "
	        "cat job.out", test_tmpdir(), mem);
}

static void rss_overcount_case(void *arg)
{
	const char *dir = arg;
	struct cmd_result r;
	json_t *rep, *f;
	char cmd[2048];

	/* Samples every 0.2 s: SLURM polls every second (task=1) and kills within about one. */
	snprintf(cmd, sizeof(cmd), "srun %s/cohort run -n 1 -i 0.2 -o %s/shared.ndjson -- "
	         "%s/examples/cow-workers/cow-workers --size 300M --workers 5 --write 0 --hold 8",
	         test_build_dir(), test_tmpdir(), test_build_dir());
	/* SLURM counting RSS, killing on it; ConstrainRAMSpace=no, as OverMemoryKill requires. */
	slurm_reconfigure(dir, "COHORT_SLURM_EXTRA='JobAcctGatherType=jobacct_gather/linux\nJobAcctGatherParams=OverMemoryKill\n"
	                  "JobAcctGatherFrequency=task=1' COHORT_SLURM_CONSTRAIN_RAM=no");

	/* Five processes sharing 300 MiB: real use about 300 MiB, RSS sum 1.5 GiB, --mem=1000M. */
	job(&r, "1000M", cmd);
	CHECK_CONTAINS(r.out, "exceeded memory limit");
	CHECK_CONTAINS(r.out, "> 1048576000), being killed");
	CHECK_CONTAINS(r.out, "srun=137");
	cmd_free(&r);
	rep = report_json("shared.ndjson");
	f = report_finding(rep, "slurm_rss_overcount", -1);
	CHECK_MSG(f != NULL, "no slurm_rss_overcount finding");
	CHECK(report_ev(f, "rss_sum_bytes") > 1048576000LL);
	CHECK(report_ev(f, "pss_sum_bytes") < 1048576000LL / 2);
	CHECK_EQ(report_ev(f, "limit_bytes"), 1048576000LL);
	CHECK_CONTAINS(json_string_value(json_object_get(f, "message")), "killed this one");
	CHECK(report_finding(rep, "cut", -1) != NULL);
	json_decref(rep);

	/*
	 * Plain srun --mem (no salloc around it): the step has no
	 * SLURM_MEM_PER_NODE and no cgroup limit, so only the controller knows
	 * the 1000M. At the default 1 s interval, SLURM kills the job about a
	 * second in, before a second regular sample: the first seconds are
	 * sampled densely, and the finding names the controller's limit.
	 */
	cmd_run(&r, "cd %s && timeout 100 srun --mem=1000M " COHORT " run -n 1 -o early.ndjson -- "
	        "%s/examples/cow-workers/cow-workers --size 300M --workers 5 --write 0 --hold 8",
	        test_tmpdir(), test_build_dir(), test_build_dir());
	CHECK_CONTAINS(r.err, "exceeded memory limit");
	cmd_free(&r);
	{
		struct cmd_result h;

		cmd_run(&h, "head -n 1 %s/early.ndjson", test_tmpdir());
		CHECK_CONTAINS(h.out, "\"mem_limit_source\":\"scontrol show job\"");
		CHECK_CONTAINS(h.out, "\"mem_limit_bytes\":1048576000");
		cmd_free(&h);
	}
	rep = report_json("early.ndjson");
	f = report_finding(rep, "slurm_rss_overcount", -1);
	CHECK_MSG(f != NULL, "no slurm_rss_overcount finding for a kill within the first second");
	CHECK(report_ev(f, "rss_sum_bytes") > 1048576000LL);
	CHECK_EQ(report_ev(f, "limit_bytes"), 1048576000LL);
	json_decref(rep);

	/* The same job with UsePss: it runs, and cohort has nothing to say about SLURM. */
	slurm_reconfigure(dir, "COHORT_SLURM_EXTRA='JobAcctGatherType=jobacct_gather/linux\nJobAcctGatherParams=OverMemoryKill,UsePss\n"
	                  "JobAcctGatherFrequency=task=1' COHORT_SLURM_CONSTRAIN_RAM=no");
	job(&r, "1000M", cmd);
	CHECK_MSG(strstr(r.out, "exceeded memory limit") == NULL, "killed with UsePss:\n%s", r.out);
	CHECK_CONTAINS(r.out, "srun=0");
	cmd_free(&r);
	rep = report_json("shared.ndjson");
	CHECK(report_finding(rep, "slurm_rss_overcount", -2) == NULL);
	CHECK(report_finding(rep, "cut", -2) == NULL);
	json_decref(rep);
}

TEST_TIMEOUT(slurm_fault_shared_pages_counted_n_times, 400)
{
	slurm_case(slurm_cluster_dir(), rss_overcount_case, 380000);
}

TEST_TIMEOUT(slurm_fault_shm_exhausted, 120)
{
	struct cmd_result r;
	json_t *rep, *f;

	slurm_cluster_dir();
	/* The job's own 32 MiB /dev/shm (a private mount, as job_container/tmpfs gives). */
	cmd_run(&r, "cd %s && timeout 100 srun --mem=400M -n1 unshare -m sh -c 'mount -t tmpfs -o size=32M "
	        "tmpfs /dev/shm && exec " COHORT " run -n 1 -i 0.1 -o shm.ndjson -- " FAULT "shm-full --size 64'",
	        test_tmpdir(), test_build_dir(), test_build_dir());
	CHECK_CONTAINS(r.err, "Bus error");
	CHECK_CONTAINS(r.err, "1. shm_exhausted, rank 0:");
	cmd_free(&r);
	rep = report_json("shm.ndjson");
	f = report_finding(rep, "shm_exhausted", 0);
	CHECK(f != NULL);
	CHECK_EQ(report_ev(f, "shm_size_bytes"), 32LL << 20);
	json_decref(rep);
}

TEST_TIMEOUT(slurm_fault_segfault, 120)
{
	struct cmd_result r;
	json_t *rep, *f;

	/* examples/faults are never built with a sanitizer (Makefile): the shim catches their signals. */
	slurm_cluster_dir();
	cmd_run(&r, "cd %s && timeout 100 srun --mem=200M -n1 " COHORT " run -n 2 -o segv.ndjson -- "
	        "sh -c 'if [ $COHORT_RANK = 1 ]; then exec " FAULT "segfault; fi'",
	        test_tmpdir(), test_build_dir(), test_build_dir());
	CHECK_CONTAINS(r.err, "Segmentation fault");
	cmd_free(&r);
	rep = report_json("segv.ndjson");
	f = report_finding(rep, "segfault", 1);
	CHECK(f != NULL);
	CHECK(report_ev(f, "fault_addr") > 0);
	CHECK_CONTAINS(json_dumps(json_object_get(f, "backtrace"), 0), "store");
	json_decref(rep);
}

TEST_TIMEOUT(slurm_fault_leak_and_copy_on_write, 180)
{
	struct cmd_result r;
	json_t *rep, *f;

	slurm_cluster_dir();
	cmd_run(&r, "cd %s && timeout 100 srun --mem=600M -n1 " COHORT " run -n 2 -i 0.2 --enforce watch "
	        "-o leak.ndjson -- " FAULT "leak --rate 8 --seconds 16 --rank 1",
	        test_tmpdir(), test_build_dir(), test_build_dir());
	CHECK_MSG(r.status == 0, "srun exited %d: %s", r.status, r.err);
	cmd_free(&r);
	rep = report_json("leak.ndjson");
	f = report_finding(rep, "leak", 1);
	CHECK_MSG(f != NULL, "no leak finding for rank 1");
	CHECK(report_finding(rep, "leak", 0) == NULL);
	json_decref(rep);

	cmd_run(&r, "cd %s && timeout 100 srun --mem=1200M -n1 " COHORT " run -n 1 -i 0.2 --pss-budget 20 "
	        "--enforce watch -o cow.ndjson -- %s/examples/cow-workers/cow-workers --size 200M "
	        "--workers 3 --write 100 --hold 3", test_tmpdir(), test_build_dir(), test_build_dir());
	CHECK_MSG(r.status == 0, "srun exited %d: %s", r.status, r.err);
	cmd_free(&r);
	rep = report_json("cow.ndjson");
	f = report_finding(rep, "cow_unshare", 0);
	CHECK_MSG(f != NULL, "no cow_unshare finding");
	CHECK(report_ev(f, "copied_bytes") > 200LL << 20);
	CHECK(report_finding(rep, "leak", -2) == NULL);
	json_decref(rep);
}

TEST_TIMEOUT(slurm_multi_task_step_merged_report, 120)
{
	struct cmd_result r;
	json_t *rep, *recs;

	slurm_cluster_dir();
	/* Two tasks, two workers each: one recording per task, merged by cohort report. */
	cmd_run(&r, "cd %s && timeout 100 srun --mem=400M -n2 " COHORT " run -q -n 2 -i 0.2 -- "
	        "sh -c 'sleep 1; exit $COHORT_RANK'", test_tmpdir(), test_build_dir());
	CHECK_CONTAINS(r.err, "Exited with exit code 1");
	cmd_free(&r);
	cmd_run(&r, "cd %s && ls cohort-*.ndjson | wc -l", test_tmpdir());
	CHECK_EQ(atoi(r.out), 2);
	cmd_free(&r);
	rep = report_json("cohort-*.ndjson");
	recs = json_object_get(rep, "recordings");
	CHECK_EQ(json_array_size(recs), 2);
	CHECK_EQ(json_array_size(json_object_get(rep, "workers")), 4);
	/* Rank 1 of each task exited 1: two findings, one per recording. */
	size_t i, n = 0;
	json_t *f;
	json_array_foreach(json_object_get(rep, "diagnosis"), i, f)
		n += strcmp(json_string_value(json_object_get(f, "kind")), "exit_nonzero") == 0;
	CHECK_EQ(n, 2);
	json_decref(rep);
}
