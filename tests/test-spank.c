/*
 * test-spank.c - spank_cohort.so in the real test cluster (tests/slurm/
 * cluster.sh loads it from the build tree in mode=off; a case here turns
 * it on by rewriting the cluster's plugstack.conf, which slurmstepd reads
 * at each step, and slurm_case() restores the cluster after).
 */
#include "harness.h"

#include <dirent.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

/* sbatch --wait of script; the job id into job. Returns sbatch's exit status. */
static int batch(const char *script, const char *extra, const char *out, char *job, size_t size)
{
	struct cmd_result r;
	int st;

	write_file("job.sh", "#!/bin/sh\n%s\n", script);
	cmd_run(&r, "timeout 150 sbatch --parsable --wait %s -o %s/%s %s/job.sh", extra, test_tmpdir(), out,
	        test_tmpdir());
	st = r.status;
	snprintf(job, size, "%.*s", (int)strcspn(r.out, ";\n"), r.out);
	CHECK_MSG(job[0] >= '0' && job[0] <= '9', "sbatch said: %s%s", r.out, r.err);
	cmd_free(&r);
	return st;
}

static int count_recordings(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += strstr(de->d_name, ".ndjson") != NULL;
	closedir(d);
	return n;
}

static void oom_case(void *arg)
{
	const char *dir = arg;
	char job[64], spool[1024], jobdir[1200], o[1200];
	struct cmd_result r;
	char *out;

	snprintf(spool, sizeof(spool), "%s/spool-oom", test_tmpdir());
	snprintf(o, sizeof(o), "mode=record interval=0.5 spool=%s", spool);
	slurm_set_plugstack(dir, o);
	/* A plain batch script: task 1 of its step outgrows the job's 150 MiB. */
	batch("srun -n2 sh -c 'if [ \"$SLURM_PROCID\" = 1 ]; then exec \"$0\" --helper touch 400M; "
	      "else sleep 3; fi' $COHORT_TEST_RUNNER\necho script-done",
	      "-n2 --mem=150M --export=ALL,COHORT_TEST_RUNNER=$COHORT_BUILD/tests/runner", "oom.out", job,
	      sizeof(job));
	out = read_file("oom.out");
	CHECK(out != NULL);
	CHECK_CONTAINS(out, "script-done");
	/* SLURM's own word, then cohort's, naming the task and the process. */
	CHECK_CONTAINS(out, "oom-kill");
	CHECK_CONTAINS(out, "cohort: job ");
	CHECK_CONTAINS(out, " step 0 ");
	CHECK_CONTAINS(out, "rank 1");
	CHECK_CONTAINS(out, "runner");
	CHECK_CONTAINS(out, "cohort report --job");
	/* Said once: step 0's own stderr is the script's output, where the batch verdict goes. */
	CHECK_MSG(strstr(strstr(out, "cohort: job ") + 1, "cohort: job ") == NULL,
	          "the verdict is said twice:\n%s", out);
	free(out);

	snprintf(jobdir, sizeof(jobdir), "%s/%s", spool, job);
	/* The batch step's task, and the two tasks of step 0. */
	CHECK_EQ(count_recordings(jobdir), 3);
	cmd_run(&r, "%s/cohort report --job %s --spool %s", test_build_dir(), job, spool);
	CHECK_MSG(r.status == 0, "cohort report exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "oom_kill");
	CHECK_CONTAINS(r.out, "rank 1");
	cmd_free(&r);

	/* --cohort=off: nothing recorded, not even the job's directory. */
	batch("srun -n1 true", "-n1 --mem=50M --cohort=off", "off.out", job, sizeof(job));
	snprintf(jobdir, sizeof(jobdir), "%s/%s", spool, job);
	CHECK_EQ(count_recordings(jobdir), -1);

	/* A job that ends well: recorded, and not a word in its output. */
	batch("srun -n2 true\necho fine", "-n2 --mem=50M", "ok.out", job, sizeof(job));
	out = read_file("ok.out");
	CHECK(out != NULL);
	CHECK_STREQ(out, "fine\n");
	free(out);
	snprintf(jobdir, sizeof(jobdir), "%s/%s", spool, job);
	CHECK_EQ(count_recordings(jobdir), 3);
	exit(0);
}

TEST_TIMEOUT(slurm_spank_batch_oom_verdict_in_output, 420)
{
	slurm_case(slurm_spank_dir(), oom_case, 400000);
}

static void unwritable_case(void *arg)
{
	const char *dir = arg;
	char job[64], log[1024];
	char *out, *l;
	int st;

	/* /proc takes no new directory, whoever asks. */
	slurm_set_plugstack(dir, "mode=record spool=/proc/cohort-spool");
	st = batch("srun -n1 echo ran", "-n1 --mem=50M", "un.out", job, sizeof(job));
	CHECK_EQ(st, 0);
	out = read_file("un.out");
	CHECK(out != NULL);
	CHECK_STREQ(out, "ran\n");
	free(out);
	snprintf(log, sizeof(log), "%s/slurmd.log", dir);
	l = read_file(log);
	CHECK(l != NULL);
	CHECK_CONTAINS(l, "cohort: spool /proc/cohort-spool/");
	CHECK_CONTAINS(l, "runs unwatched");
	free(l);
	exit(0);
}

TEST_TIMEOUT(slurm_spank_unwritable_spool_job_runs, 240)
{
	slurm_case(slurm_spank_dir(), unwritable_case, 220000);
}

/* ---- interactive srun: the verdict on its stderr; AdminComment ---------- */

static void srun_case(void *arg)
{
	const char *dir = arg;
	char spool[1024], o[1400], job[64];
	struct cmd_result r;
	const char *j;

	snprintf(spool, sizeof(spool), "%s/spool-srun", test_tmpdir());
	snprintf(o, sizeof(o), "mode=record interval=0.5 spool=%s admin_comment=yes", spool);
	slurm_set_plugstack(dir, o);
	/* srun run directly: task 1 is OOM-killed, task 0 says the job's id. */
	cmd_run(&r, "env -u ENVIRONMENT timeout 150 srun -n2 --mem=150M sh -c "
	        "'if [ \"$SLURM_PROCID\" = 1 ]; then exec \"$0\" --helper touch 400M; "
	        "else echo JOB=$SLURM_JOB_ID; sleep 3; fi' %s/tests/runner",
	        test_build_dir());
	j = strstr(r.out, "JOB=");
	CHECK_MSG(j != NULL, "srun said: %s%s", r.out, r.err);
	snprintf(job, sizeof(job), "%.*s", (int)strspn(j + 4, "0123456789"), j + 4);
	/* SLURM's own word, then cohort's verdict, naming the task and the process. */
	CHECK_CONTAINS(r.err, "Out Of Memory");
	CHECK_CONTAINS(r.err, "cohort: job ");
	CHECK_CONTAINS(r.err, " step 0 ");
	CHECK_CONTAINS(r.err, "oom_kill");
	CHECK_CONTAINS(r.err, "rank 1");
	CHECK_CONTAINS(r.err, "runner");
	CHECK_CONTAINS(r.err, "cohort report --job");
	cmd_free(&r);

	/*
	 * AdminComment: the one-line summary (no slurmdbd in the test cluster:
	 * scontrol only), set by the helper after the step's I/O ended, so a
	 * moment after srun returned.
	 */
	for (int i = 0; i < 100; i++) {
		cmd_run(&r, "scontrol show job %s", job);
		if (strstr(r.out, "AdminComment=") || i == 99)
			break;
		cmd_free(&r);
		usleep(100 * 1000);
	}
	CHECK_CONTAINS(r.out, "AdminComment=cohort: step 0: oom_kill rank 1");
	cmd_free(&r);

	/* A clean srun: not a word from cohort, and no AdminComment. */
	cmd_run(&r, "env -u ENVIRONMENT timeout 100 srun -n2 --mem=50M sh -c 'echo JOB=$SLURM_JOB_ID; sleep 1'");
	CHECK_MSG(r.status == 0, "srun exited %d: %s", r.status, r.err);
	CHECK_MSG(strstr(r.err, "cohort") == NULL, "srun's stderr: %s", r.err);
	j = strstr(r.out, "JOB=");
	CHECK(j != NULL);
	snprintf(job, sizeof(job), "%.*s", (int)strspn(j + 4, "0123456789"), j + 4);
	cmd_free(&r);
	cmd_run(&r, "scontrol show job %s", job);
	CHECK_MSG(strstr(r.out, "AdminComment=cohort") == NULL, "%s", r.out);
	cmd_free(&r);
	exit(0);
}

TEST_TIMEOUT(slurm_spank_srun_verdict_on_stderr, 360)
{
	slurm_case(slurm_spank_dir(), srun_case, 340000);
}

/* Two steps with findings: AdminComment gets both, the second appended to the first. */
static void admin_comment_case(void *arg)
{
	const char *dir = arg;
	char spool[1024], o[1400], job[64];
	struct cmd_result r;

	snprintf(spool, sizeof(spool), "%s/spool-ac", test_tmpdir());
	snprintf(o, sizeof(o), "mode=record interval=0.5 spool=%s admin_comment=yes", spool);
	slurm_set_plugstack(dir, o);
	batch("srun -n1 $COHORT_TEST_RUNNER --helper touch 400M\nsrun -n1 $COHORT_TEST_RUNNER --helper touch 400M\n"
	      "echo done", "-n1 --mem=150M --export=ALL,COHORT_TEST_RUNNER=$COHORT_BUILD/tests/runner",
	      "ac.out", job, sizeof(job));
	cmd_run(&r, "scontrol show job %s", job);
	CHECK_CONTAINS(r.out, "AdminComment=cohort: step 0: oom_kill rank 0");
	CHECK_CONTAINS(r.out, "; cohort: step 1: oom_kill rank 0");
	cmd_free(&r);
	exit(0);
}

TEST_TIMEOUT(slurm_spank_admin_comment_appended, 300)
{
	slurm_case(slurm_spank_dir(), admin_comment_case, 280000);
}

/* ---- mode=enforce against record ---------------------------------------- */

static void enforce_case(void *arg)
{
	const char *dir = arg;
	char spool[1024], o[1400], job[64];
	const char *script = "srun -n1 $COHORT_TEST_GROW --size 400 --rate 20 --hold 40\necho script-done";
	const char *extra = "-n1 --mem=150M --export=ALL,COHORT_TEST_GROW=$COHORT_BUILD/examples/faults/grow";
	char *out;

	snprintf(spool, sizeof(spool), "%s/spool-enf", test_tmpdir());
	/*
	 * enforce: cohort stops the task at its share (150 MiB less 37.5),
	 * the kernel kills nothing: at 20 MiB/s the task takes near 2 s from
	 * its budget to the job's limit, many samples on a loaded machine.
	 */
	snprintf(o, sizeof(o), "mode=enforce interval=0.5 spool=%s", spool);
	slurm_set_plugstack(dir, o);
	batch(script, extra, "enf.out", job, sizeof(job));
	out = read_file("enf.out");
	CHECK(out != NULL);
	CHECK_CONTAINS(out, "script-done");
	CHECK_CONTAINS(out, "budget_kill, rank 0");
	CHECK_CONTAINS(out, "budget");
	CHECK_CONTAINS(out, "grow");           /* the process that grew */
	CHECK_MSG(strstr(out, "oom-kill") == NULL && strstr(out, "oom_kill") == NULL,
	          "the kernel killed it first:\n%s", out);
	free(out);

	/* record: the same job ends as the kernel decides. */
	snprintf(o, sizeof(o), "mode=record interval=0.5 spool=%s", spool);
	slurm_set_plugstack(dir, o);
	batch(script, extra, "rec.out", job, sizeof(job));
	out = read_file("rec.out");
	CHECK(out != NULL);
	CHECK_CONTAINS(out, "oom-kill");
	CHECK_CONTAINS(out, "oom_kill, rank 0");
	CHECK_MSG(strstr(out, "budget_kill") == NULL, "%s", out);
	free(out);
	exit(0);
}

TEST_TIMEOUT(slurm_spank_enforce_stops_task_over_share, 300)
{
	slurm_case(slurm_spank_dir(), enforce_case, 280000);
}

/* ---- the job's leftover segments ---------------------------------------- */

static int segments_of(const char *job)
{
	char prefix[128];
	struct dirent *de;
	DIR *d = opendir("/dev/shm");
	int n = 0;

	snprintf(prefix, sizeof(prefix), "cohort.%u.%s.", (unsigned)getuid(), job);
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static void segments_case(void *arg)
{
	const char *dir = arg;
	char spool[1024], o[1400], job[64], keep[256], log[1024];
	char *l;
	int n = -1;

	snprintf(spool, sizeof(spool), "%s/spool-seg", test_tmpdir());
	snprintf(o, sizeof(o), "mode=record interval=0.5 spool=%s", spool);
	slurm_set_plugstack(dir, o);
	/* Another job's segment: never touched. */
	snprintf(keep, sizeof(keep), "/dev/shm/cohort.%u.999999999.keep", (unsigned)getuid());
	write_file(keep, "x");
	batch("$COHORT_TEST_RUNNER --helper seg-leave grid && srun -n1 $COHORT_TEST_RUNNER --helper seg-leave "
	      "queue && ls /dev/shm | grep -c \"^cohort\\.$(id -u)\\.$SLURM_JOB_ID\\.\"",
	      "-n1 --mem=100M --export=ALL,COHORT_TEST_RUNNER=$COHORT_BUILD/tests/runner", "seg.out", job,
	      sizeof(job));
	l = read_file("seg.out");
	CHECK(l != NULL);
	CHECK_STREQ(l, "2\n");         /* both were there while the job ran */
	free(l);
	/* The epilog runs as the job completes: a few seconds at most. */
	for (int i = 0; i < 100 && (n = segments_of(job)) != 0; i++)
		usleep(100 * 1000);
	CHECK_EQ(n, 0);
	CHECK_MSG(access(keep, F_OK) == 0, "%s was removed", keep);
	unlink(keep);
	snprintf(log, sizeof(log), "%s/slurmd.log", dir);
	l = read_file(log);
	CHECK(l != NULL);
	CHECK_CONTAINS(l, "removed its leftover segment /dev/shm/cohort.");
	CHECK_CONTAINS(l, ".grid");
	CHECK_CONTAINS(l, ".queue");
	free(l);
	exit(0);
}

TEST_TIMEOUT(slurm_spank_job_segments_removed, 240)
{
	slurm_case(slurm_spank_dir(), segments_case, 220000);
}

/* ---- not watched twice; not watched at all without the plugstack line ---- */

static int count_prefix(const char *dir, const char *prefix, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0 && strstr(de->d_name, suffix) != NULL;
	closedir(d);
	return n;
}

static void twice_case(void *arg)
{
	const char *dir = arg;
	char spool[1024], o[1400], job[64], jobdir[1200], path[1024];
	FILE *f;

	snprintf(spool, sizeof(spool), "%s/spool-twice", test_tmpdir());
	snprintf(o, sizeof(o), "mode=record interval=0.5 spool=%s", spool);
	slurm_set_plugstack(dir, o);
	batch("cd $COHORT_TEST_DIR && srun -n1 $COHORT_BUILD/cohort run -n1 -- sleep 1",
	      "-n1 --mem=100M --export=ALL,COHORT_TEST_DIR=$PWD", "twice.out", job, sizeof(job));
	snprintf(jobdir, sizeof(jobdir), "%s/%s", spool, job);
	/* Step 0 ran cohort run: its recording only, none of the plugin's. */
	CHECK_EQ(count_prefix(jobdir, "0.", ".ndjson"), 0);
	CHECK_EQ(count_prefix(jobdir, "batch.", ".ndjson"), 1);
	CHECK_EQ(count_prefix(test_tmpdir(), "cohort-", ".ndjson"), 1);

	/* The plugstack line removed: jobs run, nothing written to any spool. */
	snprintf(path, sizeof(path), "%s/plugstack.conf", dir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fclose(f);
	CHECK_EQ(batch("srun -n1 echo ran", "-n1 --mem=50M", "none.out", job, sizeof(job)), 0);
	{
		char *out = read_file("none.out");

		CHECK(out != NULL);
		CHECK_STREQ(out, "ran\n");
		free(out);
	}
	snprintf(jobdir, sizeof(jobdir), "%s/%s", spool, job);
	CHECK_MSG(access(jobdir, F_OK) < 0, "%s exists", jobdir);
	snprintf(jobdir, sizeof(jobdir), "%s/cohort-spool/%s", dir, job);
	CHECK_MSG(access(jobdir, F_OK) < 0, "%s exists", jobdir);
	exit(0);
}

TEST_TIMEOUT(slurm_spank_not_watched_twice_nor_without_plugstack, 240)
{
	slurm_case(slurm_spank_dir(), twice_case, 220000);
}

/* ---- cpu_budget= -------------------------------------------------------- */

static void cpu_budget_case(void *arg)
{
	const char *dir = arg;
	char spool[1024], o[1400], job[64], log[1024], rec[1400];
	char *l;

	snprintf(spool, sizeof(spool), "%s/spool-cpu", test_tmpdir());
	/* Bad values are a line in slurmd's log each, and the defaults stay:
	 * with wait=abc read as 0 the helper would be killed before its verdict. */
	snprintf(o, sizeof(o), "mode=record interval=0.5 spool=%s cpu_budget=abc wait=abc wait=0 "
	         "wait=601", spool);
	slurm_set_plugstack(dir, o);
	CHECK_EQ(batch("srun -n1 true", "-n1 --mem=50M", "cpu1.out", job, sizeof(job)), 0);
	snprintf(log, sizeof(log), "%s/slurmd.log", dir);
	l = read_file(log);
	CHECK(l != NULL);
	CHECK_CONTAINS(l, "cohort: plugstack option cpu_budget=abc: a percentage of one core from 0.1 to 100");
	CHECK_CONTAINS(l, "cohort: plugstack option wait=abc: seconds from 0.5 to 600 (default 10); "
	               "the default is kept");
	CHECK_CONTAINS(l, "cohort: plugstack option wait=0: seconds from 0.5 to 600");
	CHECK_CONTAINS(l, "cohort: plugstack option wait=601: seconds from 0.5 to 600");
	free(l);
	/* The default wait let the helper finish: the step's recording has its end line. */
	snprintf(rec, sizeof(rec), "%s/%s", spool, job);
	{
		struct cmd_result r;

		cmd_run(&r, "tail -qn 1 %s/0.0.*.ndjson", rec);
		CHECK_CONTAINS(r.out, "\"type\":\"end\"");
		cmd_free(&r);
	}

	snprintf(o, sizeof(o), "mode=record interval=0.5 spool=%s cpu_budget=2.5", spool);
	slurm_set_plugstack(dir, o);
	CHECK_EQ(batch("srun -n1 true\nsrun -n2 true", "-n2 --mem=100M", "cpu2.out", job, sizeof(job)), 0);
	snprintf(rec, sizeof(rec), "%s/%s", spool, job);
	{
		struct cmd_result r;

		cmd_run(&r, "cat %s/0.0.*.ndjson | head -1", rec);
		CHECK_CONTAINS(r.out, "\"pss_budget\":0.025");
		cmd_free(&r);
		/* The budget is the node's step's: two tasks share it. */
		for (int task = 0; task < 2; task++) {
			cmd_run(&r, "cat %s/1.%d.*.ndjson | head -1", rec, task);
			CHECK_CONTAINS(r.out, "\"pss_budget\":0.0125");
			cmd_free(&r);
		}
	}
	exit(0);
}

TEST_TIMEOUT(slurm_spank_cpu_budget_option, 200)
{
	slurm_case(slurm_spank_dir(), cpu_budget_case, 180000);
}

/* ---- cohort top --job on a running job's recordings ---------------------- */

static void top_case(void *arg)
{
	const char *dir = arg;
	char spool[1024], o[1400], job[64];
	struct cmd_result r;
	int seen = 0;

	snprintf(spool, sizeof(spool), "%s/spool-top", test_tmpdir());
	snprintf(o, sizeof(o), "mode=record interval=0.3 spool=%s", spool);
	slurm_set_plugstack(dir, o);
	write_file("top.sh", "#!/bin/sh\nsrun -n1 %s/tests/runner --helper worker --hold 40M --seconds 10\n",
	           test_build_dir());
	cmd_run(&r, "sbatch --parsable -n1 --mem=200M -o %s/top.out %s/top.sh", test_tmpdir(), test_tmpdir());
	snprintf(job, sizeof(job), "%.*s", (int)strcspn(r.out, ";\n"), r.out);
	CHECK_MSG(job[0] >= '0' && job[0] <= '9', "sbatch said: %s%s", r.out, r.err);
	cmd_free(&r);
	/* While it runs: step 0's task, running, holding its 40 MiB. */
	for (int i = 0; i < 100 && !seen; i++) {
		cmd_run(&r, "%s/cohort top --job %s --spool %s --once --json", test_build_dir(), job, spool);
		if (r.status == 0) {
			json_error_t jerr;
			json_t *j = json_loads(r.out, 0, &jerr), *tasks = json_object_get(j, "tasks");

			for (size_t k = 0; k < json_array_size(tasks); k++) {
				json_t *t = json_array_get(tasks, k);

				seen |= json_is_true(json_object_get(t, "running")) &&
				        strcmp(json_string_value(json_object_get(t, "step")), "0") == 0 &&
				        json_integer_value(json_object_get(t, "rss_sum_bytes")) >= (40 << 20);
			}
			json_decref(j);
		}
		cmd_free(&r);
		if (!seen)
			usleep(200 * 1000);
	}
	CHECK_MSG(seen, "cohort top --job %s never showed step 0 running with its 40 MiB", job);
	/* The job's end: every task ended. */
	for (int i = 0; i < 300; i++) {
		cmd_run(&r, "squeue -h -j %s", job);
		seen = r.out[0] != '\0';
		cmd_free(&r);
		if (!seen)
			break;
		usleep(200 * 1000);
	}
	/* The helpers end the recordings as the steps end, a moment after the job leaves squeue. */
	for (int i = 0; i < 100; i++) {
		cmd_run(&r, "%s/cohort top --job %s --spool %s --once", test_build_dir(), job, spool);
		if (strstr(r.out, "2 tasks, 0 running") || i == 99)
			break;
		cmd_free(&r);
		usleep(100 * 1000);
	}
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.out, "2 tasks, 0 running");
	cmd_free(&r);
	exit(0);
}

TEST_TIMEOUT(slurm_spank_top_job_from_spool, 200)
{
	slurm_case(slurm_spank_dir(), top_case, 180000);
}
