/*
 * test-slurmctl.c - what SLURM's controller knows: scontrol's output
 * parsed (tests/fixtures/slurmctl, captured on SLURM 22.05), scontrol run
 * within its bounds (fake scontrol scripts), the job's memory filled into
 * an allocation that had only MemTotal, and the same on the real test
 * cluster with ConstrainRAMSpace=no.
 */
#include "harness.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *fixture(const char *name)
{
	char path[1024];
	char *text;

	snprintf(path, sizeof(path), "%s/tests/fixtures/slurmctl/%s", test_src_dir(), name);
	text = read_file(path);
	CHECK_MSG(text != NULL, "cannot read %s", path);
	return text;
}

static int parse_config(const char *name, struct cohort_slurm_config *c)
{
	char *text = fixture(name);
	int r = cohort_slurm_config_parse(text, c);

	free(text);
	return r;
}

static int parse_job(const char *name, struct cohort_slurm_job *j)
{
	char *text = fixture(name);
	int r = cohort_slurm_job_parse(text, j);

	free(text);
	return r;
}

TEST(slurmctl_config_linux_overmemorykill)
{
	struct cohort_slurm_config c;

	CHECK_OK(parse_config("config-linux-overmemorykill.txt", &c));
	CHECK_STREQ(c.jobacct_gather_type, "jobacct_gather/linux");
	CHECK_STREQ(c.jobacct_gather_params, "OverMemoryKill");
	CHECK_EQ(c.over_memory_kill, 1);
	CHECK_EQ(c.use_pss, 0);
	CHECK_EQ(c.no_shared, 0);
	CHECK_STREQ(c.jobacct_gather_frequency, "task=1");
	CHECK_EQ(c.jobacct_gather_task_s, 1);
	CHECK_STREQ(c.proctrack_type, "proctrack/cgroup");
	CHECK_STREQ(c.task_plugin, "task/cgroup");
	CHECK_STREQ(c.select_type, "select/cons_tres");
	CHECK_EQ(c.constrain_ram_space, 0);
	CHECK_EQ(cohort_slurm_sums_rss(&c), 1);
}

/* The one RSS-sum rule of the watcher's notice and the diagnosis's finding. */
TEST(slurmctl_rss_level_thresholds)
{
	const uint64_t L = 1000ULL << 20;

	CHECK_EQ(cohort_slurm_rss_level(1500ULL << 20, 300ULL << 20, L), COHORT_SLURM_RSS_OVER);
	/* Past the limit with the PSS sum near it too: still an overcount, not a near miss. */
	CHECK_EQ(cohort_slurm_rss_level(L + 1, L - 1, L), COHORT_SLURM_RSS_OVER);
	CHECK_EQ(cohort_slurm_rss_level(L + 1, L, L), COHORT_SLURM_RSS_FITS);
	CHECK_EQ(cohort_slurm_rss_level(L, 0, L), COHORT_SLURM_RSS_NEAR);
	CHECK_EQ(cohort_slurm_rss_level(L / 100 * 80 + 1, L / 100 * 60 - 1, L), COHORT_SLURM_RSS_NEAR);
	CHECK_EQ(cohort_slurm_rss_level(L / 100 * 80, 0, L), COHORT_SLURM_RSS_FITS);
	CHECK_EQ(cohort_slurm_rss_level(L / 100 * 90, L / 100 * 60, L), COHORT_SLURM_RSS_FITS);
	CHECK_EQ(cohort_slurm_rss_level(UINT64_MAX, 0, 0), COHORT_SLURM_RSS_FITS);
	CHECK_EQ(cohort_slurm_rss_level(UINT64_MAX, 0, UINT64_MAX - 1), COHORT_SLURM_RSS_OVER);
}

TEST(slurmctl_config_cgroup_default)
{
	struct cohort_slurm_config c;

	CHECK_OK(parse_config("config-cgroup.txt", &c));
	CHECK_STREQ(c.jobacct_gather_type, "jobacct_gather/cgroup");
	/* SLURM prints "(null)" for an unset value. */
	CHECK_STREQ(c.jobacct_gather_params, "");
	CHECK_EQ(c.over_memory_kill + c.use_pss + c.no_shared, 0);
	CHECK_STREQ(c.jobacct_gather_frequency, "30");
	CHECK_EQ(c.jobacct_gather_task_s, 30);
	CHECK_EQ(c.constrain_ram_space, 1);
	CHECK_EQ(cohort_slurm_sums_rss(&c), 0);
}

TEST(slurmctl_config_usepss_and_missing_keys)
{
	struct cohort_slurm_config c;

	CHECK_OK(parse_config("config-usepss.txt", &c));
	CHECK_STREQ(c.jobacct_gather_params, "UsePss,OverMemoryKill,NoShared");
	CHECK(c.use_pss == 1 && c.over_memory_kill == 1 && c.no_shared == 1);
	CHECK_STREQ(c.jobacct_gather_frequency, "energy=0,task=15");
	CHECK_EQ(c.jobacct_gather_task_s, 15);
	CHECK_EQ(cohort_slurm_sums_rss(&c), 0);

	/* A few keys only; a value that holds "JobAcctGatherParams = UsePss" is not that key. */
	CHECK_OK(parse_config("config-missing-keys.txt", &c));
	CHECK_STREQ(c.jobacct_gather_type, "jobacct_gather/linux");
	CHECK_STREQ(c.jobacct_gather_params, "");
	CHECK_EQ(c.use_pss, 0);
	CHECK_EQ(c.jobacct_gather_task_s, 45);
	CHECK_STREQ(c.proctrack_type, "");
	CHECK_STREQ(c.select_type, "");
	CHECK_EQ(c.constrain_ram_space, -1);
	CHECK_EQ(cohort_slurm_sums_rss(&c), 1);
}

TEST(slurmctl_config_bad_input)
{
	struct cohort_slurm_config c, keep;

	memset(&c, 0x5a, sizeof(c));
	keep = c;
	CHECK_EQ(parse_config("config-empty.txt", &c), COHORT_EPARSE);
	CHECK_EQ(parse_config("config-garbage.txt", &c), COHORT_EPARSE);
	CHECK_EQ(cohort_slurm_config_parse(NULL, &c), -EINVAL);
	CHECK_EQ(cohort_slurm_config_parse("JobAcctGatherType = x\n", NULL), -EINVAL);
	/* Output untouched on failure. */
	CHECK(memcmp(&c, &keep, sizeof(c)) == 0);

	/* Frequencies: no task figure is -1, task=0 is off. */
	CHECK_OK(cohort_slurm_config_parse("JobAcctGatherFrequency = energy=30,network=10\n", &c));
	CHECK_EQ(c.jobacct_gather_task_s, -1);
	CHECK_OK(cohort_slurm_config_parse("JobAcctGatherFrequency = task=0\n", &c));
	CHECK_EQ(c.jobacct_gather_task_s, 0);
	CHECK_OK(cohort_slurm_config_parse("JobAcctGatherFrequency = task=x\n", &c));
	CHECK_EQ(c.jobacct_gather_task_s, -1);
	/* Params are tokens: "UsePssX" is not UsePss; SLURM reads them in any case. */
	CHECK_OK(cohort_slurm_config_parse("JobAcctGatherParams = UsePssX, overmemorykill\n", &c));
	CHECK_EQ(c.use_pss, 0);
	CHECK_EQ(c.over_memory_kill, 1);
}

TEST(slurmctl_sums_rss_rule)
{
	struct cohort_slurm_config c;

	/* Unknown: assumed to sum (see cohort/slurm.h for why). */
	CHECK_EQ(cohort_slurm_sums_rss(NULL), 1);
	memset(&c, 0, sizeof(c));
	CHECK_EQ(cohort_slurm_sums_rss(&c), 1);
	c.use_pss = 1;
	CHECK_EQ(cohort_slurm_sums_rss(&c), 0);
	memset(&c, 0, sizeof(c));
	snprintf(c.jobacct_gather_type, sizeof(c.jobacct_gather_type), "jobacct_gather/linux");
	c.no_shared = 1;
	CHECK_EQ(cohort_slurm_sums_rss(&c), 1);
	snprintf(c.jobacct_gather_type, sizeof(c.jobacct_gather_type), "jobacct_gather/none");
	CHECK_EQ(cohort_slurm_sums_rss(&c), 0);
	snprintf(c.jobacct_gather_type, sizeof(c.jobacct_gather_type), "jobacct_gather/cgroup");
	CHECK_EQ(cohort_slurm_sums_rss(&c), 0);
	snprintf(c.jobacct_gather_type, sizeof(c.jobacct_gather_type), "jobacct_gather/other");
	CHECK_EQ(cohort_slurm_sums_rss(&c), 1);
}

TEST(slurmctl_job_captured)
{
	struct cohort_slurm_job j;

	/* srun --mem=1000M */
	CHECK_OK(parse_job("job-srun-mem.txt", &j));
	CHECK_STREQ(j.job_id, "770001");
	CHECK_STREQ(j.job_state, "RUNNING");
	CHECK_EQ_U64(j.mem_per_node, 1000ULL << 20);
	CHECK_EQ_U64(j.mem_per_cpu, 0);
	CHECK_EQ_U64(j.mem_tres, 1000ULL << 20);
	CHECK(j.num_nodes == 1 && j.num_cpus == 1 && j.num_tasks == 1);

	/* salloc -n2 --mem-per-cpu=300M */
	CHECK_OK(parse_job("job-salloc-mem-per-cpu.txt", &j));
	CHECK_STREQ(j.job_id, "770003");
	CHECK_EQ_U64(j.mem_per_node, 0);
	CHECK_EQ_U64(j.mem_per_cpu, 300ULL << 20);
	CHECK_EQ_U64(j.mem_tres, 600ULL << 20);
	CHECK(j.num_nodes == 1 && j.num_cpus == 2 && j.num_tasks == 2);

	/* plain srun: MinMemoryNode=0, the node's memory in TRES */
	CHECK_OK(parse_job("job-srun-nomem.txt", &j));
	CHECK_STREQ(j.job_id, "770004");
	CHECK_EQ_U64(j.mem_per_node, 0);
	CHECK_EQ_U64(j.mem_per_cpu, 0);
	CHECK_EQ_U64(j.mem_tres, 23081ULL << 20);
}

TEST(slurmctl_job_edge_cases)
{
	struct cohort_slurm_job j, keep;

	CHECK_OK(parse_job("job-missing-mem.txt", &j));
	CHECK_STREQ(j.job_id, "770001");
	CHECK(j.mem_per_node == 0 && j.mem_per_cpu == 0 && j.mem_tres == 0);
	CHECK_EQ(j.num_cpus, 1);

	CHECK_OK(parse_job("job-mem-node-zero.txt", &j));
	CHECK(j.mem_per_node == 0 && j.mem_per_cpu == 0 && j.mem_tres == 0);

	/* A bare number is megabytes; a node range gives its lower figure; N/A is unknown. */
	CHECK_OK(parse_job("job-no-unit.txt", &j));
	CHECK_EQ_U64(j.mem_per_node, 1000ULL << 20);
	CHECK_EQ_U64(j.mem_tres, 1000ULL << 20);
	CHECK_EQ(j.num_nodes, 1);
	CHECK_EQ(j.num_tasks, -1);

	CHECK_OK(parse_job("job-huge.txt", &j));
	CHECK_EQ_U64(j.mem_per_node, 1ULL << 63);
	CHECK_EQ_U64(j.mem_tres, 1ULL << 63);

	memset(&j, 0x5a, sizeof(j));
	keep = j;
	CHECK_EQ(parse_job("job-huge-range.txt", &j), COHORT_ESIZE_RANGE);
	CHECK_EQ(parse_job("job-bad-size.txt", &j), COHORT_EPARSE);
	CHECK_EQ(parse_job("job-empty.txt", &j), COHORT_EPARSE);
	CHECK_EQ(parse_job("job-garbage.txt", &j), COHORT_EPARSE);
	CHECK_EQ(cohort_slurm_job_parse("JobId= MinMemoryNode=1G", &j), COHORT_EPARSE);
	CHECK_EQ(cohort_slurm_job_parse("JobId=1 TRES=cpu=1,mem=5X", &j), COHORT_EPARSE);
	CHECK_EQ(cohort_slurm_job_parse(NULL, &j), -EINVAL);
	CHECK(memcmp(&j, &keep, sizeof(j)) == 0);

	/* A heterogeneous job: the first component after any noise; a key inside a value is not a key. */
	CHECK_OK(cohort_slurm_job_parse("noise\nJobId=5 JobName=xMinMemoryNode=9G MinMemoryNode=2G\n"
	                                "JobId=6 MinMemoryNode=4G\n", &j));
	CHECK_STREQ(j.job_id, "5");
	CHECK_EQ_U64(j.mem_per_node, 2ULL << 30);
	CHECK_EQ(j.num_nodes, -1);
}

/* ---- running scontrol: fake ones ---- */

/* A fake scontrol in the test's directory: a shell script with body. */
static const char *fake(const char *name, const char *body)
{
	static char path[4][1024];
	static int k;
	char *p = path[k++ % 4];

	snprintf(p, sizeof(path[0]), "%s/%s", test_tmpdir(), name);
	write_file(p, "#!/bin/sh\n%s\n", body);
	CHECK(chmod(p, 0755) == 0);
	return p;
}

/* A fake that records its arguments in TMP/args and prints a fixture. */
static const char *fake_printing(const char *fixture_name)
{
	char body[2048];

	snprintf(body, sizeof(body), "echo \"$@\" > %s/args\nexec cat %s/tests/fixtures/slurmctl/%s",
	         test_tmpdir(), test_src_dir(), fixture_name);
	return fake("scontrol-print", body);
}

static char *args_seen(void)
{
	char path[1024];
	char *s;

	snprintf(path, sizeof(path), "%s/args", test_tmpdir());
	s = read_file(path);
	if (s)
		s[strcspn(s, "\n")] = '\0';
	return s;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A pid from a file the fake wrote. */
static pid_t pid_in(const char *name)
{
	char path[1024];
	char *s;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
	s = read_file(path);
	CHECK_MSG(s != NULL, "the fake scontrol did not write %s", name);
	pid = (pid_t)atoi(s);
	free(s);
	CHECK(pid > 1);
	return pid;
}

/* Gone, or a zombie waiting for init: dead either way. Waits up to 2 s for init to reap. */
static bool dead(pid_t pid)
{
	for (int i = 0; i < 200; i++) {
		char path[64];
		char *s;
		char *paren;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		s = read_file(path);
		if (!s)
			return true;
		paren = strrchr(s, ')');
		bool zombie = paren && paren[1] == ' ' && paren[2] == 'Z';
		free(s);
		if (zombie)
			return true;
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return false;
}

TEST(slurmctl_read_through_fake_scontrol)
{
	struct cohort_probe p = { 0 };
	struct cohort_slurm_config c;
	struct cohort_slurm_job j;
	char *args;

	p.scontrol = fake_printing("config-linux-overmemorykill.txt");
	CHECK_OK(cohort_slurm_config_read(&p, &c));
	CHECK_STREQ(c.jobacct_gather_type, "jobacct_gather/linux");
	CHECK_EQ(c.over_memory_kill, 1);
	args = args_seen();
	CHECK_STREQ(args, "show config");
	free(args);

	p.scontrol = fake_printing("job-srun-mem.txt");
	CHECK_OK(cohort_slurm_job_read(&p, "770001", &j));
	CHECK_EQ_U64(j.mem_per_node, 1000ULL << 20);
	args = args_seen();
	CHECK_STREQ(args, "-o show job 770001");
	free(args);
	CHECK_OK(cohort_slurm_job_read(&p, "770001_3", &j));
	CHECK_OK(cohort_slurm_job_read(&p, "770001+1", &j));

	/* Not a job id: refused before anything runs. */
	static const char *const bad[] = { "", "-h", "1;reboot", "abc", "1 2", "99999999999999999999999999999999999999999999999999999999999999999" };
	char path[1024];

	snprintf(path, sizeof(path), "%s/args", test_tmpdir());
	unlink(path);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(cohort_slurm_job_read(&p, bad[i], &j), -EINVAL);
	CHECK_EQ(cohort_slurm_job_read(&p, NULL, &j), -EINVAL);
	CHECK_MSG(access(path, F_OK) != 0, "scontrol ran for a bad job id");

	/* No such command. */
	p.scontrol = "/nonexistent/scontrol";
	CHECK_EQ(cohort_slurm_config_read(&p, &c), -ENOENT);
}

TEST(slurmctl_read_failures)
{
	struct cohort_probe p = { 0 };
	struct cohort_slurm_config c;
	struct cohort_slurm_job j;

	/* scontrol's own failure: it prints something, then exits 1. */
	p.scontrol = fake("scontrol-fail", "echo 'JobAcctGatherType = jobacct_gather/linux'\n"
	                  "echo 'slurm_load_jobs error: Invalid job id specified' >&2\nexit 1");
	CHECK_EQ(cohort_slurm_config_read(&p, &c), COHORT_ECOMMAND);
	CHECK_EQ(cohort_slurm_job_read(&p, "5", &j), COHORT_ECOMMAND);
	/* Killed by a signal. */
	p.scontrol = fake("scontrol-signal", "kill -SEGV $$");
	CHECK_EQ(cohort_slurm_config_read(&p, &c), COHORT_ECOMMAND);
	/* Exit 0 with no output. */
	p.scontrol = fake("scontrol-silent", "exit 0");
	CHECK_EQ(cohort_slurm_config_read(&p, &c), COHORT_EPARSE);
}

TEST(slurmctl_read_hung_scontrol_times_out)
{
	struct cohort_probe p = { 0 };
	struct cohort_slurm_config c;
	char body[1024];
	double t0, dt;

	/* It starts a child of its own and waits forever, holding the pipe. */
	snprintf(body, sizeof(body), "echo $$ > %s/pid\nsleep 1000 &\necho $! > %s/child\nwait",
	         test_tmpdir(), test_tmpdir());
	p.scontrol = fake("scontrol-hang", body);
	t0 = now_s();
	CHECK_EQ(cohort_slurm_config_read(&p, &c), COHORT_ETIMEDOUT);
	dt = now_s() - t0;
	CHECK_MSG(dt >= 2.9 && dt < 10.0, "timed out after %.2f s, expected about 3", dt);
	CHECK_MSG(dead(pid_in("pid")), "the hung scontrol was left running");
	CHECK_MSG(dead(pid_in("child")), "the hung scontrol's child was left running");

	/* It closes its output first, then hangs: the wait for its exit is bounded too. */
	snprintf(body, sizeof(body), "echo $$ > %s/pid2\nexec > /dev/null\nexec sleep 1000", test_tmpdir());
	p.scontrol = fake("scontrol-hang2", body);
	t0 = now_s();
	CHECK_EQ(cohort_slurm_config_read(&p, &c), COHORT_ETIMEDOUT);
	dt = now_s() - t0;
	CHECK_MSG(dt >= 2.9 && dt < 10.0, "timed out after %.2f s, expected about 3", dt);
	CHECK_MSG(dead(pid_in("pid2")), "the hung scontrol was left running");
}

TEST(slurmctl_read_output_is_bounded)
{
	struct cohort_probe p = { 0 };
	struct cohort_slurm_config c;
	char body[1024];
	double t0, dt;

	snprintf(body, sizeof(body), "echo $$ > %s/pid\nhead -c 10000000 /dev/zero | tr '\\0' x\nsleep 1000",
	         test_tmpdir());
	p.scontrol = fake("scontrol-flood", body);
	t0 = now_s();
	CHECK_EQ(cohort_slurm_config_read(&p, &c), -EFBIG);
	dt = now_s() - t0;
	CHECK_MSG(dt < 2.9, "a flood of output took %.2f s to refuse: it should not wait for the timeout", dt);
	CHECK_MSG(dead(pid_in("pid")), "the flooding scontrol was left running");

	/* The bound exactly: 256 KiB is read (and is no configuration); one byte more is refused. */
	p.scontrol = fake("scontrol-256k", "head -c 262144 /dev/zero | tr '\\0' x");
	CHECK_EQ(cohort_slurm_config_read(&p, &c), COHORT_EPARSE);
	p.scontrol = fake("scontrol-256k1", "head -c 262145 /dev/zero | tr '\\0' x");
	CHECK_EQ(cohort_slurm_config_read(&p, &c), -EFBIG);
}

static _Atomic int stop_spin;

static void *spin(void *arg)
{
	while (!stop_spin) {
		struct timespec ts = { 0, 1000000L };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* From a threaded host that blocks signals (as a signalfd supervisor does): scontrol gets none blocked. */
TEST(slurmctl_read_from_threaded_host_with_signals_blocked)
{
	struct cohort_probe p = { 0 };
	struct cohort_slurm_config c;
	pthread_t th[2];
	sigset_t set;
	char body[1024], path[1024];
	char *status;

	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&th[i], NULL, spin, NULL) == 0);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
	/*
	 * The shell reads its own mask with builtins only: a command it forks
	 * (grep) could read it while the shell blocks every signal around
	 * that fork, as dash does.
	 */
	snprintf(body, sizeof(body), "while read -r k v; do [ \"$k\" = SigBlk: ] && "
	         "printf 'SigBlk:\\t%%s\\n' \"$v\" > %s/sigblk; done < /proc/$$/status\n"
	         "exec cat %s/tests/fixtures/slurmctl/config-cgroup.txt", test_tmpdir(), test_src_dir());
	p.scontrol = fake("scontrol-sig", body);
	for (int i = 0; i < 20; i++)
		CHECK_OK(cohort_slurm_config_read(&p, &c));
	CHECK_STREQ(c.jobacct_gather_type, "jobacct_gather/cgroup");
	snprintf(path, sizeof(path), "%s/sigblk", test_tmpdir());
	status = read_file(path);
	CHECK_CONTAINS(status, "SigBlk:\t0000000000000000");
	free(status);
	stop_spin = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
}

/* ---- the allocation: the controller's figure when the node gave only MemTotal ---- */

/*
 * slurm-v1's /proc (captured inside `srun --mem=300M`: no SLURM_MEM_* in
 * its environment) over a cgroup tree of the same layout with no limit at
 * any level, as under ConstrainRAMSpace=no.
 */
static void unlimited_probe(struct cohort_probe *p, const char *const *envp)
{
	static char proc[1024], cg[1024];
	static const char *const levels[] = {
		"", "/slurm_vm", "/slurm_vm/uid_0", "/slurm_vm/uid_0/job_2",
		"/slurm_vm/uid_0/job_2/step_0", "/slurm_vm/uid_0/job_2/step_0/task_0",
	};
	char path[1024];

	memset(p, 0, sizeof(*p));
	snprintf(proc, sizeof(proc), "%s/tests/fixtures/slurm-v1/proc", test_src_dir());
	snprintf(cg, sizeof(cg), "%s/cgroup", test_tmpdir());
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		snprintf(path, sizeof(path), "%s/memory%s/memory.limit_in_bytes", cg, levels[i]);
		write_file(path, "9223372036854771712\n");
		snprintf(path, sizeof(path), "%s/memory%s/memory.usage_in_bytes", cg, levels[i]);
		write_file(path, "1048576\n");
	}
	p->proc_root = proc;
	p->cgroup_root = cg;
	p->shm_path = test_tmpdir();
	p->envp = envp;
}

TEST(slurmctl_alloc_asks_the_controller)
{
	static const char *const env[] = { "SLURM_JOB_ID=2", "SLURM_CPUS_ON_NODE=1", NULL };
	static const char *const env_cpus2[] = { "SLURM_JOB_ID=2", "SLURM_CPUS_ON_NODE=2", NULL };
	static const char *const env_nocpus[] = { "SLURM_JOB_ID=2", NULL };
	struct cohort_probe p;
	struct cohort_alloc a, keep;
	char *args;

	unlimited_probe(&p, env);
	CHECK_OK(cohort_alloc_detect(&p, &a));
	CHECK_EQ(a.mem_limit_source, COHORT_SRC_MEMTOTAL);
	CHECK_EQ(a.cgroup_version, 1);

	/* srun --mem=1000M */
	p.scontrol = fake_printing("job-srun-mem.txt");
	CHECK_EQ(cohort_alloc_ask_slurm(&p, &a), 1);
	CHECK_EQ(a.mem_limit_source, COHORT_SRC_SLURM_JOB);
	CHECK_STREQ(cohort_source_name(a.mem_limit_source), "scontrol show job");
	CHECK_EQ_U64(a.mem_limit, 1048576000ULL);
	CHECK_STREQ(a.mem_limit_where, "scontrol show job 770001: MinMemoryNode=1000.0 MiB");
	args = args_seen();
	CHECK_STREQ(args, "-o show job 2");
	free(args);
	/* Asked once: the limit no longer comes from MemTotal. */
	CHECK_EQ(cohort_alloc_ask_slurm(&p, &a), 0);

	/* --mem-per-cpu=300M x the job's CPUs here: SLURM_CPUS_ON_NODE, else NumCPUs of a one-node job. */
	p.envp = env_cpus2;
	CHECK_OK(cohort_alloc_detect(&p, &a));
	p.scontrol = fake_printing("job-salloc-mem-per-cpu.txt");
	CHECK_EQ(cohort_alloc_ask_slurm(&p, &a), 1);
	CHECK_EQ_U64(a.mem_limit, 600ULL << 20);
	CHECK_STREQ(a.mem_limit_where, "scontrol show job 770003: MinMemoryCPU=300.0 MiB x 2 CPUs");
	p.envp = env_nocpus;
	CHECK_OK(cohort_alloc_detect(&p, &a));
	CHECK_EQ(cohort_alloc_ask_slurm(&p, &a), 1);
	CHECK_EQ_U64(a.mem_limit, 600ULL << 20);

	/* No --mem: the node's memory as SLURM gave it (TRES), below MemTotal. */
	p.envp = env;
	CHECK_OK(cohort_alloc_detect(&p, &a));
	p.scontrol = fake_printing("job-srun-nomem.txt");
	CHECK_EQ(cohort_alloc_ask_slurm(&p, &a), 1);
	CHECK_EQ_U64(a.mem_limit, 23081ULL << 20);
	CHECK_STREQ(a.mem_limit_where, "scontrol show job 770004: TRES mem=22.5 GiB over 1 node");

	/* Nothing known, more than the node has, scontrol failing: MemTotal stays, alloc untouched. */
	static const char *const none[] = { "job-missing-mem.txt", "job-mem-node-zero.txt", "job-huge.txt" };
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		CHECK_OK(cohort_alloc_detect(&p, &a));
		keep = a;
		p.scontrol = fake_printing(none[i]);
		CHECK_EQ(cohort_alloc_ask_slurm(&p, &a), 0);
		CHECK_MSG(memcmp(&a, &keep, sizeof(a)) == 0, "%s changed the allocation", none[i]);
	}
	p.scontrol = fake("scontrol-fail", "exit 1");
	CHECK_EQ(cohort_alloc_ask_slurm(&p, &a), COHORT_ECOMMAND);
	CHECK(memcmp(&a, &keep, sizeof(a)) == 0);
	CHECK_EQ(cohort_alloc_ask_slurm(&p, NULL), -EINVAL);
}

TEST(slurmctl_alloc_asks_only_when_nothing_else_knows)
{
	static const char *const env_mem[] = { "SLURM_JOB_ID=2", "SLURM_MEM_PER_NODE=500", NULL };
	static const char *const env_none[] = { "PATH=/bin", NULL };
	static const char *const env[] = { "SLURM_JOB_ID=2", NULL };
	struct cohort_probe p;
	struct cohort_alloc a, keep;
	char path[1024], dir[1024];

	snprintf(path, sizeof(path), "%s/args", test_tmpdir());
	/* SLURM_MEM_PER_NODE told it. */
	unlimited_probe(&p, env_mem);
	p.scontrol = fake_printing("job-srun-mem.txt");
	CHECK_OK(cohort_alloc_detect(&p, &a));
	keep = a;
	CHECK_EQ(cohort_alloc_ask_slurm(&p, &a), 0);
	CHECK_EQ_U64(a.mem_limit, 500ULL << 20);
	CHECK(memcmp(&a, &keep, sizeof(a)) == 0);
	/* Not a SLURM job. */
	p.envp = env_none;
	CHECK_OK(cohort_alloc_detect(&p, &a));
	CHECK_EQ(cohort_alloc_ask_slurm(&p, &a), 0);
	CHECK_EQ(a.mem_limit_source, COHORT_SRC_MEMTOTAL);
	/* The captured cgroup limit (300M) binds. */
	snprintf(dir, sizeof(dir), "%s/tests/fixtures/slurm-v1/cgroup", test_src_dir());
	p.cgroup_root = dir;
	p.envp = env;
	CHECK_OK(cohort_alloc_detect(&p, &a));
	CHECK_EQ(cohort_alloc_ask_slurm(&p, &a), 0);
	CHECK_EQ(a.mem_limit_source, COHORT_SRC_CGROUP);
	CHECK_MSG(access(path, F_OK) != 0, "scontrol ran when the node already knew the limit");
}

/* cohort check and COHORT_SCONTROL: the CLI side. */
TEST(slurmctl_cli_check_names_the_controller)
{
	struct cmd_result r;
	const char *sc = fake_printing("job-srun-mem.txt");
	char env[4096];
	json_t *j, *a;
	json_error_t err;

	unlimited_probe(&(struct cohort_probe){ 0 }, NULL);
	snprintf(env, sizeof(env), "env -u SLURM_MEM_PER_NODE -u SLURM_MEM_PER_CPU SLURM_JOB_ID=2 "
	         "SLURM_CPUS_ON_NODE=1 COHORT_ROOT_PROC=%s/tests/fixtures/slurm-v1/proc "
	         "COHORT_ROOT_CGROUP=%s/cgroup COHORT_ROOT_SHM=%s", test_src_dir(), test_tmpdir(), test_tmpdir());
	cmd_run(&r, "%s COHORT_SCONTROL=%s %s/cohort check --json", env, sc, test_build_dir());
	CHECK_MSG(r.status == 0, "cohort check exited %d: %s", r.status, r.err);
	j = json_loads(r.out, 0, &err);
	CHECK_MSG(j != NULL, "not JSON: %s\n%s", err.text, r.out);
	a = json_object_get(j, "allocation");
	CHECK_EQ(json_integer_value(json_object_get(a, "mem_limit_bytes")), 1048576000LL);
	CHECK_STREQ(json_string_value(json_object_get(a, "mem_limit_source")), "scontrol show job");
	CHECK_CONTAINS(json_string_value(json_object_get(a, "mem_limit_where")), "MinMemoryNode=");
	json_decref(j);
	cmd_free(&r);

	cmd_run(&r, "%s COHORT_SCONTROL=%s %s/cohort check", env, sc, test_build_dir());
	CHECK_MSG(r.status == 0, "cohort check exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "scontrol show job");
	cmd_free(&r);

	/* A controller that does not answer: a note, and MemTotal. */
	cmd_run(&r, "%s COHORT_SCONTROL=%s %s/cohort check --json", env, fake("scontrol-fail", "exit 1"),
	        test_build_dir());
	CHECK_MSG(r.status == 0, "cohort check exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.err, "SLURM's controller did not tell job 2's memory");
	CHECK_CONTAINS(r.out, "\"mem_limit_source\": \"MemTotal\"");
	cmd_free(&r);
}

/* ---- the real cluster ---- */

static void constrain_ram_no_case(void *arg)
{
	const char *dir = arg;
	struct cmd_result r;
	char path[1024];

	/* SLURM counting RSS and killing on it; no cgroup limit, as OverMemoryKill requires. */
	slurm_reconfigure(dir, "COHORT_SLURM_EXTRA='JobAcctGatherType=jobacct_gather/linux\n"
	                  "JobAcctGatherParams=OverMemoryKill' COHORT_SLURM_CONSTRAIN_RAM=no");
	cmd_run(&r, "timeout 50 srun --mem=700M -n1 env -u COHORT_SCONTROL %s/cohort check --json",
	        test_build_dir());
	snprintf(path, sizeof(path), "%s/check.json", test_tmpdir());
	write_file(path, "%s", r.out);
	snprintf(path, sizeof(path), "%s/check.err", test_tmpdir());
	write_file(path, "status %d\n%s", r.status, r.err);
	cmd_free(&r);
}

TEST_TIMEOUT(slurmctl_cluster_srun_mem_without_cgroup, 200)
{
	char path[1024];
	char *out, *err;
	json_t *j, *a, *s;
	json_error_t jerr;
	const char *src;

	slurm_case(slurm_cluster_dir(), constrain_ram_no_case, 180000);
	snprintf(path, sizeof(path), "%s/check.json", test_tmpdir());
	out = read_file(path);
	snprintf(path, sizeof(path), "%s/check.err", test_tmpdir());
	err = read_file(path);
	CHECK_MSG(out && err, "the case wrote no result");
	CHECK_MSG(strncmp(err, "status 0\n", 9) == 0, "srun cohort check: %s", err);
	j = json_loads(out, 0, &jerr);
	CHECK_MSG(j != NULL, "not JSON: %s\n%s", jerr.text, out);
	a = json_object_get(j, "allocation");
	s = json_object_get(a, "slurm");
	/* The premise: plain srun --mem exports no SLURM_MEM_PER_NODE to the step. */
	CHECK_MSG(json_is_null(json_object_get(s, "mem_per_node_bytes")), "SLURM_MEM_PER_NODE was set:\n%s", out);
	src = json_string_value(json_object_get(a, "mem_limit_source"));
	if (src && strcmp(src, "cgroup") == 0)
		SKIP("slurmd runs in a memory cgroup with its own limit (%s): that one binds the job",
		     json_string_value(json_object_get(a, "mem_limit_where")));
	CHECK_STREQ(src, "scontrol show job");
	CHECK_EQ(json_integer_value(json_object_get(a, "mem_limit_bytes")), 700LL << 20);
	CHECK_CONTAINS(json_string_value(json_object_get(a, "mem_limit_where")), "MinMemoryNode=700.0 MiB");
	json_decref(j);
	free(out);
	free(err);
}
