/*
 * test-task.c - the tasks of one job: which task a supervisor is, the
 * name of its recording, the recording opened once and never a file
 * someone else placed there, and the merge of a job's task recordings
 * into one view (fixtures in tests/fixtures/recordings/job-123/).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#define COHORT "%s/cohort"

static struct cohort_recording *load(const char *name)
{
	struct cohort_recording *r = NULL;
	char path[4096], err[512];
	int rc;

	snprintf(path, sizeof(path), "%s/tests/fixtures/recordings/%s", test_src_dir(), name);
	rc = cohort_recording_load(path, &r, err, sizeof(err));
	CHECK_MSG(rc == 0, "loading %s: %d (%s)", name, rc, err);
	return r;
}

static void detect(const char *const *envp, const char *job, unsigned workers, struct cohort_task *t)
{
	struct cohort_probe probe = { .envp = envp };
	struct cohort_alloc a;

	memset(&a, 0, sizeof(a));
	/* The SLURM ids as cohort_alloc_detect reads them. */
	for (const char *const *e = envp; *e; e++) {
		const char *v = strchr(*e, '=') + 1;

		if (strncmp(*e, "SLURM_JOB_ID=", 13) == 0) {
			a.slurm.present = 1;
			snprintf(a.slurm.job_id, sizeof(a.slurm.job_id), "%s", v);
		}
		if (strncmp(*e, "SLURM_STEP_ID=", 14) == 0)
			snprintf(a.slurm.step_id, sizeof(a.slurm.step_id), "%s", v);
		if (strncmp(*e, "SLURMD_NODENAME=", 16) == 0)
			snprintf(a.slurm.node, sizeof(a.slurm.node), "%s", v);
	}
	a.slurm.proc_id = a.slurm.local_id = a.slurm.ntasks = a.slurm.tasks_on_node = -1;
	for (const char *const *e = envp; *e; e++) {
		if (strncmp(*e, "SLURM_PROCID=", 13) == 0)
			a.slurm.proc_id = atol(*e + 13);
		if (strncmp(*e, "SLURM_NTASKS=", 13) == 0)
			a.slurm.ntasks = atol(*e + 13);
		if (strncmp(*e, "SLURM_LOCALID=", 14) == 0)
			a.slurm.local_id = atol(*e + 14);
	}
	a.slurm.tasks_on_node = a.slurm.ntasks;
	CHECK_OK(cohort_task_detect(&probe, &a, job, workers, t));
}

TEST(task_names_per_slurm_task_and_mpi_rank)
{
	static const char *const srun[] = { "SLURM_JOB_ID=123", "SLURM_STEP_ID=0", "SLURM_PROCID=2",
	                                    "SLURM_LOCALID=2", "SLURM_NTASKS=4", "SLURM_NODEID=0",
	                                    "SLURMD_NODENAME=n1", NULL };
	/* mpirun inside an allocation: every rank sees the shell's SLURM ids, the rank tells them apart. */
	static const char *const salloc_mpirun[] = { "SLURM_JOB_ID=124", "SLURM_NTASKS=4",
	                                             "OMPI_COMM_WORLD_RANK=3", "OMPI_COMM_WORLD_SIZE=4",
	                                             "OMPI_COMM_WORLD_LOCAL_RANK=3",
	                                             "OMPI_COMM_WORLD_LOCAL_SIZE=4", NULL };
	static const char *const batch_mpirun[] = { "SLURM_JOB_ID=125", "SLURM_STEP_ID=0", "SLURM_PROCID=0",
	                                            "PMIX_RANK=1", NULL };
	/*
	 * mpirun -np 6 inside salloc -N3: srun starts one orted per node (step 0,
	 * tasks 0..2), rank 3 on node1 sees orted's SLURM_PROCID 0, rank 0 too.
	 */
	static const char *const orted_rank0[] = { "SLURM_JOB_ID=126", "SLURM_STEP_ID=0", "SLURM_PROCID=0",
	                                           "SLURM_NTASKS=3", "SLURMD_NODENAME=node1", "SLURM_NODEID=0",
	                                           "OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=6",
	                                           "PMIX_RANK=0", NULL };
	static const char *const orted_rank3[] = { "SLURM_JOB_ID=126", "SLURM_STEP_ID=0", "SLURM_PROCID=0",
	                                           "SLURM_NTASKS=3", "SLURMD_NODENAME=node1", "SLURM_NODEID=0",
	                                           "OMPI_COMM_WORLD_RANK=3", "OMPI_COMM_WORLD_SIZE=6",
	                                           "PMIX_RANK=3", NULL };
	/* srun --mpi=pmix: SLURM's task, with the same PMIX_RANK and no OMPI_COMM_WORLD_RANK. */
	static const char *const srun_pmix[] = { "SLURM_JOB_ID=127", "SLURM_STEP_ID=0", "SLURM_PROCID=2",
	                                         "SLURM_NTASKS=3", "PMIX_RANK=2", NULL };
	static const char *const mpirun[] = { "OMPI_COMM_WORLD_RANK=1", "OMPI_COMM_WORLD_SIZE=2",
	                                      "OMPI_MCA_ess_base_jobid=1932263425", NULL };
	static const char *const local[] = { "HOME=/root", NULL };
	struct cohort_task t;
	char name[256];

	detect(srun, "123", 3, &t);
	CHECK(t.known);
	CHECK_STREQ(t.source, "slurm");
	CHECK_EQ(t.id, 2);
	CHECK_EQ(t.ntasks, 4);
	CHECK_EQ(t.local_id, 2);
	CHECK_EQ(t.node_id, 0);
	CHECK_STREQ(t.node, "n1");
	CHECK_EQ(t.rank_offset, 6);        /* 3 workers per task: task 2 starts at rank 6 */
	CHECK_EQ(cohort_recording_name("123", &t, name, sizeof(name)), (int)strlen("cohort-123.0.2.ndjson"));
	CHECK_STREQ(name, "cohort-123.0.2.ndjson");

	detect(salloc_mpirun, "124", 1, &t);
	CHECK(t.known);
	CHECK_STREQ(t.source, "mpi");
	CHECK_EQ(t.id, 3);
	CHECK_EQ(t.ntasks, 4);
	CHECK_EQ(t.tasks_on_node, 4);
	CHECK_OK(cohort_recording_name("124", &t, name, sizeof(name)));
	CHECK_STREQ(name, "cohort-124.mpi.3.ndjson");

	/* SLURM_PROCID 0 inherited by every rank of mpirun in a step: the MPI rank wins. */
	detect(batch_mpirun, "125", 1, &t);
	CHECK_STREQ(t.source, "mpi");
	CHECK_EQ(t.id, 1);
	CHECK_OK(cohort_recording_name("125", &t, name, sizeof(name)));
	CHECK_STREQ(name, "cohort-125.mpi.1.ndjson");

	/* Every rank of a multi-node mpirun alike, by MPI rank: rank 0 too, whose rank is its orted's task id. */
	detect(orted_rank0, "126", 1, &t);
	CHECK_STREQ(t.source, "mpi");
	CHECK_EQ(t.id, 0);
	CHECK_EQ(t.ntasks, 6);
	CHECK_STREQ(t.node, "node1");
	CHECK_OK(cohort_recording_name("126", &t, name, sizeof(name)));
	CHECK_STREQ(name, "cohort-126.mpi.0.ndjson");
	detect(orted_rank3, "126", 1, &t);
	CHECK_STREQ(t.source, "mpi");
	CHECK_EQ(t.id, 3);
	CHECK_OK(cohort_recording_name("126", &t, name, sizeof(name)));
	CHECK_STREQ(name, "cohort-126.mpi.3.ndjson");
	detect(srun_pmix, "127", 1, &t);
	CHECK_STREQ(t.source, "slurm");
	CHECK_EQ(t.id, 2);
	CHECK_OK(cohort_recording_name("127", &t, name, sizeof(name)));
	CHECK_STREQ(name, "cohort-127.0.2.ndjson");

	/* mpirun alone: the job is the MPI job, the same in every rank, not the supervisor's pid. */
	detect(mpirun, "local-4242", 2, &t);
	CHECK(t.known);
	CHECK_STREQ(t.job, "1932263425");
	CHECK_EQ(t.rank_offset, 2);
	CHECK_OK(cohort_recording_name("local-4242", &t, name, sizeof(name)));
	CHECK_STREQ(name, "cohort-1932263425.mpi.1.ndjson");

	detect(local, "local-4242", 2, &t);
	CHECK(!t.known);
	CHECK_EQ(t.rank_offset, 0);
	CHECK_OK(cohort_recording_name("local-4242", &t, name, sizeof(name)));
	CHECK_STREQ(name, "cohort-local-4242.ndjson");

	/* Names that would leave the directory, and a buffer too small. */
	CHECK_EQ(cohort_recording_name("../x", NULL, name, sizeof(name)), -EINVAL);
	CHECK_EQ(cohort_recording_name("a/b", NULL, name, sizeof(name)), -EINVAL);
	CHECK_EQ(cohort_recording_name("123", NULL, name, 8), -ENAMETOOLONG);
}

TEST(task_header_read_back_and_old_recordings)
{
	struct cohort_recording *r = load("job-123/cohort-123.0.2.ndjson"), *old;

	CHECK(r->task_from_header);
	CHECK(r->task.known);
	CHECK_STREQ(r->task.job, "123");
	CHECK_STREQ(r->task.step, "0");
	CHECK_EQ(r->task.id, 2);
	CHECK_EQ(r->task.ntasks, 4);
	CHECK_EQ(r->task.tasks_on_node, 4);
	CHECK_EQ(r->task.local_id, 2);
	CHECK_EQ(r->task.node_id, 0);
	CHECK_STREQ(r->task.node, "n1");
	CHECK_EQ(r->task.rank_offset, 4);
	cohort_recording_free(r);

	/* Before "task": a SLURM recording says its task through its ids; a local one is no task. */
	old = load("slurm-cut-single.ndjson");
	CHECK(!old->task_from_header);
	CHECK_STREQ(old->task.job, "991");
	cohort_recording_free(old);
	old = load("clean.ndjson");
	CHECK(!old->task.known);
	CHECK_EQ(old->task.rank_offset, 0);
	cohort_recording_free(old);
}

static const char *problem_of(const struct cohort_job *j, enum cohort_merge_problem_kind kind, long task)
{
	for (size_t i = 0; i < j->nproblems; i++)
		if (j->problems[i].kind == kind && j->problems[i].task == task)
			return j->problems[i].message;
	return NULL;
}

TEST(task_merge_four_tasks_into_one_job)
{
	/* Given out of order: the merge orders them by task. */
	struct cohort_recording *recs[4] = { load("job-123/cohort-123.0.3.ndjson"),
	                                     load("job-123/cohort-123.0.1.ndjson"),
	                                     load("job-123/cohort-123.0.0.ndjson"),
	                                     load("job-123/cohort-123.0.2.ndjson") };
	struct cohort_finding *f;
	struct cohort_job *j;
	size_t nf;

	CHECK_OK(cohort_job_merge(recs, 4, 0, &j, NULL, 0));
	CHECK_STREQ(j->job, "123");
	CHECK_STREQ(j->step, "0");
	CHECK_EQ(j->ntasks, 4);
	CHECK_EQ(j->nrecs, 4);
	CHECK_EQ(j->nworkers, 8);
	CHECK_EQ(j->nproblems, 0);
	for (size_t i = 0; i < 4; i++) {
		CHECK_EQ(j->recs[i]->task.id, (long)i);
		CHECK_EQ(j->recs[i]->task.rank_offset, (long)(2 * i));
	}
	/* Task 2's rank 1 exited 5: job rank 5, named so in the message too. */
	CHECK_OK(cohort_diagnose(j->recs, j->nrecs, &f, &nf));
	CHECK_EQ(nf, 1);
	CHECK_EQ(f[0].kind, COHORT_FINDING_EXIT_NONZERO);
	CHECK_EQ(f[0].rank, 1);
	CHECK_EQ(f[0].global_rank, 5);
	CHECK_EQ(f[0].task, 2);
	CHECK_STREQ(f[0].node, "n1");
	CHECK_CONTAINS(f[0].message, "rank 5 (pid ");
	cohort_findings_free(f);
	cohort_job_free(j);
	for (int i = 0; i < 4; i++)
		cohort_recording_free(recs[i]);
}

TEST(task_merge_says_a_missing_task_a_duplicate_and_refuses_mixed_jobs)
{
	struct cohort_recording *recs[4] = { load("job-123/cohort-123.0.0.ndjson"),
	                                     load("job-123/cohort-123.0.1.ndjson"),
	                                     load("job-123/cohort-123.0.3.ndjson"),
	                                     load("job-124/cohort-124.0.0.ndjson") };
	struct cohort_recording *dup[2] = { recs[0], recs[0] };
	struct cohort_job *j;
	const char *m;
	char err[1024];

	CHECK_OK(cohort_job_merge(recs, 3, 0, &j, NULL, 0));
	CHECK_EQ(j->nworkers, 6);
	CHECK_EQ(j->nproblems, 1);
	m = problem_of(j, COHORT_MERGE_MISSING, 2);
	CHECK_MSG(m != NULL, "no missing task 2");
	CHECK_STREQ(m, "task 2 of 4: no recording (expected cohort-123.0.2.ndjson)");
	/* Task 3 keeps its own ranks, 6 and 7: the gap stays a gap. */
	CHECK_EQ(j->recs[2]->task.rank_offset, 6);
	cohort_job_free(j);

	CHECK_EQ(cohort_job_merge(recs, 4, 0, &j, err, sizeof(err)), COHORT_EMIXEDJOB);
	CHECK_CONTAINS(err, "job 124 step 0");
	CHECK_CONTAINS(err, "job 123 step 0");
	CHECK_OK(cohort_job_merge(recs, 4, COHORT_MERGE_FORCE, &j, NULL, 0));
	CHECK_MSG(problem_of(j, COHORT_MERGE_MIXED, 0) != NULL, "the forced merge does not say it mixed jobs");
	cohort_job_free(j);

	CHECK_OK(cohort_job_merge(dup, 2, 0, &j, NULL, 0));
	CHECK_MSG(problem_of(j, COHORT_MERGE_DUPLICATE, 0) != NULL, "a duplicate task is not said");
	/* Both shown, with ranks that do not collide. */
	CHECK_MSG(problem_of(j, COHORT_MERGE_RENUMBERED, -1) != NULL, "duplicate ranks not renumbered");
	CHECK_EQ(j->recs[1]->task.rank_offset, 2);
	cohort_job_free(j);
	CHECK_EQ(cohort_job_merge(recs, 0, 0, &j, NULL, 0), -EINVAL);
	for (int i = 0; i < 4; i++)
		cohort_recording_free(recs[i]);
}

/* Recordings that name no task are each of their header's job: two local runs are two jobs. */
TEST(task_merge_refuses_local_recordings_of_two_jobs)
{
	struct cohort_recording *a = load("clean.ndjson"), *b = NULL, *recs[2];
	struct cohort_job *j;
	char *text, *at, err[1024];

	/* The same recording as job local-99999. */
	snprintf(err, sizeof(err), "%s/tests/fixtures/recordings/clean.ndjson", test_src_dir());
	text = read_file(err);
	CHECK(text && (at = strstr(text, "\"job\":\"local-17664\"")) != NULL);
	memcpy(at, "\"job\":\"local-99999\"", strlen("\"job\":\"local-99999\""));
	write_file("other.ndjson", "%s", text);
	free(text);
	CHECK_OK(cohort_recording_load("other.ndjson", &b, err, sizeof(err)));
	recs[0] = a;
	recs[1] = b;
	CHECK_EQ(cohort_job_merge(recs, 2, 0, &j, err, sizeof(err)), COHORT_EMIXEDJOB);
	CHECK_CONTAINS(err, "other.ndjson is of job local-99999, but ");
	CHECK_CONTAINS(err, "clean.ndjson is of job local-17664");
	CHECK_OK(cohort_job_merge(recs, 2, COHORT_MERGE_FORCE, &j, NULL, 0));
	CHECK_MSG(problem_of(j, COHORT_MERGE_MIXED, -1) != NULL, "the forced merge does not say it mixed jobs");
	/* The job is the first recording's, as before. */
	CHECK_STREQ(j->job, "local-17664");
	CHECK_EQ(j->nworkers, 4);
	cohort_job_free(j);
	/* One local run given twice is one job. */
	recs[1] = a;
	CHECK_OK(cohort_job_merge(recs, 2, 0, &j, NULL, 0));
	CHECK_EQ(j->nproblems, 0);
	cohort_job_free(j);
	cohort_recording_free(a);
	cohort_recording_free(b);
}

TEST(task_report_job_cli_text_and_json)
{
	struct cmd_result r;
	json_error_t jerr;
	json_t *root, *ws, *diag;

	cmd_run(&r, COHORT " report --job 123 %s/tests/fixtures/recordings/job-123", test_build_dir(),
	        test_src_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "job 123 step 0: 4 recordings, 8 workers; the step has 4 tasks");
	CHECK_CONTAINS(r.out, "exit_nonzero, rank 5 (task 2, node n1): rank 5 (pid ");
	CHECK_CONTAINS(r.out, "total: 8 workers, 7 exited 0");
	cmd_free(&r);

	cmd_run(&r, COHORT " report --json %s/tests/fixtures/recordings/job-123/cohort-123.0.[013].ndjson",
	        test_build_dir(), test_src_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	root = json_loads(r.out, 0, &jerr);
	CHECK_MSG(root != NULL, "not JSON: %s", jerr.text);
	CHECK_EQ(json_integer_value(json_object_get(json_object_get(root, "job"), "ntasks")), 4);
	CHECK_CONTAINS(json_dumps(json_object_get(json_object_get(root, "job"), "problems"), 0),
	               "task 2 of 4: no recording (expected cohort-123.0.2.ndjson)");
	ws = json_object_get(root, "workers");
	CHECK_EQ(json_array_size(ws), 6);
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(ws, 4), "rank")), 6);
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(ws, 4), "task")), 3);
	diag = json_object_get(root, "diagnosis");
	CHECK_EQ(json_array_size(diag), 0);
	json_decref(root);
	cmd_free(&r);

	cmd_run(&r, COHORT " report %s/tests/fixtures/recordings/job-123/cohort-123.0.0.ndjson "
	        "%s/tests/fixtures/recordings/job-124/cohort-124.0.0.ndjson", test_build_dir(), test_src_dir(),
	        test_src_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "do not merge into one job");
	CHECK_CONTAINS(r.err, "--force");
	cmd_free(&r);

	cmd_run(&r, COHORT " report --job 999 %s/tests/fixtures/recordings/job-123", test_build_dir(),
	        test_src_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "no recording of job 999");
	cmd_free(&r);
}

/* The environment of task T of a 4-task step of job 123 on this node, without a controller. */
#define TASK_ENV(T) "env -u COHORT_JOB SLURM_JOB_ID=123 SLURM_STEP_ID=0 SLURM_PROCID=" T " SLURM_LOCALID=" T \
	" SLURM_NODEID=0 SLURM_NTASKS=4 SLURM_STEP_TASKS_PER_NODE=4 SLURMD_NODENAME=n1 " \
	"SLURM_MEM_PER_NODE=1200 COHORT_SCONTROL=/bin/false "

TEST_TIMEOUT(task_run_fifo_at_the_default_name_does_not_hang, 60)
{
	struct cmd_result r;
	struct stat st;
	char *rec;

	CHECK(mkfifo("cohort-123.0.1.ndjson", 0644) == 0);
	/* timeout: a supervisor blocked in open(2) of the FIFO ends as 124, not a passing run. */
	cmd_run(&r, "timeout -s KILL 30 " TASK_ENV("1") COHORT " run -n 1 -i 0.2 --enforce watch -- true",
	        test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.err, "not recording in cohort-123.0.1.ndjson: it is a FIFO; recording in "
	               "cohort-123.0.1.");
	cmd_free(&r);
	CHECK(lstat("cohort-123.0.1.ndjson", &st) == 0 && S_ISFIFO(st.st_mode));
	cmd_run(&r, "ls cohort-123.0.1.*.ndjson");
	CHECK_MSG(r.status == 0, "no fallback recording: %s", r.err);
	r.out[strcspn(r.out, "\n")] = '\0';
	rec = read_file(r.out);
	CHECK(rec != NULL);
	CHECK_CONTAINS(rec, "\"task\":{\"source\":\"slurm\",\"job\":\"123\",\"step\":\"0\",\"id\":1,\"ntasks\":4");
	free(rec);
	cmd_free(&r);

	/* Named with --record, the FIFO is refused with a reason, at once. */
	cmd_run(&r, "timeout -s KILL 30 " COHORT " run -n 1 -o cohort-123.0.1.ndjson -- true", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "cannot write the recording cohort-123.0.1.ndjson: it is a FIFO");
	cmd_free(&r);
}

TEST_TIMEOUT(task_run_another_users_file_at_the_name_is_not_used, 60)
{
	struct passwd *pw;
	struct cmd_result r;
	struct stat st;
	char *planted;

	if (getuid() != 0)
		SKIP("the two-user test needs root to create and become a second user");
	pw = getpwnam("cohort-test");
	if (!pw) {
		cmd_run(&r, "useradd --system --no-create-home --shell /usr/sbin/nologin cohort-test");
		cmd_free(&r);
		pw = getpwnam("cohort-test");
	}
	if (!pw)
		SKIP("could not create the user cohort-test (useradd)");
	/* A shared, sticky directory where the other user plants the name first. */
	CHECK(chmod(test_tmpdir(), 0755) == 0);
	CHECK(mkdir("shared", 0777) == 0 && chmod("shared", 01777) == 0);
	cmd_run(&r, "setpriv --reuid=%u --regid=%u --clear-groups sh -c 'echo planted > shared/cohort-123.0.0.ndjson'",
	        (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
	CHECK_MSG(r.status == 0, "cannot plant the file: %s", r.err);
	cmd_free(&r);
	cmd_run(&r, "cd shared && timeout -s KILL 30 " TASK_ENV("0") COHORT " run -n 1 -i 0.2 --enforce watch -- true",
	        test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.err, "it belongs to another user (uid ");
	cmd_free(&r);
	/* The planted file is untouched and still theirs. */
	planted = read_file("shared/cohort-123.0.0.ndjson");
	CHECK(planted != NULL);
	CHECK_STREQ(planted, "planted\n");
	free(planted);
	CHECK(stat("shared/cohort-123.0.0.ndjson", &st) == 0 && st.st_uid == pw->pw_uid);
	cmd_run(&r, "cat shared/cohort-123.0.0.*.ndjson | head -1 | grep -c '\"type\":\"header\"'");
	CHECK_STREQ(r.out, "1\n");
	cmd_free(&r);

	/* --record at their file: refused, not truncated. */
	cmd_run(&r, COHORT " run -n 1 -o shared/cohort-123.0.0.ndjson -- true", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "it belongs to another user");
	cmd_free(&r);
	planted = read_file("shared/cohort-123.0.0.ndjson");
	CHECK_STREQ(planted, "planted\n");
	free(planted);
}

/*
 * The plugin's spool (<spool>/<job>/<step>.<task>.<host>.ndjson): a report
 * per step, and with --html a page per step when there are several, named
 * after OUT with the step before its extension; one step keeps OUT.
 */
TEST(task_report_job_spool_html_page_per_step)
{
	struct cmd_result r;

	cmd_run(&r, "mkdir -p spool/123 && F=%s/tests/fixtures/recordings/job-123 && "
	        "for t in 0 1 2 3; do cp $F/cohort-123.0.$t.ndjson spool/123/0.$t.vm.ndjson; done && "
	        "cp $F/cohort-123.0.0.ndjson spool/123/batch.0.vm.ndjson",
	        test_src_dir());
	CHECK_EQ(r.status, 0);
	cmd_free(&r);
	cmd_run(&r, COHORT " report --job 123 --spool spool --html out/job.html", test_build_dir());
	/* out/ does not exist: the report says so rather than writing elsewhere. */
	CHECK_MSG(r.status == 3, "exit %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.err, "cannot write out/job.");
	cmd_free(&r);
	CHECK_MSG(access("out/job.0.html", F_OK) != 0, "a page was written into a missing directory");

	CHECK_OK(mkdir("out", 0755) < 0 ? -errno : 0);
	cmd_run(&r, COHORT " report --job 123 --spool spool --html out/job.html", test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "exit_nonzero, rank 5");
	cmd_free(&r);
	CHECK_MSG(access("out/job.0.html", F_OK) == 0, "no page for step 0");
	CHECK_MSG(access("out/job.batch.html", F_OK) == 0, "no page for the batch step");
	CHECK_MSG(access("out/job.html", F_OK) != 0, "a page named after no step");

	cmd_run(&r, COHORT " report --job 123 --step 0 --spool spool --html out/one.html", test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	cmd_free(&r);
	CHECK_MSG(access("out/one.html", F_OK) == 0, "one step: the page is not OUT");
}
