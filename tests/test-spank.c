/*
 * test-spank.c - spank_cohort.so in the real test cluster (tests/slurm/
 * cluster.sh loads it from the build tree in mode=off; a case here turns
 * it on by rewriting the cluster's plugstack.conf, which slurmstepd reads
 * at each step, and slurm_case() restores the cluster after).
 */
#include "harness.h"

#include <dirent.h>
#include <sys/stat.h>

static const char *spank_dir(void)
{
	const char *dir = slurm_cluster_dir();
	char so[1024];
	struct stat st;

	snprintf(so, sizeof(so), "%s/spank_cohort.so", test_build_dir());
	if (stat(so, &st) < 0)
		SKIP("no %s: libslurm-dev is not installed (make spank)", so);
	return dir;
}

/* The cluster's plugstack.conf: the plugin of the build tree with these site options. */
static void set_plugstack(const char *dir, const char *opts)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/plugstack.conf", dir);
	f = fopen(path, "w");
	CHECK_MSG(f != NULL, "cannot write %s", path);
	fprintf(f, "optional %s/spank_cohort.so cohort=%s/cohort %s\n", test_build_dir(), test_build_dir(),
	        opts);
	fclose(f);
}

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
	set_plugstack(dir, o);
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
	slurm_case(spank_dir(), oom_case, 400000);
}

static void unwritable_case(void *arg)
{
	const char *dir = arg;
	char job[64], log[1024];
	char *out, *l;
	int st;

	/* /proc takes no new directory, whoever asks. */
	set_plugstack(dir, "mode=record spool=/proc/cohort-spool");
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
	slurm_case(spank_dir(), unwritable_case, 220000);
}
