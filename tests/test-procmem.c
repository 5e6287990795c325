/* test-procmem.c - process and cgroup readers, on fixture trees and live processes. */
#include "harness.h"
#include "internal.h"   /* cohort__proc_stat: libcohort.a is linked in */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct cohort_probe fixture(const char *tree)
{
	static char proc[1024], cg[1024];
	struct cohort_probe p = { 0 };

	snprintf(proc, sizeof(proc), "%s/tests/fixtures/%s", test_src_dir(), tree);
	snprintf(cg, sizeof(cg), "%s/tests/fixtures/%s", test_src_dir(), tree);
	p.proc_root = proc;
	p.cgroup_root = cg;
	return p;
}

#define KB(x) ((uint64_t)(x) * 1024)

TEST(procmem_rollup_fixture)
{
	struct cohort_probe p = fixture("proc-rollup");
	struct cohort_procmem m;
	struct cohort_statm st;
	struct cohort_procstatus s;
	long page = sysconf(_SC_PAGESIZE);

	CHECK_OK(cohort_proc_smaps(&p, 100, &m));
	CHECK_EQ(m.source, COHORT_SMAPS_ROLLUP);
	CHECK_EQ_U64(m.rss, KB(307456));
	CHECK_EQ_U64(m.pss, KB(62000));
	CHECK_EQ_U64(m.pss_anon, KB(61500));
	CHECK_EQ_U64(m.pss_file, KB(400));
	CHECK_EQ_U64(m.pss_shmem, KB(100));
	CHECK_EQ_U64(m.shared_clean, KB(1540));
	CHECK_EQ_U64(m.shared_dirty, KB(305600));
	CHECK_EQ_U64(m.uss, KB(40 + 276));
	CHECK_EQ_U64(m.swap, KB(512));
	CHECK_EQ_U64(m.swap_pss, KB(128));

	CHECK_OK(cohort_proc_statm(&p, 100, &st));
	CHECK_EQ_U64(st.size, 80000ULL * page);
	CHECK_EQ_U64(st.rss, 76864ULL * page);
	CHECK_EQ_U64(st.shared, 395ULL * page);

	CHECK_OK(cohort_proc_status(&p, 100, &s));
	CHECK_STREQ(s.name, "python3 worker");
	CHECK_EQ(s.ppid, 1);
	CHECK_EQ_U64(s.vm_rss, KB(307456));
	CHECK_EQ_U64(s.vm_hwm, KB(310000));
	CHECK_EQ_U64(s.rss_anon, KB(305876));
	CHECK_EQ_U64(s.rss_file, KB(1580));
	CHECK_EQ_U64(s.rss_shmem, 0);
	CHECK_EQ_U64(s.vm_swap, KB(512));
}

TEST(procmem_gone_and_zombie)
{
	struct cohort_probe p = fixture("proc-rollup");
	struct cohort_procmem m;
	struct cohort_statm st;
	struct cohort_procstatus s;

	/* Missing directory: gone. */
	CHECK_EQ(cohort_proc_smaps(&p, 999, &m), -ESRCH);
	CHECK_EQ(cohort_proc_statm(&p, 999, &st), -ESRCH);
	CHECK_EQ(cohort_proc_status(&p, 999, &s), -ESRCH);
	/* A zombie: empty smaps_rollup, no Vm lines. */
	CHECK_EQ(cohort_proc_smaps(&p, 101, &m), -ESRCH);
	CHECK_EQ(cohort_proc_status(&p, 101, &s), -ESRCH);
	CHECK_EQ(cohort_proc_statm(&p, -1, &st), -EINVAL);
}

TEST(procmem_summed_smaps_without_rollup)
{
	struct cohort_probe p = fixture("proc-no-rollup");
	struct cohort_procmem m;
	struct cohort_procstatus s;

	CHECK_OK(cohort_proc_smaps(&p, 200, &m));
	CHECK_EQ(m.source, COHORT_SMAPS_SUMMED);
	CHECK_EQ_U64(m.rss, KB(300 + 307200 + 24));
	CHECK_EQ_U64(m.pss, KB(100 + 61440 + 24));
	CHECK_EQ_U64(m.uss, KB(4 + 20));
	CHECK_EQ_U64(m.shared_clean, KB(300));
	CHECK_EQ_U64(m.shared_dirty, KB(307200));
	CHECK_EQ_U64(m.swap, KB(8));
	/* This kernel has no Pss_* split nor SwapPss: unknown, not zero. */
	CHECK_EQ_U64(m.pss_anon, COHORT_MEM_UNKNOWN);
	CHECK_EQ_U64(m.swap_pss, COHORT_MEM_UNKNOWN);

	CHECK_OK(cohort_proc_status(&p, 200, &s));
	CHECK_EQ_U64(s.vm_rss, KB(307524));
	CHECK_EQ_U64(s.rss_anon, COHORT_MEM_UNKNOWN);
}

TEST(procmem_garbage_is_refused)
{
	struct cohort_probe p = fixture("garbage");
	struct cohort_procmem m;
	struct cohort_statm st;
	struct cohort_procstatus s;
	struct cohort_psi psi;

	for (pid_t pid = 300; pid <= 304; pid++) {
		int r = cohort_proc_smaps(&p, pid, &m);

		CHECK_MSG(r == COHORT_EPARSE, "smaps_rollup of %d: want EPARSE, got %d (%s)", (int)pid, r,
		          cohort_strerror(r));
	}
	CHECK_EQ(cohort_proc_statm(&p, 300, &st), COHORT_EPARSE);
	CHECK_EQ(cohort_proc_statm(&p, 301, &st), COHORT_EPARSE);
	CHECK_EQ(cohort_proc_statm(&p, 302, &st), COHORT_EPARSE);   /* pages x page size overflows */
	CHECK_EQ(cohort_proc_status(&p, 300, &s), COHORT_EPARSE);  /* "MB", not "kB" */
	CHECK_EQ(cohort_proc_status(&p, 301, &s), COHORT_EPARSE);
	CHECK_EQ(cohort_psi_read(&p, NULL, &psi), COHORT_EPARSE);
	CHECK_EQ(cohort_smaps_parse("", &m), COHORT_EPARSE);
	CHECK_EQ(cohort_smaps_parse(NULL, &m), COHORT_EPARSE);
}

TEST(procmem_psi)
{
	struct cohort_probe p = fixture("proc-rollup");
	struct cohort_psi psi;

	CHECK_OK(cohort_psi_read(&p, NULL, &psi));
	CHECK(psi.some_avg10 > 1.49 && psi.some_avg10 < 1.51);
	CHECK(psi.some_avg60 > 0.24 && psi.some_avg60 < 0.26);
	CHECK_EQ_U64(psi.some_total_us, 123456);
	CHECK_EQ(psi.has_full, 1);
	CHECK(psi.full_avg10 > 0.49 && psi.full_avg10 < 0.51);
	CHECK_EQ_U64(psi.full_total_us, 6789);
	CHECK_OK(cohort_psi_parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", &psi));
	CHECK_EQ(psi.has_full, 0);
	CHECK_EQ(cohort_psi_parse("some avg10=0.00 avg60=0.00 total=0\n", &psi), COHORT_EPARSE);
	CHECK_EQ(cohort_psi_parse("some avg10=101.00 avg60=0.00 avg300=0.00 total=0\n", &psi),
	         COHORT_EPARSE);
}

static int has_pid(const pid_t *pids, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return 1;
	return 0;
}

/*
 * The one parser of /proc/PID/stat, under a probe's root: a command with
 * spaces and parentheses, a zombie, a line that ends at starttime, cut and
 * garbage lines. The public identity reader goes through it with the same
 * root.
 */
TEST(procmem_stat_parser)
{
	struct cohort_probe p = fixture("proc-stat");
	const char *root = cohort__proc_root(&p);
	struct cohort_proc_identity id;
	struct cohort__stat st;

	CHECK_STREQ(root, p.proc_root);
	CHECK_OK(cohort__proc_stat(root, 100, &st));
	CHECK_STREQ(st.comm, "a) (b) c");
	CHECK_EQ(st.state, 'Z');
	CHECK_EQ(st.ppid, 42);
	CHECK_EQ(st.minflt, 7777);
	CHECK_EQ(st.start, 5005);
	CHECK_EQ(st.startstack, 140730000001234ULL);
	CHECK_OK(cohort__proc_stat(root, 101, &st));
	CHECK_EQ(st.state, 'S');
	CHECK_EQ(st.ppid, 1);
	CHECK_EQ(st.start, 6006);
	CHECK_EQ(st.startstack, 0);
	CHECK_EQ(cohort__proc_stat(root, 102, &st), COHORT_EPARSE);
	CHECK_EQ(cohort__proc_stat(root, 103, &st), COHORT_EPARSE);
	CHECK_OK(cohort__proc_stat(root, 104, &st));
	CHECK_EQ(strlen(st.comm), sizeof(st.comm) - 1);
	CHECK_EQ(st.state, 'R');
	CHECK_EQ(st.ppid, 9);
	CHECK_EQ(st.start, 7007);
	CHECK_EQ(st.startstack, 99);
	CHECK_EQ(cohort__proc_stat(root, 105, &st), -ESRCH);
	CHECK_EQ(cohort__proc_stat(root, 0, &st), -ESRCH);
	CHECK_EQ(cohort__proc_stat(root, -3, &st), -ESRCH);

	CHECK_OK(cohort_proc_identity_read(&p, 100, &id));
	CHECK_EQ(id.ppid, 42);
	CHECK_STREQ(id.comm, "a) (b) c");

	/* The liveness reader is the same parser on the real /proc. */
	uint64_t start = 0, again = 0;
	char state = '?';
	CHECK_OK(cohort__proc_start(getpid(), &start, &state));
	CHECK_OK(cohort__proc_stat("/proc", getpid(), &st));
	CHECK_EQ(st.start, start);
	CHECK_EQ(state, 'R');
	CHECK_OK(cohort__proc_start(getpid(), &again, NULL));
	CHECK_EQ(again, start);
	CHECK_EQ(cohort__proc_start(0, &start, NULL), -ESRCH);
}

static void check_pids(const pid_t *pids, size_t n, const pid_t *want, size_t nwant)
{
	CHECK_EQ(n, nwant);
	for (size_t i = 0; i < n; i++)
		CHECK_MSG(pids[i] == want[i], "pid %zu is %d, want %d", i, (int)pids[i], (int)want[i]);
}

/* A worker's tree by its children files (tests/fixtures/proc-children/README.md). */
TEST(procmem_pids_tree_fixture)
{
	struct cohort_probe p = fixture("proc-children");
	static const pid_t main_only[] = { 10, 11, 12, 13 }, all[] = { 10, 11, 12, 13, 14 };
	static const pid_t from_12[] = { 10, 11, 12, 13 }, old[] = { 20, 21 };
	pid_t *pids = NULL;
	size_t n = 0;

	CHECK_OK(cohort_pids_tree(&p, 10, 0, &pids, &n));
	check_pids(pids, n, main_only, 4);
	cohort_pids_free(pids);
	CHECK_OK(cohort_pids_tree(&p, 10, COHORT_TREE_ALL_THREADS, &pids, &n));
	check_pids(pids, n, all, 5);
	cohort_pids_free(pids);
	/* The cycle through 13 leads back to 10 and, from it, to 11: each once, and the walk ends. */
	CHECK_OK(cohort_pids_tree(&p, 12, 0, &pids, &n));
	check_pids(pids, n, from_12, 4);
	cohort_pids_free(pids);
	CHECK_OK(cohort_pids_tree(&p, 11, COHORT_TREE_ALL_THREADS, &pids, &n));
	CHECK_EQ(n, 1);
	CHECK_EQ(pids[0], 11);
	cohort_pids_free(pids);
	/* No children files: the parent pids of stat, with the same answer shape. */
	CHECK_OK(cohort_pids_tree(&p, 20, 0, &pids, &n));
	check_pids(pids, n, old, 2);
	cohort_pids_free(pids);
	CHECK_OK(cohort_pids_tree(&p, 20, COHORT_TREE_ALL_THREADS, &pids, &n));
	check_pids(pids, n, old, 2);
	cohort_pids_free(pids);
	pids = NULL;
	CHECK_EQ(cohort_pids_tree(&p, 99, 0, &pids, &n), -ESRCH);
	CHECK_EQ(cohort_pids_tree(&p, 99, COHORT_TREE_ALL_THREADS, &pids, &n), -ESRCH);
	CHECK_EQ(cohort_pids_tree(&p, 0, 0, &pids, &n), -EINVAL);
	CHECK(pids == NULL);
}

TEST(procmem_descendants_fixture)
{
	struct cohort_probe p = fixture("proc-tree");
	pid_t *pids = NULL;
	size_t n = 0;

	CHECK_OK(cohort_pids_descendants(&p, 10, &pids, &n));
	CHECK_EQ(n, 4);
	CHECK_EQ(pids[0], 10);
	CHECK_EQ(pids[1], 11);
	CHECK_EQ(pids[2], 12);
	CHECK_EQ(pids[3], 13);
	cohort_pids_free(pids);
	CHECK_OK(cohort_pids_descendants(&p, 13, &pids, &n));
	CHECK_EQ(n, 1);
	cohort_pids_free(pids);
	CHECK_EQ(cohort_pids_descendants(&p, 14, &pids, &n), -ESRCH);
	CHECK_EQ(cohort_pids_descendants(&p, 77, &pids, &n), -ESRCH);
}

TEST(procmem_cgroup_v1_fixture)
{
	struct cohort_probe p = fixture("cgroup-v1");
	struct cohort_cgmem c;
	pid_t *pids = NULL;
	size_t n = 0;
	char dir[512];

	CHECK_OK(cohort_cgroup_find_job(&p, "42", dir, sizeof(dir)));
	CHECK_CONTAINS(dir, "/memory/slurm_node1/uid_1000/job_42");
	CHECK_EQ(cohort_cgroup_find_job(&p, "4", dir, sizeof(dir)), -ENOENT);
	CHECK_EQ(cohort_cgroup_find_job(&p, "42;rm", dir, sizeof(dir)), -EINVAL);
	CHECK_EQ(cohort_cgroup_find_job(&p, "", dir, sizeof(dir)), -EINVAL);

	CHECK_OK(cohort_cgroup_read(&p, dir, &c));
	CHECK_EQ(c.version, 1);
	CHECK_EQ_U64(c.usage, 325058560);
	CHECK_EQ_U64(c.peak, 1575903232);
	CHECK_EQ_U64(c.limit, 1048576000);
	CHECK_EQ_U64(c.anon, 320864256);
	CHECK_EQ_U64(c.file, 4194304);
	CHECK_EQ_U64(c.shmem, 1048576);
	CHECK_EQ_U64(c.mapped_file, 2097152);
	CHECK_EQ_U64(c.swap, 0);
	CHECK_EQ_U64(c.oom_kill, 2);
	CHECK_EQ_U64(c.failcnt, 17);
	CHECK_EQ_U64(c.max_events, COHORT_MEM_UNKNOWN);
	CHECK_EQ(c.has_pressure, 0);

	/* A path inside the hierarchy, as /proc/PID/cgroup names it. */
	CHECK_OK(cohort_cgroup_read(&p, "/slurm_node1/uid_1000/job_42/step_0", &c));
	CHECK_EQ_U64(c.limit, UINT64_MAX);   /* v1's "unlimited" */

	CHECK_OK(cohort_pids_cgroup(&p, "/slurm_node1/uid_1000/job_42", &pids, &n));
	CHECK_EQ(n, 4);   /* 4100..4103, 4101 listed twice */
	CHECK_EQ(pids[0], 4100);
	CHECK_EQ(pids[3], 4103);
	cohort_pids_free(pids);
	CHECK_EQ(cohort_pids_cgroup(&p, "/slurm_node1/nope", &pids, &n), -ENOENT);
	CHECK_EQ(cohort_pids_cgroup(&p, "/slurm_node1/../../etc", &pids, &n), -EINVAL);
}

TEST(procmem_cgroup_v2_fixture)
{
	struct cohort_probe p = fixture("cgroup-v2");
	struct cohort_cgmem c;
	pid_t *pids = NULL;
	size_t n = 0;
	char dir[512];

	CHECK_OK(cohort_cgroup_find_job(&p, "43", dir, sizeof(dir)));
	CHECK_CONTAINS(dir, "/system.slice/slurmstepd.scope/job_43");
	CHECK_OK(cohort_cgroup_read(&p, dir, &c));
	CHECK_EQ(c.version, 2);
	CHECK_EQ_U64(c.usage, 325058560);
	CHECK_EQ_U64(c.peak, 1575903232);
	CHECK_EQ_U64(c.limit, 1048576000);
	CHECK_EQ_U64(c.anon, 320864256);
	CHECK_EQ_U64(c.shmem, 1048576);
	CHECK_EQ_U64(c.mapped_file, 2097152);
	CHECK_EQ_U64(c.oom_kill, 2);
	CHECK_EQ_U64(c.oom, 3);
	CHECK_EQ_U64(c.max_events, 31);
	CHECK_EQ_U64(c.failcnt, COHORT_MEM_UNKNOWN);
	CHECK_EQ(c.has_pressure, 1);
	CHECK(c.pressure.some_avg10 > 11.9 && c.pressure.some_avg10 < 12.1);
	CHECK_EQ_U64(c.pressure.full_total_us, 8765432);

	CHECK_OK(cohort_cgroup_read(&p, "system.slice/slurmstepd.scope/job_43/step_0", &c));
	CHECK_EQ_U64(c.limit, UINT64_MAX);   /* "max" */
	CHECK_EQ_U64(c.peak, COHORT_MEM_UNKNOWN);   /* no memory.peak before 5.19 */

	CHECK_OK(cohort_pids_cgroup(&p, dir, &pids, &n));
	CHECK_EQ(n, 3);
	CHECK_EQ(pids[0], 5000);
	CHECK_EQ(pids[1], 5001);
	CHECK_EQ(pids[2], 5002);
	cohort_pids_free(pids);
	/* Not a memory cgroup. */
	CHECK_EQ(cohort_cgroup_read(&p, "user.slice", &c), COHORT_ENOCGROUP);
}

TEST(procmem_cgroup_garbage)
{
	struct cohort_probe p = fixture("cgroup-garbage");
	struct cohort_cgmem c;
	pid_t *pids = NULL;
	size_t n = 0;

	CHECK_EQ(cohort_pids_cgroup(&p, "bad", &pids, &n), COHORT_EPARSE);
	/* Odd single files leave their figures unknown. */
	CHECK_OK(cohort_cgroup_read(&p, "bad", &c));
	CHECK_EQ_U64(c.usage, COHORT_MEM_UNKNOWN);
	CHECK_EQ_U64(c.anon, COHORT_MEM_UNKNOWN);
}

/* ---- live processes ---- */

struct touch {
	size_t size;
	int ready_fd;      /* written once the memory is touched */
};

static void touch_and_wait(void *arg)
{
	const struct touch *t = arg;
	char *p = mmap(NULL, t->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		_exit(1);
	memset(p, 1, t->size);
	if (write(t->ready_fd, "x", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

/* Start a helper holding size bytes of private memory; returns once they are touched. */
static pid_t spawn_toucher(size_t size)
{
	int fds[2];
	struct touch t;
	struct pollfd pfd;
	pid_t pid;
	char c;

	CHECK(pipe(fds) == 0);
	t.size = size;
	t.ready_fd = fds[1];
	pid = helper_spawn(touch_and_wait, &t);
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	CHECK_MSG(poll(&pfd, 1, 10000) == 1 && read(fds[0], &c, 1) == 1,
	          "helper did not touch %zu bytes within 10 s", size);
	close(fds[0]);
	return pid;
}

TEST(procmem_live_process)
{
	size_t size = 64u << 20;
	pid_t pid = spawn_toucher(size);
	struct cohort_procmem m;
	struct cohort_statm st;
	struct cohort_procstatus s;

	CHECK_OK(cohort_proc_statm(NULL, pid, &st));
	CHECK(st.rss >= size);
	CHECK_OK(cohort_proc_smaps(NULL, pid, &m));
	CHECK_EQ(m.source, COHORT_SMAPS_ROLLUP);
	CHECK(m.rss >= size);
	CHECK_MSG(m.uss >= size, "uss %" PRIu64 " rss %" PRIu64 " pss %" PRIu64 " sc %" PRIu64 " sd %" PRIu64, m.uss, m.rss, m.pss, m.shared_clean, m.shared_dirty);
	CHECK(m.pss >= m.uss && m.pss <= m.rss);
	CHECK_OK(cohort_proc_status(NULL, pid, &s));
	CHECK(s.vm_rss >= size);
	CHECK(s.vm_hwm >= s.vm_rss);
	CHECK_EQ(s.ppid, getpid());

	kill(pid, SIGKILL);
	CHECK(helper_wait(pid, 5000) >= 0);
	/* Reaped: its /proc directory is gone. */
	CHECK_EQ(cohort_proc_smaps(NULL, pid, &m), -ESRCH);
	CHECK_EQ(cohort_proc_statm(NULL, pid, &st), -ESRCH);
}

static void child_tree(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++)
		if (fork() == 0)
			for (;;)
				pause();
	for (;;)
		pause();
}

TEST(procmem_live_descendants)
{
	pid_t pid = helper_spawn(child_tree, NULL);
	pid_t *pids = NULL;
	size_t n = 0;
	int tries = 0;

	do {
		cohort_pids_free(pids);
		pids = NULL;
		usleep(20000);
		CHECK_OK(cohort_pids_descendants(NULL, pid, &pids, &n));
	} while (n < 4 && ++tries < 250);
	CHECK_EQ(n, 4);
	CHECK(has_pid(pids, n, pid));
	CHECK(!has_pid(pids, n, getpid()));
	cohort_pids_free(pids);
	/* The test process sees the helper among its own descendants. */
	CHECK_OK(cohort_pids_descendants(NULL, getpid(), &pids, &n));
	CHECK(n >= 5);
	CHECK(has_pid(pids, n, getpid()) && has_pid(pids, n, pid));
	cohort_pids_free(pids);
}

TEST(procmem_live_own_cgroup)
{
	char dir[512];
	int version = 0;
	struct cohort_cgmem c;
	pid_t *pids = NULL;
	size_t n = 0;
	int r = cohort_cgroup_of_pid(NULL, 0, dir, sizeof(dir), &version);

	if (r == COHORT_ENOCGROUP)
		SKIP("no memory cgroup on this machine");
	CHECK_OK(r);
	CHECK(version == 1 || version == 2);
	r = cohort_cgroup_read(NULL, dir, &c);
	if (r == COHORT_ENOCGROUP)
		SKIP("the memory cgroup %s has no counters (the root of a v2 hierarchy)", dir);
	CHECK_OK(r);
	CHECK(c.usage != COHORT_MEM_UNKNOWN && c.usage > 0);
	CHECK_OK(cohort_pids_cgroup(NULL, dir, &pids, &n));
	CHECK_MSG(has_pid(pids, n, getpid()), "own pid %d not among the %zu processes of %s",
	          (int)getpid(), n, dir);
	cohort_pids_free(pids);
}

TEST(procmem_cgroup_of_pid_fixture)
{
	struct cohort_probe p = fixture("proc-rollup");
	char cg[1024], dir[512];
	int version = 0;

	snprintf(cg, sizeof(cg), "%s/tests/fixtures/cgroup-v1", test_src_dir());
	p.cgroup_root = cg;
	CHECK_OK(cohort_cgroup_of_pid(&p, 100, dir, sizeof(dir), &version));
	CHECK_EQ(version, 1);
	CHECK_CONTAINS(dir, "cgroup-v1/memory/slurm_node1/uid_1000/job_42/step_0/task_0");
	/* A container that sees its own cgroup as the root: the leading components go. */
	CHECK_OK(cohort_cgroup_of_pid(&p, 102, dir, sizeof(dir), &version));
	CHECK_CONTAINS(dir, "cgroup-v1/memory/slurm_node1/uid_1000/job_42");
	CHECK(strstr(dir, "docker") == NULL);
	CHECK_EQ(cohort_cgroup_of_pid(&p, 999, dir, sizeof(dir), &version), -ESRCH);
	/* v1 hierarchy mounted, but the process names only v2: no memory cgroup here. */
	CHECK_EQ(cohort_cgroup_of_pid(&p, 101, dir, sizeof(dir), &version), COHORT_ENOCGROUP);

	snprintf(cg, sizeof(cg), "%s/tests/fixtures/cgroup-v2", test_src_dir());
	CHECK_OK(cohort_cgroup_of_pid(&p, 101, dir, sizeof(dir), &version));
	CHECK_EQ(version, 2);
	CHECK_CONTAINS(dir, "cgroup-v2/system.slice/slurmstepd.scope/job_43/step_0/user/task_0");
}

/* Children that live a few milliseconds each, forever. */
static void churn(void *arg)
{
	(void)arg;
	for (;;) {
		pid_t c = fork();

		if (c == 0) {
			char *p = malloc(1 << 20);

			if (p)
				memset(p, 1, 1 << 20);
			usleep(2000);
			_exit(0);
		}
		if (c > 0)
			waitpid(c, NULL, 0);
	}
}

/* Processes exiting while they are listed and read are gone, never an error. */
TEST_TIMEOUT(procmem_vanishing_processes, 120)
{
	pid_t churner = helper_spawn(churn, NULL);
	int rounds = test_stress() ? 5000 : 300, gone = 0, read_ok = 0;

	for (int i = 0; i < rounds; i++) {
		pid_t *pids = NULL;
		size_t n = 0;

		CHECK_OK(cohort_pids_descendants(NULL, churner, &pids, &n));
		for (size_t k = 0; k < n; k++) {
			struct cohort_procmem m;
			struct cohort_statm st;
			struct cohort_procstatus s;
			int r1 = cohort_proc_smaps(NULL, pids[k], &m);
			int r2 = cohort_proc_statm(NULL, pids[k], &st);
			int r3 = cohort_proc_status(NULL, pids[k], &s);

			CHECK_MSG(r1 == 0 || r1 == -ESRCH, "smaps of %d: %d (%s)", (int)pids[k], r1, cohort_strerror(r1));
			CHECK_MSG(r2 == 0 || r2 == -ESRCH, "statm of %d: %d (%s)", (int)pids[k], r2, cohort_strerror(r2));
			CHECK_MSG(r3 == 0 || r3 == -ESRCH, "status of %d: %d (%s)", (int)pids[k], r3, cohort_strerror(r3));
			gone += (r1 == -ESRCH) + (r2 == -ESRCH) + (r3 == -ESRCH);
			read_ok += r1 == 0;
		}
		cohort_pids_free(pids);
	}
	CHECK(read_ok > 0);
	printf("# %d reads found the process gone\n", gone);
}

/* ---- memory.stat ---- */

static char *stat_fixture(const char *name)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/tests/fixtures/cgroup-stat/%s", test_src_dir(), name);
	return read_file(path);
}

TEST(cgroup_stat_parse_v1_captured)
{
	struct cohort_cgstat s;
	char *text = stat_fixture("v1-cow.stat");

	CHECK(text != NULL);
	CHECK_OK(cohort_cgroup_stat_parse(text, 1, &s));
	CHECK_EQ_U64(s.anon, 629407744);   /* total_rss, not rss_huge nor the cgroup's own rss */
	CHECK_EQ_U64(s.file, 0);
	CHECK_EQ_U64(s.shmem, 0);
	CHECK_EQ_U64(s.inactive_file, 0);
	CHECK_EQ_U64(s.swap, 0);
	free(text);
	text = stat_fixture("v1-shm-cache.stat");
	CHECK(text != NULL);
	CHECK_OK(cohort_cgroup_stat_parse(text, 1, &s));
	CHECK_EQ_U64(s.shmem, 41943040);
	CHECK_EQ_U64(s.file, 146890752);
	CHECK_EQ_U64(s.inactive_file, 104861696);
	CHECK_EQ_U64(s.active_file, 86016);
	CHECK_EQ_U64(s.file_mapped, 0);
	/* Read as v2 it has no "anon" key: not a v2 file. */
	CHECK_EQ(cohort_cgroup_stat_parse(text, 2, &s), COHORT_EPARSE);
	free(text);
}

TEST(cgroup_stat_parse_v2)
{
	struct cohort_cgstat s;
	char *text = stat_fixture("v2-worker.stat");

	CHECK(text != NULL);
	CHECK_OK(cohort_cgroup_stat_parse(text, 2, &s));
	CHECK_EQ_U64(s.anon, 629407744);
	CHECK_EQ_U64(s.file, 146890752);
	CHECK_EQ_U64(s.shmem, 41943040);
	CHECK_EQ_U64(s.file_mapped, 2097152);
	CHECK_EQ_U64(s.inactive_file, 104861696);
	CHECK_EQ_U64(s.active_file, 86016);
	CHECK_EQ_U64(s.swap, COHORT_MEM_UNKNOWN);   /* v2 keeps swap in memory.swap.current */
	free(text);
}

TEST(cgroup_stat_parse_hostile)
{
	struct cohort_cgstat s = { .anon = 7 };

	/* A number past 2^64, a negative one, junk after one: that key is unknown, the rest stand. */
	CHECK_OK(cohort_cgroup_stat_parse("anon 5\nfile 99999999999999999999999\nshmem -3\n"
	                                  "inactive_file 12x\nactive_file 4", 2, &s));
	CHECK_EQ_U64(s.anon, 5);
	CHECK_EQ_U64(s.file, COHORT_MEM_UNKNOWN);
	CHECK_EQ_U64(s.shmem, COHORT_MEM_UNKNOWN);
	CHECK_EQ_U64(s.inactive_file, COHORT_MEM_UNKNOWN);
	CHECK_EQ_U64(s.active_file, 4);              /* no newline at the end */
	CHECK_EQ_U64(s.file_mapped, COHORT_MEM_UNKNOWN);
	/* Huge numbers are figures up to the one that means "unknown" (UINT64_MAX). */
	CHECK_OK(cohort_cgroup_stat_parse("anon 18446744073709551614", 2, &s));
	CHECK_EQ_U64(s.anon, UINT64_MAX - 1);
	CHECK_EQ(cohort_cgroup_stat_parse("anon 18446744073709551615", 2, &s), COHORT_EPARSE);
	/* No anonymous figure: an error, and *ret untouched. */
	s.anon = 7;
	CHECK_EQ(cohort_cgroup_stat_parse("", 2, &s), COHORT_EPARSE);
	CHECK_EQ(cohort_cgroup_stat_parse("file 4096\n", 2, &s), COHORT_EPARSE);
	CHECK_EQ(cohort_cgroup_stat_parse("anon 99999999999999999999\n", 2, &s), COHORT_EPARSE);
	CHECK_EQ(cohort_cgroup_stat_parse("anonymous 5\nanon_thp 6\n", 2, &s), COHORT_EPARSE);
	CHECK_EQ(cohort_cgroup_stat_parse("\n\n\n", 1, &s), COHORT_EPARSE);
	CHECK_EQ_U64(s.anon, 7);
	CHECK_EQ(cohort_cgroup_stat_parse(NULL, 2, &s), -EINVAL);
	CHECK_EQ(cohort_cgroup_stat_parse("anon 1\n", 3, &s), -EINVAL);
	/* v1: total_* when there, never mixed with the cgroup's own keys. */
	CHECK_OK(cohort_cgroup_stat_parse("rss 1\ncache 2\ntotal_rss 10\n", 1, &s));
	CHECK_EQ_U64(s.anon, 10);
	CHECK_EQ_U64(s.file, COHORT_MEM_UNKNOWN);
	CHECK_OK(cohort_cgroup_stat_parse("rss 1\ncache 2\nrss_huge 3\n", 1, &s));
	CHECK_EQ_U64(s.anon, 1);
	CHECK_EQ_U64(s.file, 2);
	/* The first of a repeated key. */
	CHECK_OK(cohort_cgroup_stat_parse("anon 1\nanon 2\n", 2, &s));
	CHECK_EQ_U64(s.anon, 1);
}

/* The two files a watcher reads each tick, on the v2 and v1 fixture trees and on bad ones. */
TEST(cgroup_read_usage_fixture_trees)
{
	char dir[600];
	struct cohort_cgstat s;
	uint64_t usage = 0;

	snprintf(dir, sizeof(dir), "%s/tests/fixtures/cgroup-v2/system.slice/cohort-100/rank-0",
	         test_src_dir());
	CHECK_OK(cohort_cgroup_read_usage(dir, 2, &usage, &s));
	CHECK_EQ_U64(usage, 775405568);
	CHECK_EQ_U64(s.anon, 629407744);
	CHECK_EQ_U64(s.inactive_file, 104861696);
	/* The v1 files are not there. */
	CHECK_EQ(cohort_cgroup_read_usage(dir, 1, &usage, &s), -ENOENT);
	CHECK_EQ(cohort_cgroup_read_usage(dir, 0, &usage, &s), -EINVAL);
	snprintf(dir, sizeof(dir), "%s/tests/fixtures/cgroup-v1/memory/slurm_node1/uid_1000/job_42",
	         test_src_dir());
	CHECK_OK(cohort_cgroup_read_usage(dir, 1, &usage, &s));
	CHECK_EQ_U64(usage, 325058560);
	CHECK_EQ_U64(s.anon, 320864256);
	CHECK_EQ_U64(s.shmem, 1048576);

	/* A usage that is not a number, "max", or a stat without anon: errors. */
	snprintf(dir, sizeof(dir), "%s/cg", test_tmpdir());
	CHECK_OK(mkdir(dir, 0755));
	char path[700];
	snprintf(path, sizeof(path), "%s/memory.current", dir);
	write_file(path, "12 34\n");
	snprintf(path, sizeof(path), "%s/memory.stat", dir);
	write_file(path, "anon 5\n");
	CHECK_EQ(cohort_cgroup_read_usage(dir, 2, &usage, &s), COHORT_EPARSE);
	snprintf(path, sizeof(path), "%s/memory.current", dir);
	write_file(path, "max\n");
	CHECK_EQ(cohort_cgroup_read_usage(dir, 2, &usage, &s), COHORT_EPARSE);
	write_file(path, "4096");
	CHECK_OK(cohort_cgroup_read_usage(dir, 2, &usage, &s));
	CHECK_EQ_U64(usage, 4096);
	snprintf(path, sizeof(path), "%s/memory.stat", dir);
	write_file(path, "file 5\n");
	usage = 1;
	CHECK_EQ(cohort_cgroup_read_usage(dir, 2, &usage, &s), COHORT_EPARSE);
	CHECK_EQ_U64(usage, 1);
}
