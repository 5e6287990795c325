/*
 * test-top.c - `cohort top`: its figures against smem and /proc/PID/status,
 * inside a SLURM job (a replayed cgroup tree, and the real test cluster)
 * and outside one, refreshing through a pipe, and its usage errors.
 */
#include "harness.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#define MB (1024ULL * 1024)

struct tree {
	size_t size;      /* bytes the parent touches before forking */
	int nchildren;
	int ready_fd;
};

/*
 * The parent touches size bytes of private memory, then forks: parent and
 * children share every page copy-on-write, as forked workers do.
 */
static void cow_tree(void *arg)
{
	const struct tree *t = arg;
	char *p = mmap(NULL, t->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		_exit(1);
	memset(p, 7, t->size);
	for (int i = 0; i < t->nchildren; i++) {
		pid_t c = fork();

		if (c < 0)
			_exit(1);
		if (c == 0) {
			close(t->ready_fd);
			for (;;)
				pause();
		}
	}
	if (write(t->ready_fd, "x", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static pid_t spawn_tree(size_t size, int nchildren)
{
	int fds[2];
	struct tree t = { size, nchildren, -1 };
	struct pollfd pfd;
	pid_t pid;
	char c;

	CHECK(pipe(fds) == 0);
	t.ready_fd = fds[1];
	pid = helper_spawn(cow_tree, &t);
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	CHECK_MSG(poll(&pfd, 1, 20000) == 1 && read(fds[0], &c, 1) == 1,
	          "the process tree was not ready within 20 s");
	close(fds[0]);
	return pid;
}

static json_t *run_json(const char *cmdline_fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *run_json(const char *fmt, ...)
{
	char cmd[4096];
	struct cmd_result r;
	json_error_t err;
	json_t *j;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cmd_run(&r, "%s", cmd);
	CHECK_MSG(r.status == 0, "'%s' exited %d:\n%s%s", cmd, r.status, r.out, r.err);
	j = json_loads(r.out, 0, &err);
	CHECK_MSG(j != NULL, "'%s' printed bad JSON (%s):\n%s", cmd, err.text, r.out);
	cmd_free(&r);
	return j;
}

static uint64_t jget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	CHECK_MSG(json_is_integer(v), "\"%s\" is not an integer", key);
	return (uint64_t)json_integer_value(v);
}

static json_t *find_proc(json_t *procs, pid_t pid)
{
	size_t i;
	json_t *p;

	json_array_foreach(procs, i, p)
		if (json_integer_value(json_object_get(p, "pid")) == pid)
			return p;
	return NULL;
}

static void check_within(const char *what, pid_t pid, uint64_t ours, uint64_t ref, double share)
{
	double d = ours > ref ? (double)(ours - ref) : (double)(ref - ours);

	CHECK_MSG(d <= share * (double)ref,
	          "%s of %d: cohort %" PRIu64 " vs reference %" PRIu64 " bytes, %.2f%% apart (allowed %.0f%%)",
	          what, (int)pid, ours, ref, ref ? 100.0 * d / (double)ref : 100.0, share * 100);
}

/* smem's figures (KiB) for a pid, from "pid uss pss rss" lines. */
struct smem_row {
	pid_t pid;
	uint64_t uss, pss, rss;
};

static int smem_find(const char *out, pid_t pid, struct smem_row *ret)
{
	const char *line = out;

	while (line && *line) {
		struct smem_row r;
		int p;
		unsigned long long u, s, rs;

		if (sscanf(line, " %d %llu %llu %llu", &p, &u, &s, &rs) == 4 && p == pid) {
			r.pid = p;
			r.uss = u * 1024;
			r.pss = s * 1024;
			r.rss = rs * 1024;
			*ret = r;
			return 0;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -1;
}

TEST_TIMEOUT(top_pss_agrees_with_smem, 90)
{
	const int nproc = 5;
	pid_t root = spawn_tree(300 * MB, nproc - 1), *pids = NULL;
	size_t n = 0;
	struct cmd_result sm;
	json_t *j, *procs, *totals;
	uint64_t smem_pss_sum = 0, pss_sum = 0;

	if (system("command -v smem >/dev/null 2>&1") != 0)
		SKIP("smem is not installed (apt-get install smem): it is the reference for PSS and USS");
	CHECK_OK(cohort_pids_descendants(NULL, root, &pids, &n));
	CHECK_EQ(n, nproc);

	j = run_json("%s/cohort top --once --json --pid %d", test_build_dir(), (int)root);
	/* Only processes of the test runner (the tree is forked from it): fewer to read, fewer to race. */
	cmd_run(&sm, "smem -H -c 'pid uss pss rss' -P 'tests/runner'");
	CHECK_MSG(sm.status == 0, "smem exited %d: %s", sm.status, sm.err);

	procs = json_object_get(j, "processes");
	totals = json_object_get(j, "totals");
	CHECK_EQ(json_array_size(procs), nproc);
	for (size_t i = 0; i < n; i++) {
		json_t *p = find_proc(procs, pids[i]);
		struct smem_row ref;
		struct cohort_procstatus st;
		uint64_t pss, uss, rss;

		CHECK_MSG(p != NULL, "pid %d missing from cohort top", (int)pids[i]);
		CHECK_MSG(smem_find(sm.out, pids[i], &ref) == 0, "pid %d missing from smem:\n%s",
		          (int)pids[i], sm.out);
		pss = jget(p, "pss_bytes");
		uss = jget(p, "uss_bytes");
		rss = jget(p, "rss_bytes");
		/* Each shares 300 MB five ways: about 60 MB of PSS, not 300. */
		CHECK_MSG(pss > 55 * MB && pss < 70 * MB, "pss of %d is %" PRIu64, (int)pids[i], pss);
		check_within("PSS", pids[i], pss, ref.pss, 0.01);
		check_within("USS", pids[i], uss, ref.uss, 0.01);
		CHECK_OK(cohort_proc_status(NULL, pids[i], &st));
		check_within("RSS (VmRSS)", pids[i], rss, st.vm_rss, 0.01);
		smem_pss_sum += ref.pss;
		pss_sum += pss;
	}
	check_within("PSS sum", root, pss_sum, smem_pss_sum, 0.01);
	check_within("PSS sum (totals)", root, jget(totals, "pss_sum_bytes"), smem_pss_sum, 0.01);
	/* The RSS sum charges the shared 300 MB five times; the PSS sum once. */
	CHECK(jget(totals, "rss_sum_bytes") > 5 * 300 * MB);
	CHECK(jget(totals, "pss_sum_bytes") < 5 * 70 * MB);
	CHECK(jget(totals, "pss_sum_bytes") > 300 * MB);
	json_decref(j);
	cmd_free(&sm);
	cohort_pids_free(pids);
}

/* Write one file of a replayed cgroup tree. */
static void put(const char *base, const char *file, const char *text)
{
	char path[1400];

	snprintf(path, sizeof(path), "%s/%s", base, file);
	write_file(path, "%s", text);
}

/* Write a SLURM v1 job cgroup under dir whose task cgroup holds these pids. */
static void fake_job_cgroup(const char *dir, const char *job, const pid_t *pids, size_t n)
{
	char base[1200], procs[1024] = "";
	size_t len = 0;

	for (size_t i = 0; i < n && len < sizeof(procs) - 16; i++)
		len += (size_t)snprintf(procs + len, sizeof(procs) - len, "%d\n", (int)pids[i]);
	snprintf(base, sizeof(base), "%s/memory", dir);
	put(base, "memory.usage_in_bytes", "1\n");
	snprintf(base, sizeof(base), "%s/memory/slurm_n1/uid_0/job_%s", dir, job);
	put(base, "memory.usage_in_bytes", "325058560\n");
	put(base, "memory.max_usage_in_bytes", "1575903232\n");
	put(base, "memory.limit_in_bytes", "1048576000\n");
	put(base, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
	put(base, "memory.stat", "total_rss 1000\ntotal_cache 0\n");
	put(base, "cgroup.procs", "");
	put(base, "step_0/task_0/cgroup.procs", procs);
}

TEST(top_slurm_job_from_replayed_cgroup)
{
	pid_t root = spawn_tree(8 * MB, 2), *pids = NULL;
	size_t n = 0;
	char cg[1024];
	json_t *j, *procs, *c;

	CHECK_OK(cohort_pids_descendants(NULL, root, &pids, &n));
	CHECK_EQ(n, 3);
	snprintf(cg, sizeof(cg), "%s/cgroup", test_tmpdir());
	fake_job_cgroup(cg, "77", pids, n);

	/* Named with --job, then found from SLURM_JOB_ID as inside a job. */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			j = run_json("env -u SLURM_JOB_ID COHORT_ROOT_CGROUP=%s %s/cohort top --once --json --job 77",
			             cg, test_build_dir());
		else
			j = run_json("SLURM_JOB_ID=77 COHORT_ROOT_CGROUP=%s %s/cohort top --once --json", cg,
			             test_build_dir());
		procs = json_object_get(j, "processes");
		CHECK_EQ(json_array_size(procs), 3);
		for (size_t i = 0; i < n; i++)
			CHECK_MSG(find_proc(procs, pids[i]), "pid %d missing", (int)pids[i]);
		c = json_object_get(j, "cgroup");
		CHECK(json_is_object(c));
		CHECK_CONTAINS(json_string_value(json_object_get(c, "path")), "/job_77");
		CHECK_EQ(json_integer_value(json_object_get(c, "version")), 1);
		CHECK_EQ_U64(jget(c, "usage_bytes"), 325058560);
		CHECK_EQ_U64(jget(c, "peak_bytes"), 1575903232);
		CHECK_EQ_U64(jget(c, "limit_bytes"), 1048576000);
		CHECK_EQ_U64(jget(c, "oom_kill"), 1);
		/* Totals add up the rows. */
		uint64_t rss = 0, pss = 0;
		size_t i;
		json_t *p;
		json_array_foreach(procs, i, p) {
			rss += jget(p, "rss_bytes");
			pss += jget(p, "pss_bytes");
			CHECK(json_is_integer(json_object_get(p, "uss_bytes")));
			CHECK(json_is_integer(json_object_get(p, "swap_bytes")));
			CHECK(json_is_integer(json_object_get(p, "shmem_bytes")));
		}
		CHECK_EQ_U64(jget(json_object_get(j, "totals"), "rss_sum_bytes"), rss);
		CHECK_EQ_U64(jget(json_object_get(j, "totals"), "pss_sum_bytes"), pss);
		json_decref(j);
	}
	cohort_pids_free(pids);
}

TEST(top_outside_a_job)
{
	pid_t root = spawn_tree(4 * MB, 1);
	json_t *j, *procs, *totals;

	/* Only --pid: that tree, and the counters of its cgroup (or null). */
	j = run_json("env -u SLURM_JOB_ID %s/cohort top --once --json --pid %d", test_build_dir(), (int)root);
	procs = json_object_get(j, "processes");
	totals = json_object_get(j, "totals");
	CHECK_EQ(json_array_size(procs), 2);
	CHECK(find_proc(procs, root) != NULL);
	CHECK(jget(totals, "pss_sum_bytes") > 4 * MB);
	CHECK(jget(totals, "uss_sum_bytes") <= jget(totals, "pss_sum_bytes"));
	CHECK(jget(totals, "pss_sum_bytes") <= jget(totals, "rss_sum_bytes"));
	CHECK(json_object_get(j, "cgroup") != NULL);
	json_decref(j);

	/* Nothing named: the caller's own memory cgroup; the test process is in it. */
	char dir[512];
	if (cohort_cgroup_of_pid(NULL, 0, dir, sizeof(dir), NULL) < 0)
		SKIP("no memory cgroup here");
	j = run_json("env -u SLURM_JOB_ID %s/cohort top --once --json", test_build_dir());
	procs = json_object_get(j, "processes");
	CHECK_MSG(find_proc(procs, getpid()) != NULL, "the test process is not in its own cgroup's list");
	CHECK(find_proc(procs, root) != NULL);
	json_decref(j);
}

TEST(top_refreshes_through_a_pipe)
{
	pid_t root = spawn_tree(4 * MB, 1);
	struct cmd_result r;
	int lines = 0;

	cmd_run(&r, "%s/cohort top --pid %d --interval 0.1 --iterations 3 --json | cat", test_build_dir(),
	        (int)root);
	CHECK_EQ(r.status, 0);
	for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
		json_t *j = json_loads(line, 0, NULL);

		CHECK_MSG(j != NULL, "not one JSON object per line: %s", line);
		CHECK_EQ(json_array_size(json_object_get(j, "processes")), 2);
		json_decref(j);
		lines++;
	}
	CHECK_EQ(lines, 3);
	cmd_free(&r);

	cmd_run(&r, "%s/cohort top --pid %d --interval 0.1 --iterations 2 | cat", test_build_dir(), (int)root);
	CHECK_EQ(r.status, 0);
	CHECK(strchr(r.out, '\033') == NULL);   /* no terminal escapes into a pipe */
	CHECK_CONTAINS(r.out, "RSS sum");
	CHECK_CONTAINS(r.out, "PSS sum");
	cmd_free(&r);
}

TEST(top_usage_errors)
{
	struct cmd_result r;

	cmd_run(&r, "%s/cohort top --once --pid abc", test_build_dir());
	CHECK_EQ(r.status, 2);
	CHECK_CONTAINS(r.err, "'abc'");
	cmd_free(&r);
	cmd_run(&r, "%s/cohort top --once --interval 0", test_build_dir());
	CHECK_EQ(r.status, 2);
	CHECK_CONTAINS(r.err, "--interval");
	cmd_free(&r);
	cmd_run(&r, "%s/cohort top --once --job 12x", test_build_dir());
	CHECK_EQ(r.status, 2);
	cmd_free(&r);
	cmd_run(&r, "COHORT_ROOT_CGROUP=%s %s/cohort top --once --job 424242", test_tmpdir(),
	        test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "424242");
	CHECK_CONTAINS(r.err, "--pid");
	cmd_free(&r);
	cmd_run(&r, "%s/cohort top --once --pid 2147483646", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "2147483646");
	cmd_free(&r);
}

/* Inside a real SLURM job on the test cluster that make check starts. */
TEST_TIMEOUT(top_inside_real_slurm_job, 120)
{
	const char *s = getenv("COHORT_SLURM");
	struct cmd_result r;
	json_error_t err;
	json_t *j, *procs, *c, *p;
	size_t i;
	int sleeps = 0;

	if (!s || strncmp(s, "up:", 3) != 0)
		SKIP("no SLURM test cluster (%s)", s ? s : "run through make check as root");
	cmd_run(&r, "timeout 100 srun --mem=400M -n1 sh -c 'sleep 60 & a=$!; sleep 60 & b=$!; sleep 0.5; "
	            "%s/cohort top --once --json; s=$?; kill $a $b; exit $s'", test_build_dir());
	CHECK_MSG(r.status == 0, "srun exited %d: %s", r.status, r.err);
	j = json_loads(r.out, 0, &err);
	CHECK_MSG(j != NULL, "bad JSON (%s):\n%s", err.text, r.out);
	procs = json_object_get(j, "processes");
	json_array_foreach(procs, i, p)
		if (strcmp(json_string_value(json_object_get(p, "command")), "sleep") == 0)
			sleeps++;
	CHECK_EQ(sleeps, 2);
	c = json_object_get(j, "cgroup");
	CHECK_MSG(json_is_object(c), "no cgroup inside a SLURM job:\n%s", r.out);
	CHECK_CONTAINS(json_string_value(json_object_get(c, "path")), "job_");
	CHECK_EQ_U64(jget(c, "limit_bytes"), 400 * MB);
	CHECK(jget(c, "usage_bytes") > 0);
	json_decref(j);
	cmd_free(&r);
}

/*
 * Shared pages under SLURM, in a real job: 5 processes sharing 300 MB under
 * --mem=1000M. The RSS sum (what jobacct_gather/linux charges) is above
 * the limit; the PSS sum and the cgroup's usage are well below it.
 */
TEST_TIMEOUT(top_explains_shared_pages_in_real_slurm_job, 120)
{
	const char *s = getenv("COHORT_SLURM");
	struct cmd_result r;
	json_error_t err;
	json_t *j, *t, *c;
	const char *text;

	if (!s || strncmp(s, "up:", 3) != 0)
		SKIP("no SLURM test cluster (%s)", s ? s : "run through make check as root");
	cmd_run(&r, "timeout 100 srun --mem=1000M -n1 sh -c '%s/examples/cow-workers/cow-workers --size 300M "
	            "--workers 5 --hold 30 > cw.out & w=$!; i=0; until [ -s cw.out ] || [ $i -ge 200 ]; do "
	            "sleep 0.1; i=$((i+1)); done; %s/cohort top --once --json; s=$?; kill $w; exit $s'",
	        test_build_dir(), test_build_dir());
	CHECK_MSG(r.status == 0, "srun exited %d: %s", r.status, r.err);
	text = r.out;
	j = json_loads(text, 0, &err);
	CHECK_MSG(j != NULL, "bad JSON (%s):\n%s", err.text, r.out);
	t = json_object_get(j, "totals");
	c = json_object_get(j, "cgroup");
	CHECK(json_is_object(c));
	CHECK_EQ_U64(jget(c, "limit_bytes"), 1000 * MB);
	CHECK_MSG(jget(t, "rss_sum_bytes") > 1000 * MB, "RSS sum %" PRIu64, jget(t, "rss_sum_bytes"));
	CHECK_MSG(jget(t, "pss_sum_bytes") < 400 * MB, "PSS sum %" PRIu64, jget(t, "pss_sum_bytes"));
	CHECK_MSG(jget(c, "usage_bytes") < 500 * MB, "cgroup usage %" PRIu64, jget(c, "usage_bytes"));
	CHECK(jget(c, "usage_bytes") > 300 * MB);
	json_decref(j);
	cmd_free(&r);
}

/*
 * --job from the spool: the latest sample of each task spank_cohort.so
 * records, live while its recording has no end line (recordings of
 * tests/fixtures/recordings/job-123 placed as the plugin names them).
 */
TEST(top_job_from_spool)
{
	struct cmd_result r;
	json_t *j, *tasks;
	json_error_t jerr;
	int running = 0;

	cmd_run(&r, "mkdir -p spool/123 && F=%s/tests/fixtures/recordings/job-123 && "
	        "grep -v '\"type\":\"end\"' $F/cohort-123.0.0.ndjson > spool/123/0.0.vm.ndjson && "
	        "cp $F/cohort-123.0.1.ndjson spool/123/0.1.vm.ndjson && echo x > spool/123/0.log",
	        test_src_dir());
	CHECK_EQ(r.status, 0);
	cmd_free(&r);

	cmd_run(&r, "%s/cohort top --job 123 --spool spool --once", test_build_dir());
	CHECK_MSG(r.status == 0, "cohort top exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "SLURM job 123, recorded in spool/123 - 2 tasks, 1 running");
	CHECK_CONTAINS(r.out, "running");
	CHECK_CONTAINS(r.out, "ended");
	CHECK_CONTAINS(r.out, "PSS sum");
	cmd_free(&r);

	cmd_run(&r, "%s/cohort top --job 123 --spool spool --once --json", test_build_dir());
	CHECK_MSG(r.status == 0, "cohort top exited %d: %s", r.status, r.err);
	j = json_loads(r.out, 0, &jerr);
	CHECK_MSG(j != NULL, "not JSON: %s", r.out);
	tasks = json_object_get(j, "tasks");
	CHECK_EQ(json_array_size(tasks), 2);
	for (size_t i = 0; i < json_array_size(tasks); i++) {
		json_t *o = json_array_get(tasks, i);

		CHECK_STREQ(json_string_value(json_object_get(o, "step")), "0");
		CHECK(json_integer_value(json_object_get(o, "rss_sum_bytes")) > 0);
		running += json_is_true(json_object_get(o, "running"));
	}
	CHECK_EQ(running, 1);
	json_decref(j);
	cmd_free(&r);

	/* Refreshing through a pipe: one table per refresh. */
	cmd_run(&r, "%s/cohort top --job 123 --spool spool -n 2 -i 0.1", test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK(strstr(r.out, "cohort top - ") && strstr(strstr(r.out, "cohort top - ") + 1, "cohort top - "));
	cmd_free(&r);

	/* A job the spool does not have, and --spool alone: said, not a crash. */
	cmd_run(&r, "%s/cohort top --job 124 --spool spool --once", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "no recordings of job 124 in the spool spool");
	cmd_free(&r);
	cmd_run(&r, "%s/cohort top --spool spool --once", test_build_dir());
	CHECK_EQ(r.status, 2);
	CHECK_CONTAINS(r.err, "--spool needs --job");
	cmd_free(&r);
}
