/*
 * test-shmscan.c - /dev/shm listing and cleanup: names, mappers, job states,
 * and `cohort shm gc` with two users and live mappings.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TEST(shm_name_parse)
{
	uid_t uid;
	char job[64];

	CHECK_EQ(cohort_shm_name_parse("cohort.1000.4242.grid", &uid, job, sizeof(job)), 1);
	CHECK_EQ(uid, 1000);
	CHECK_STREQ(job, "4242");
	CHECK_EQ(cohort_shm_name_parse("cohort.0.local-77.a.b", &uid, job, sizeof(job)), 1);
	CHECK_EQ(uid, 0);
	CHECK_STREQ(job, "local-77");
	CHECK_EQ(cohort_shm_name_parse("cohort.x.1.a", &uid, job, sizeof(job)), 0);
	CHECK_EQ(cohort_shm_name_parse("cohort.1..a", &uid, job, sizeof(job)), 0);
	CHECK_EQ(cohort_shm_name_parse("cohort.1.5.", &uid, job, sizeof(job)), 0);
	CHECK_EQ(cohort_shm_name_parse("cohort.1.5", &uid, job, sizeof(job)), 0);
	CHECK_EQ(cohort_shm_name_parse("psm_1234", &uid, job, sizeof(job)), 0);
	CHECK_EQ(cohort_shm_name_parse("cohort.99999999999.5.a", &uid, job, sizeof(job)), 0);
}

/* A pid that existed and is now reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0)
		_exit(0);
	CHECK(waitpid(pid, NULL, 0) == pid);
	return pid;
}

struct mapper {
	char path[1024];
	uid_t uid;            /* switch to this user first (0: stay) */
	int map;              /* 1: mmap and close the fd; 0: only keep it open */
	int ready_fd;
};

static void map_and_wait(void *arg)
{
	const struct mapper *m = arg;
	int fd;

	if (m->uid && (setgid(m->uid) < 0 || setuid(m->uid) < 0))
		_exit(1);
	fd = open(m->path, O_RDWR);
	if (fd < 0)
		_exit(2);
	if (m->map) {
		if (mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED)
			_exit(3);
		close(fd);   /* the mapping alone keeps it in use */
	}
	if (write(m->ready_fd, "x", 1) != 1)
		_exit(4);
	for (;;)
		pause();
}

static pid_t spawn_mapper(const char *path, uid_t uid, int map)
{
	struct mapper m;
	int fds[2];
	struct pollfd pfd;
	pid_t pid;
	char c;

	snprintf(m.path, sizeof(m.path), "%s", path);
	m.uid = uid;
	m.map = map;
	CHECK(pipe(fds) == 0);
	m.ready_fd = fds[1];
	pid = helper_spawn(map_and_wait, &m);
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	CHECK_MSG(poll(&pfd, 1, 10000) == 1 && read(fds[0], &c, 1) == 1, "mapper of %s did not start", path);
	close(fds[0]);
	return pid;
}

static void make_file(const char *dir, const char *name, uid_t uid, size_t size)
{
	char path[1024];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK_MSG(fd >= 0, "create %s: %s", path, strerror(errno));
	CHECK(ftruncate(fd, (off_t)size) == 0);
	if (uid)
		CHECK(fchown(fd, uid, uid) == 0);
	close(fd);
}

static int exists(const char *dir, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static const struct cohort_shm_file *find_file(const struct cohort_shm_file *f, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(f[i].name, name) == 0)
			return &f[i];
	return NULL;
}

TEST(shm_list_finds_mappers_and_holders)
{
	char dir[1024], path[1100], mapped[128], held[128], idle[128];
	struct cohort_probe p = { 0 };
	struct cohort_shm_file *files;
	const struct cohort_shm_file *f;
	size_t n;
	pid_t m1, m2, h;

	snprintf(dir, sizeof(dir), "%s/shm", test_tmpdir());
	CHECK(mkdir(dir, 0755) == 0);
	snprintf(mapped, sizeof(mapped), "cohort.%u.local-%d.mapped", (unsigned)getuid(), (int)getpid());
	snprintf(held, sizeof(held), "cohort.%u.local-%d.held", (unsigned)getuid(), (int)getpid());
	snprintf(idle, sizeof(idle), "other-file");
	make_file(dir, mapped, 0, 8192);
	make_file(dir, held, 0, 100);
	make_file(dir, idle, 0, 0);
	snprintf(path, sizeof(path), "%s/%s", dir, mapped);
	m1 = spawn_mapper(path, 0, 1);
	m2 = spawn_mapper(path, 0, 1);
	snprintf(path, sizeof(path), "%s/%s", dir, held);
	h = spawn_mapper(path, 0, 0);

	p.shm_path = dir;
	CHECK_OK(cohort_shm_list(&p, &files, &n));
	CHECK_EQ(n, 3);
	f = find_file(files, n, mapped);
	CHECK(f && f->cohort && f->size == 8192 && f->uid == getuid());
	CHECK_EQ(strncmp(f->job, "local-", 6), 0);
	CHECK_EQ(f->nmappers, 2);
	CHECK(f->mappers[0] == (m1 < m2 ? m1 : m2) && f->mappers[1] == (m1 < m2 ? m2 : m1));
	f = find_file(files, n, held);
	CHECK(f && f->nmappers == 1 && f->mappers[0] == h);
	f = find_file(files, n, idle);
	CHECK(f && !f->cohort && f->nmappers == 0);
	cohort_shm_files_free(files, n);

	/* Once the mappers exit, nothing maps it. */
	kill(m1, SIGKILL);
	kill(m2, SIGKILL);
	CHECK(helper_wait(m1, 5000) >= 0 && helper_wait(m2, 5000) >= 0);
	CHECK_OK(cohort_shm_list(&p, &files, &n));
	f = find_file(files, n, mapped);
	CHECK(f && f->nmappers == 0);
	cohort_shm_files_free(files, n);
}

TEST(shm_job_state)
{
	struct cohort_shm_file f;
	struct cohort_probe p = { 0 };
	char cg[1024];
	const char *env[] = { "SLURM_JOB_ID=5150", NULL };
	pid_t gone = dead_pid();

	snprintf(cg, sizeof(cg), "%s/tests/fixtures/cgroup-v1", test_src_dir());
	p.cgroup_root = cg;
	p.envp = env;
	memset(&f, 0, sizeof(f));
	f.cohort = 1;
	f.ctime_s = (int64_t)time(NULL);

	snprintf(f.job, sizeof(f.job), "local-%d", (int)gone);
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_GONE);
	/* Our own pid, which started before the file was made: alive. */
	snprintf(f.job, sizeof(f.job), "local-%d", (int)getpid());
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_ALIVE);
	/* The same pid, for a file older than the process: a reused pid, the job is gone. */
	f.ctime_s = (int64_t)time(NULL) - 24 * 3600 * 365;
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_GONE);
	f.ctime_s = (int64_t)time(NULL);

	/* SLURM jobs: job_42 has a cgroup in the fixture, 99 has none, 5150 is our own. */
	snprintf(f.job, sizeof(f.job), "42");
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_ALIVE);
	snprintf(f.job, sizeof(f.job), "99");
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_GONE);
	snprintf(f.job, sizeof(f.job), "5150");
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_ALIVE);
	/* A name cohort cannot judge is never gone. */
	snprintf(f.job, sizeof(f.job), "myrun");
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_UNKNOWN);
	snprintf(f.job, sizeof(f.job), "local-x");
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_UNKNOWN);
	f.cohort = 0;
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_UNKNOWN);
}

/*
 * cohort_shm_judge() on listings made by hand: each reason to keep a file
 * in turn, in the order the call asks them (a file with several is kept
 * for the first), and the one case it may be removed. Nothing is removed:
 * the call only decides.
 */
TEST(shm_judge_verdicts)
{
	struct cohort_shm_file f;
	struct cohort_probe p = { 0 };
	const char *env[] = { "SLURM_JOB_ID=5150", NULL };
	char cg[1024];
	uid_t me = getuid();
	pid_t mapper = 4242;

	snprintf(cg, sizeof(cg), "%s/tests/fixtures/cgroup-v1", test_src_dir());
	p.cgroup_root = cg;
	p.envp = env;
	memset(&f, 0, sizeof(f));
	snprintf(f.name, sizeof(f.name), "cohort.%u.99.grid", (unsigned)me);
	f.cohort = 1;
	f.uid = f.name_uid = me;
	f.ctime_s = (int64_t)time(NULL);
	snprintf(f.job, sizeof(f.job), "99");   /* no cgroup in the fixture: gone */
	CHECK_EQ(cohort_shm_judge(&p, &f, me), COHORT_SHM_ORPHANED);

	/* A live job keeps it: one with a cgroup, and the caller's own. */
	snprintf(f.job, sizeof(f.job), "42");
	CHECK_EQ(cohort_shm_judge(&p, &f, me), COHORT_SHM_KEEP_JOB_ALIVE);
	snprintf(f.job, sizeof(f.job), "5150");
	CHECK_EQ(cohort_shm_judge(&p, &f, me), COHORT_SHM_KEEP_JOB_ALIVE);
	snprintf(f.job, sizeof(f.job), "local-%d", (int)getpid());
	CHECK_EQ(cohort_shm_judge(&p, &f, me), COHORT_SHM_KEEP_JOB_ALIVE);
	snprintf(f.job, sizeof(f.job), "local-%d", (int)dead_pid());
	CHECK_EQ(cohort_shm_judge(&p, &f, me), COHORT_SHM_ORPHANED);
	/* A name it cannot judge is kept. */
	snprintf(f.job, sizeof(f.job), "myrun");
	CHECK_EQ(cohort_shm_judge(&p, &f, me), COHORT_SHM_KEEP_JOB_UNKNOWN);

	/* A mapper keeps it, whatever the job: asked before the job. */
	snprintf(f.job, sizeof(f.job), "99");
	f.mappers = &mapper;
	f.nmappers = 1;
	CHECK_EQ(cohort_shm_judge(&p, &f, me), COHORT_SHM_KEEP_MAPPED);
	/* Another user's, by owner or by name: asked before the mappers. */
	CHECK_EQ(cohort_shm_judge(&p, &f, me + 1), COHORT_SHM_KEEP_OTHER_USER);
	f.name_uid = me + 1;
	CHECK_EQ(cohort_shm_judge(&p, &f, me), COHORT_SHM_KEEP_OTHER_USER);
	f.name_uid = me;
	f.uid = me + 1;
	CHECK_EQ(cohort_shm_judge(&p, &f, me), COHORT_SHM_KEEP_OTHER_USER);
	/* Not a cohort name at all: asked first. */
	f.cohort = 0;
	CHECK_EQ(cohort_shm_judge(&p, &f, me + 1), COHORT_SHM_KEEP_NOT_COHORT);
	/* Each verdict has its words. */
	for (int v = COHORT_SHM_REMOVED; v <= COHORT_SHM_KEEP_CHANGED; v++)
		CHECK(cohort_shm_verdict_name((enum cohort_shm_verdict)v)[0] != '\0');
}

/* The lease check on the real /dev/shm (tmpfs), with a mapping the scan is not told about. */
TEST(shm_remove_refuses_a_live_mapping_on_tmpfs)
{
	struct cohort_probe p = { 0 };
	struct cohort_shm_file f;
	struct stat st;
	char path[256];
	pid_t m, gone = dead_pid();
	int r;

	memset(&f, 0, sizeof(f));
	snprintf(f.name, sizeof(f.name), "cohort.%u.local-%d.test-lease-%d", (unsigned)getuid(), (int)gone,
	         (int)getpid());
	snprintf(path, sizeof(path), "/dev/shm/%s", f.name);
	make_file("/dev/shm", f.name, 0, 4096);
	m = spawn_mapper(path, 0, 1);
	CHECK(stat(path, &st) == 0);
	f.cohort = 1;
	f.name_uid = getuid();
	f.uid = st.st_uid;
	f.ctime_s = (int64_t)st.st_ctim.tv_sec;
	snprintf(f.job, sizeof(f.job), "local-%d", (int)gone);
	/* As if the scan had missed the mapper (another user's process it could not read). */
	f.nmappers = 0;
	r = cohort_shm_remove(&p, &f, getuid(), 0);
	if (r != COHORT_SHM_KEEP_MAPPED)
		unlink(path);
	CHECK_MSG(r == COHORT_SHM_KEEP_MAPPED, "a mapped file got verdict %d (%s)", r,
	          r >= 0 ? cohort_shm_verdict_name(r) : cohort_strerror(r));
	CHECK(access(path, F_OK) == 0);
	kill(m, SIGKILL);
	CHECK(helper_wait(m, 5000) >= 0);
	r = cohort_shm_remove(&p, &f, getuid(), 0);
	if (r != COHORT_SHM_REMOVED)
		unlink(path);
	CHECK_MSG(r == COHORT_SHM_REMOVED, "an orphan got verdict %d", r);
	CHECK(access(path, F_OK) != 0);
}

static uid_t second_user(void)
{
	struct passwd *pw;
	struct cmd_result r;

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
	return pw->pw_uid;
}

TEST_TIMEOUT(shm_gc_two_users_and_live_mappings, 60)
{
	uid_t b = second_user();
	char dir[1024], cg[1024], path[1200];
	char a_orphan[128], b_orphan[128], b_mapped_by_a[128], b_mapped_by_b[128], b_alive[128];
	char b_slurm_alive[128], b_slurm_gone[128], b_misnamed[128], b_other[128];
	pid_t gone = dead_pid(), m1, m2;
	struct cmd_result r;

	CHECK(chmod(test_tmpdir(), 0755) == 0);
	snprintf(dir, sizeof(dir), "%s/shm", test_tmpdir());
	CHECK(mkdir(dir, 0777) == 0 && chmod(dir, 01777) == 0);
	/* A copy the second user can read, wherever the source tree lies and whatever its mode. */
	snprintf(cg, sizeof(cg), "%s/cgroup-v1", test_tmpdir());
	cmd_run(&r, "cp -r %s/tests/fixtures/cgroup-v1 %s && chmod -R a+rX %s", test_src_dir(), cg, cg);
	CHECK_MSG(r.status == 0, "cannot copy the fixture: %s", r.err);
	cmd_free(&r);

	snprintf(a_orphan, 128, "cohort.0.local-%d.a", (int)gone);
	snprintf(b_orphan, 128, "cohort.%u.local-%d.b", (unsigned)b, (int)gone);
	snprintf(b_mapped_by_a, 128, "cohort.%u.local-%d.c", (unsigned)b, (int)gone);
	snprintf(b_mapped_by_b, 128, "cohort.%u.local-%d.d", (unsigned)b, (int)gone);
	snprintf(b_alive, 128, "cohort.%u.local-%d.e", (unsigned)b, (int)getpid());
	snprintf(b_slurm_alive, 128, "cohort.%u.42.f", (unsigned)b);
	snprintf(b_slurm_gone, 128, "cohort.%u.99.g", (unsigned)b);
	snprintf(b_misnamed, 128, "cohort.0.local-%d.h", (int)gone);
	snprintf(b_other, 128, "psm_shm.%d", (int)gone);
	make_file(dir, a_orphan, 0, 4096);
	make_file(dir, b_orphan, b, 1 << 20);
	make_file(dir, b_mapped_by_a, b, 4096);
	make_file(dir, b_mapped_by_b, b, 4096);
	make_file(dir, b_alive, b, 4096);
	make_file(dir, b_slurm_alive, b, 4096);
	make_file(dir, b_slurm_gone, b, 4096);
	make_file(dir, b_misnamed, b, 4096);
	make_file(dir, b_other, b, 4096);
	/* Root maps one of B's segments: B cannot read root's maps, the lease must catch it. */
	snprintf(path, sizeof(path), "%s/%s", dir, b_mapped_by_a);
	m1 = spawn_mapper(path, 0, 1);
	snprintf(path, sizeof(path), "%s/%s", dir, b_mapped_by_b);
	m2 = spawn_mapper(path, b, 1);

#define AS_B "env -u SLURM_JOB_ID COHORT_ROOT_SHM=%s COHORT_ROOT_CGROUP=%s setpriv --reuid=%u --regid=%u --clear-groups %s/cohort shm gc"
	cmd_run(&r, AS_B " --dry-run", dir, cg, (unsigned)b, (unsigned)b, test_build_dir());
	CHECK_MSG(r.status == 0, "dry run exited %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "would remove");
	CHECK(exists(dir, b_orphan) && exists(dir, b_slurm_gone));
	cmd_free(&r);

	cmd_run(&r, AS_B, dir, cg, (unsigned)b, (unsigned)b, test_build_dir());
	CHECK_MSG(r.status == 0, "gc exited %d: %s\n%s", r.status, r.err, r.out);
	/* Removed: B's orphans only. */
	CHECK_MSG(!exists(dir, b_orphan), "B's orphan was kept:\n%s", r.out);
	CHECK_MSG(!exists(dir, b_slurm_gone), "B's segment of a gone SLURM job was kept:\n%s", r.out);
	/* Kept: everything else, each with its reason. */
	CHECK(exists(dir, a_orphan));
	CHECK(exists(dir, b_mapped_by_a));
	CHECK(exists(dir, b_mapped_by_b));
	CHECK(exists(dir, b_alive));
	CHECK(exists(dir, b_slurm_alive));
	CHECK(exists(dir, b_misnamed));
	CHECK(exists(dir, b_other));
	CHECK_CONTAINS(r.out, "removed 2 cohort segments");
	snprintf(path, sizeof(path), "kept    %s: mapped or open", b_mapped_by_a);
	CHECK_CONTAINS(r.out, path);
	snprintf(path, sizeof(path), "kept    %s: mapped or open", b_mapped_by_b);
	CHECK_CONTAINS(r.out, path);
	snprintf(path, sizeof(path), "kept    %s: its job still runs", b_alive);
	CHECK_CONTAINS(r.out, path);
	snprintf(path, sizeof(path), "kept    %s: its job still runs", b_slurm_alive);
	CHECK_CONTAINS(r.out, path);
	snprintf(path, sizeof(path), "kept    %s: belongs to another user", a_orphan);
	CHECK_CONTAINS(r.out, path);
	snprintf(path, sizeof(path), "kept    %s: belongs to another user", b_misnamed);
	CHECK_CONTAINS(r.out, path);
	cmd_free(&r);

	/* Once the mappers are gone, their segments go too; root's stays. */
	kill(m1, SIGKILL);
	kill(m2, SIGKILL);
	CHECK(helper_wait(m1, 5000) >= 0 && helper_wait(m2, 5000) >= 0);
	cmd_run(&r, AS_B, dir, cg, (unsigned)b, (unsigned)b, test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK(!exists(dir, b_mapped_by_a) && !exists(dir, b_mapped_by_b));
	CHECK(exists(dir, a_orphan) && exists(dir, b_alive));
	cmd_free(&r);
#undef AS_B
}

TEST(shm_ls_json)
{
	char dir[1024], mapped[128], orphan[128], path[1200];
	struct cmd_result r;
	pid_t gone = dead_pid(), m;

	snprintf(dir, sizeof(dir), "%s/shm", test_tmpdir());
	CHECK(mkdir(dir, 0755) == 0);
	snprintf(mapped, sizeof(mapped), "cohort.%u.local-%d.m", (unsigned)getuid(), (int)gone);
	snprintf(orphan, sizeof(orphan), "cohort.%u.local-%d.o", (unsigned)getuid(), (int)gone);
	make_file(dir, mapped, 0, 4096);
	make_file(dir, orphan, 0, 4096);
	snprintf(path, sizeof(path), "%s/%s", dir, mapped);
	m = spawn_mapper(path, 0, 1);
	cmd_run(&r, "COHORT_ROOT_SHM=%s %s/cohort shm ls --json | jq -c '.files | sort_by(.name) | "
	        "map([.name, .orphaned, .pids, .job_state])'", dir, test_build_dir());
	CHECK_EQ(r.status, 0);
	snprintf(path, sizeof(path), "[[\"%s\",false,[%d],\"gone\"],[\"%s\",true,[],\"gone\"]]\n", mapped,
	         (int)m, orphan);
	CHECK_STREQ(r.out, path);
	cmd_free(&r);
	cmd_run(&r, "COHORT_ROOT_SHM=%s %s/cohort shm ls", dir, test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.out, "orphaned");
	CHECK_CONTAINS(r.out, "in use");
	cmd_free(&r);
	cmd_run(&r, "%s/cohort shm frob", test_build_dir());
	CHECK_EQ(r.status, 2);
	CHECK_CONTAINS(r.err, "'frob'");
	cmd_free(&r);
}

/* The start time read from a replayed /proc: pid 10 started 1010 ticks after btime. */
TEST(shm_job_state_pid_reuse_fixture)
{
	struct cohort_probe p = { 0 };
	struct cohort_shm_file f;
	char proc[1024];
	long hz = sysconf(_SC_CLK_TCK);
	int64_t start;

	if (hz != 100)
		SKIP("the fixture assumes 100 clock ticks per second, this system has %ld", hz);
	start = 1000000000 + 1010 / 100;
	snprintf(proc, sizeof(proc), "%s/tests/fixtures/proc-tree", test_src_dir());
	p.proc_root = proc;
	memset(&f, 0, sizeof(f));
	f.cohort = 1;
	snprintf(f.job, sizeof(f.job), "local-10");
	f.ctime_s = start + 60;           /* made after the process started: its job */
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_ALIVE);
	f.ctime_s = start - 60;           /* older than the process: the pid was reused */
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_GONE);
	snprintf(f.job, sizeof(f.job), "local-14");   /* no stat: gone */
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_GONE);
}

static char slurm_job_cmd[2048];

static void run_slurm_job(void *arg)
{
	(void)arg;
	_exit(system(slurm_job_cmd) == 0 ? 0 : 1);
}

/* A segment of a real SLURM job: kept while the job runs, removed once it has ended. */
TEST_TIMEOUT(shm_gc_real_slurm_job, 120)
{
	const char *s = getenv("COHORT_SLURM");
	char dir[1024], jobfile[1100], name[128], *job;
	struct cmd_result r;
	pid_t pid;
	int tries = 0;

	if (!s || strncmp(s, "up:", 3) != 0)
		SKIP("no SLURM test cluster (%s)", s ? s : "run through make check as root");
	CHECK(getuid() == 0);
	snprintf(dir, sizeof(dir), "%s/shm", test_tmpdir());
	CHECK(mkdir(dir, 0755) == 0);
	snprintf(jobfile, sizeof(jobfile), "%s/job", test_tmpdir());
	snprintf(slurm_job_cmd, sizeof(slurm_job_cmd),
	         "timeout 100 srun --mem=100M -n1 sh -c ': > %s/cohort.0.$SLURM_JOB_ID.seg; "
	         "echo $SLURM_JOB_ID > %s.tmp; mv %s.tmp %s; sleep 3' >/dev/null 2>&1",
	         dir, jobfile, jobfile, jobfile);
	pid = helper_spawn(run_slurm_job, NULL);
	while (!(job = read_file(jobfile)) && ++tries < 300)
		usleep(100000);
	CHECK_MSG(job != NULL, "the SLURM job did not start within 30 s");
	job[strcspn(job, "\n")] = '\0';
	snprintf(name, sizeof(name), "cohort.0.%s.seg", job);

	cmd_run(&r, "env -u SLURM_JOB_ID COHORT_ROOT_SHM=%s %s/cohort shm gc", dir, test_build_dir());
	CHECK_EQ(r.status, 0);
	CHECK_MSG(exists(dir, name), "removed while job %s ran:\n%s", job, r.out);
	CHECK_CONTAINS(r.out, "its job still runs");
	cmd_free(&r);

	CHECK_MSG(helper_wait(pid, 60000) == 0, "the SLURM job did not end well");
	/* slurmstepd removes the job's cgroup as the job ends; allow it a moment. */
	for (tries = 0; tries < 100 && exists(dir, name); tries++) {
		cmd_run(&r, "env -u SLURM_JOB_ID COHORT_ROOT_SHM=%s %s/cohort shm gc", dir, test_build_dir());
		CHECK_EQ(r.status, 0);
		cmd_free(&r);
		if (exists(dir, name))
			usleep(200000);
	}
	CHECK_MSG(!exists(dir, name), "segment of ended job %s kept after 20 s", job);
	free(job);
}

/* A SLURM job whose cgroups cannot be looked at is never called gone (gc must keep its segments). */
TEST(shm_job_state_unknown_without_a_readable_hierarchy)
{
	struct cohort_probe p = { 0 };
	struct cohort_shm_file f;
	char dir[COHORT_PATH_MAX];
	const char *env[] = { NULL };

	CHECK(mkdir("empty", 0755) == 0);
	p.cgroup_root = "empty";
	p.envp = env;
	CHECK_EQ(cohort_cgroup_find_job(&p, "42", dir, sizeof(dir)), COHORT_ENOCGROUP);
	memset(&f, 0, sizeof(f));
	f.cohort = 1;
	snprintf(f.job, sizeof(f.job), "42");
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_UNKNOWN);

	/* A readable v1 hierarchy without the job: gone. */
	CHECK(mkdir("empty/memory", 0755) == 0);
	CHECK(mkdir("empty/memory/slurm_n", 0755) == 0);
	CHECK_EQ(cohort_cgroup_find_job(&p, "42", dir, sizeof(dir)), -ENOENT);
	CHECK_EQ(cohort_shm_job_state(&p, &f), COHORT_JOB_GONE);
}
