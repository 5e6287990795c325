/* test-seg.c - segments: names and job scope, creation and opening, refusals, the guard page, capacity and tmpfs exhaustion. */
#include "harness.h"
#include "shm-util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void child_open_and_write(void *arg)
{
	struct cohort_seg_options *o = arg;
	struct cohort_seg *s;

	if (cohort_seg_open("grid", o, &s) != 0)
		_exit(10);
	if (cohort_seg_size(s) != 100000)
		_exit(11);
	if (strcmp(cohort_seg_data(s), "hello") != 0)
		_exit(12);
	strcpy((char *)cohort_seg_data(s) + 99990, "child");
	cohort_seg_close(s);
}

TEST(shm_seg_create_open_roundtrip)
{
	struct cohort_seg_options o;
	struct cohort_seg *s;
	struct cohort_seg_info info;
	struct stat st;
	char why[256], path[512], want[512];

	shm_test_opts(&o, why, sizeof(why));
	o.layout = 0x1234;
	CHECK_OK(cohort_seg_create("grid", 100000, &o, &s));
	CHECK_EQ(cohort_seg_size(s), 100000);
	CHECK_EQ((uintptr_t)cohort_seg_data(s) % 4096, 0);
	CHECK_EQ(((char *)cohort_seg_data(s))[99999], 0);
	strcpy(cohort_seg_data(s), "hello");

	CHECK_OK(cohort_seg_path("grid", &o, path, sizeof(path)));
	snprintf(want, sizeof(want), "%s/cohort.%u.test.grid", test_tmpdir(), (unsigned)getuid());
	CHECK_STREQ(path, want);
	CHECK(lstat(path, &st) == 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	/* Every page is reserved: the blocks cover the file. */
	CHECK_MSG((uint64_t)st.st_blocks * 512 >= 4096 + 100000,
	          "only %lld bytes allocated", (long long)st.st_blocks * 512);

	CHECK_EQ(shm_test_wait(helper_spawn(child_open_and_write, &o)), 0);
	CHECK_STREQ((char *)cohort_seg_data(s) + 99990, "child");

	CHECK_OK(cohort_seg_stat(path, &info));
	CHECK_STREQ(info.name, "grid");
	CHECK_STREQ(info.job, "test");
	CHECK_EQ(info.layout, 0x1234);
	CHECK_EQ(info.creator_pid, getpid());
	CHECK_EQ(info.creator_alive, 1);
	CHECK_EQ_U64(info.size, 100000);
	CHECK_EQ(info.abi, COHORT_SEG_ABI);

	CHECK_EQ(cohort_seg_create("grid", 10, &o, NULL), -EINVAL);
	struct cohort_seg *s2 = NULL;
	CHECK_EQ(cohort_seg_create("grid", 10, &o, &s2), -EEXIST);
	CHECK(s2 == NULL);
	cohort_seg_close(s);
	CHECK_OK(cohort_seg_unlink("grid", &o));
	CHECK_EQ(cohort_seg_unlink("grid", &o), -ENOENT);
	CHECK_EQ(cohort_seg_open("grid", &o, &s2), -ENOENT);
	cohort_seg_close(NULL);
}

TEST(shm_seg_names_and_job_scope)
{
	struct cohort_seg_options o;
	struct cohort_seg *a, *b;
	char why[256], p[512];
	char longname[80];

	shm_test_opts(&o, why, sizeof(why));
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_EQ(cohort_seg_create("", 10, &o, &a), -EINVAL);
	CHECK_EQ(cohort_seg_create("a/b", 10, &o, &a), -EINVAL);
	CHECK_EQ(cohort_seg_create("..", 10, &o, &a), -EINVAL);
	CHECK_EQ(cohort_seg_create("a.b", 10, &o, &a), -EINVAL);
	CHECK_EQ(cohort_seg_create(longname, 10, &o, &a), -EINVAL);
	CHECK_CONTAINS(why, "invalid segment name");
	longname[COHORT_SEG_NAME_MAX] = '\0';
	CHECK_OK(cohort_seg_create(longname, 10, &o, &a));
	cohort_seg_close(a);

	/* Two jobs, one name: two segments. */
	o.job = "job1";
	CHECK_OK(cohort_seg_create("data", 10, &o, &a));
	o.job = "job2";
	CHECK_OK(cohort_seg_create("data", 10, &o, &b));
	*(int *)cohort_seg_data(a) = 1;
	*(int *)cohort_seg_data(b) = 2;
	CHECK_EQ(*(int *)cohort_seg_data(a), 1);
	cohort_seg_close(a);
	cohort_seg_close(b);
	o.job = "bad job";
	CHECK_EQ(cohort_seg_path("data", &o, p, sizeof(p)), -EINVAL);

	/* The environment decides when no job is given. */
	const char *env1[] = { "COHORT_JOB=fromcohort", "SLURM_JOB_ID=77", NULL };
	const char *env2[] = { "SLURM_JOB_ID=77", NULL };
	struct cohort_probe pr = { .envp = env1 };
	o.job = NULL;
	o.probe = &pr;
	CHECK_OK(cohort_seg_job(&o, p, sizeof(p)));
	CHECK_STREQ(p, "fromcohort");
	pr.envp = env2;
	CHECK_OK(cohort_seg_job(&o, p, sizeof(p)));
	CHECK_STREQ(p, "77");
}

TEST(shm_seg_local_scope_is_inherited_by_fork)
{
	const char *env[] = { "PATH=/bin", NULL };
	struct cohort_probe pr = { .envp = env };
	struct cohort_seg_options o = { .probe = &pr };
	char mine[64], want[64];
	int fd[2];

	CHECK_OK(cohort_seg_job(&o, mine, sizeof(mine)));
	snprintf(want, sizeof(want), "local-%d", (int)getpid());
	CHECK_STREQ(mine, want);
	CHECK(pipe(fd) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		char theirs[64] = "";

		cohort_seg_job(&o, theirs, sizeof(theirs));
		_exit(write(fd[1], theirs, strlen(theirs) + 1) > 0 ? 0 : 1);
	}
	char got[64] = "";
	CHECK(read(fd[0], got, sizeof(got)) > 0);
	CHECK_STREQ(got, mine);
	CHECK_EQ(shm_test_wait(pid), 0);
}

struct scope_race {
	pthread_barrier_t *start;
	const char *name;
	char job[64];
	char path[512];
	int r;
};

static void *scope_racer(void *arg)
{
	static const char *env[] = { "PATH=/bin", NULL };
	static const struct cohort_probe pr = { .envp = env };
	struct scope_race *a = arg;
	struct cohort_seg_options o = { .dir = test_tmpdir(), .probe = &pr };
	struct cohort_seg *s = NULL;

	pthread_barrier_wait(a->start);
	a->r = cohort_seg_create(a->name, 4096, &o, &s);
	if (a->r >= 0)
		a->r = cohort_seg_job(&o, a->job, sizeof(a->job));
	if (a->r >= 0)
		a->r = cohort_seg_path(a->name, &o, a->path, sizeof(a->path));
	cohort_seg_close(s);
	return NULL;
}

/*
 * The local scope is decided once per program: two threads that create
 * their first segments at once, each on its own object, both get
 * local-<pid> and both segments are made. Each round is a new process, so
 * that the first call of all is the racing one.
 */
TEST(shm_seg_local_scope_two_threads_at_once)
{
	for (int round = 0; round < 20; round++) {
		pid_t pid = fork();

		CHECK(pid >= 0);
		if (pid == 0) {
			pthread_barrier_t start;
			struct scope_race a[2] = { { .start = &start, .name = "left" },
			                           { .start = &start, .name = "right" } };
			pthread_t t[2];
			char want[64];

			pthread_barrier_init(&start, NULL, 2);
			for (int i = 0; i < 2; i++)
				if (pthread_create(&t[i], NULL, scope_racer, &a[i]) != 0)
					_exit(10);
			for (int i = 0; i < 2; i++)
				pthread_join(t[i], NULL);
			snprintf(want, sizeof(want), "local-%d", (int)getpid());
			for (int i = 0; i < 2; i++) {
				if (a[i].r < 0)
					_exit(20 + i);
				if (strcmp(a[i].job, want) != 0 || !strstr(a[i].path, want))
					_exit(30 + i);
				if (unlink(a[i].path) < 0)
					_exit(40 + i);
			}
			_exit(0);
		}
		int code = shm_test_wait(pid);
		CHECK_MSG(code == 0, "round %d: exit %d (2x: a create failed, 3x: another scope, "
		          "4x: no file)", round, code);
	}
}

TEST(shm_seg_never_follows_a_symlink)
{
	struct cohort_seg_options o;
	struct cohort_seg *s;
	char why[256], path[512], target[512];

	shm_test_opts(&o, why, sizeof(why));
	CHECK_OK(cohort_seg_path("victim", &o, path, sizeof(path)));
	snprintf(target, sizeof(target), "%s/target", test_tmpdir());
	write_file(target, "precious");
	CHECK(symlink(target, path) == 0);
	CHECK_EQ(cohort_seg_create("victim", 4096, &o, &s), -EEXIST);
	CHECK_EQ(cohort_seg_open("victim", &o, &s), -ELOOP);
	char *t = read_file(target);
	CHECK_STREQ(t, "precious");
	free(t);
}

static void expect_badseg(struct cohort_seg_options *o, const char *reason)
{
	struct cohort_seg *s = NULL;
	int r = cohort_seg_open("seg", o, &s);

	CHECK_MSG(r == COHORT_EBADSEG, "open gave %d (%s), want EBADSEG (%s)", r, cohort_strerror(r),
	          reason);
	CHECK(s == NULL);
}

TEST(shm_seg_refuses_foreign_and_corrupt)
{
	struct cohort_seg_options o;
	struct cohort_seg *s;
	char why[512], path[512];
	unsigned char hdr[256];
	int fd;

	shm_test_opts(&o, why, sizeof(why));
	CHECK_OK(cohort_seg_path("seg", &o, path, sizeof(path)));

	/* A foreign file of the right name. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	char junk[8192];
	memset(junk, 'J', sizeof(junk));
	CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
	close(fd);
	expect_badseg(&o, "foreign");
	CHECK_CONTAINS(why, "bad magic");
	CHECK_OK(cohort_seg_unlink("seg", &o));

	/* Truncated below its header: too short to hold one. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(write(fd, junk, 100) == 100);
	close(fd);
	expect_badseg(&o, "short");
	CHECK_OK(cohort_seg_unlink("seg", &o));

	/* An empty file: its creator has not reserved it yet. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	close(fd);
	CHECK_EQ(cohort_seg_open("seg", &o, &s), -EAGAIN);
	CHECK_OK(cohort_seg_unlink("seg", &o));

	/* A valid segment; then each header byte flipped in turn must be refused. */
	o.layout = 7;
	CHECK_OK(cohort_seg_create("seg", 5000, &o, &s));
	cohort_seg_close(s);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	CHECK(pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr));
	for (size_t i = 0; i < 208; i++) {
		if (i >= 44 && i < 48)
			continue;   /* reserved word, covered by the checksum too: still flip below */
		unsigned char b = hdr[i] ^ 0x5a;

		CHECK(pwrite(fd, &b, 1, (off_t)i) == 1);
		expect_badseg(&o, "flipped header byte");
		CHECK(pwrite(fd, &hdr[i], 1, (off_t)i) == 1);
	}
	{
		unsigned char b = hdr[44] ^ 1;

		CHECK(pwrite(fd, &b, 1, 44) == 1);
		expect_badseg(&o, "reserved word");
		CHECK(pwrite(fd, &hdr[44], 1, 44) == 1);
	}
	CHECK_OK(cohort_seg_open("seg", &o, &s));
	cohort_seg_close(s);

	/* A layout it was not made for. */
	o.layout = 8;
	expect_badseg(&o, "layout");
	CHECK_CONTAINS(why, "layout");
	o.layout = 0;
	CHECK_OK(cohort_seg_open("seg", &o, &s));
	cohort_seg_close(s);

	/* Grown or shrunk behind cohort's back. */
	CHECK(ftruncate(fd, 4096 + 8192 + 4096) == 0);
	expect_badseg(&o, "size");
	CHECK_CONTAINS(why, "sizes disagree");
	close(fd);

	/* Another job's name for the same file. */
	char other[512];
	o.job = "other";
	CHECK_OK(cohort_seg_path("seg", &o, other, sizeof(other)));
	CHECK(rename(path, other) == 0);
	CHECK(truncate(other, 4096 + 8192) == 0);
	expect_badseg(&o, "job");
	CHECK_CONTAINS(why, "names another");
	CHECK_EQ(cohort_seg_stat(other, &(struct cohort_seg_info){ 0 }), 0);
}

TEST(shm_seg_unlink_job_removes_that_job_only)
{
	struct cohort_seg_options o;
	struct cohort_seg *s;
	char why[256], path[512];
	unsigned failed = 99;

	shm_test_opts(&o, why, sizeof(why));
	o.job = "gone";
	CHECK_OK(cohort_seg_create("a", 10, &o, &s));
	cohort_seg_close(s);
	CHECK_OK(cohort_seg_create("b", 10, &o, &s));
	cohort_seg_close(s);
	o.job = "gone2";    /* a job whose name extends the other's */
	CHECK_OK(cohort_seg_create("a", 10, &o, &s));
	cohort_seg_close(s);
	o.job = "stays";
	CHECK_OK(cohort_seg_create("a", 10, &o, &s));
	cohort_seg_close(s);
	write_file("unrelated", "x");
	snprintf(path, sizeof(path), "cohort.%u.gone.bad.name", (unsigned)getuid());
	write_file(path, "not a segment name of ours");

	o.job = "gone";
	CHECK_EQ(cohort_seg_unlink_job(&o, &failed), 2);
	CHECK_EQ(failed, 0);
	CHECK_EQ(cohort_seg_open("a", &o, &s), -ENOENT);
	CHECK_EQ(cohort_seg_unlink_job(&o, NULL), 0);
	o.job = "gone2";
	CHECK_OK(cohort_seg_open("a", &o, &s));
	cohort_seg_close(s);
	o.job = "stays";
	CHECK_OK(cohort_seg_open("a", &o, &s));
	cohort_seg_close(s);
	CHECK(access("unrelated", F_OK) == 0);
	CHECK(access(path, F_OK) == 0);
	o.dir = "/nonexistent-dir";
	CHECK_EQ(cohort_seg_unlink_job(&o, NULL), -ENOENT);
}

static void write_past_end(void *arg)
{
	struct cohort_seg_options *o = arg;
	struct cohort_seg *s;

	if (cohort_seg_open("guarded", o, &s) != 0)
		_exit(10);
	/* The default action, even under a sanitizer that catches SIGSEGV. */
	signal(SIGSEGV, SIG_DFL);
	/* The data is 8192 bytes: the guard page starts right after. */
	((volatile char *)cohort_seg_data(s))[8192] = 1;
	_exit(0);
}

TEST(shm_seg_guard_page_stops_overruns)
{
	struct cohort_seg_options o;
	struct cohort_seg *s;
	char why[256];

	shm_test_opts(&o, why, sizeof(why));
	CHECK_OK(cohort_seg_create("guarded", 8192, &o, &s));
	((char *)cohort_seg_data(s))[8191] = 1;
	CHECK_EQ(shm_test_wait(helper_spawn(write_past_end, &o)), 128 + SIGSEGV);
	cohort_seg_close(s);
}

TEST(shm_seg_capacity_check_names_both_figures)
{
	struct cohort_seg_options o;
	struct cohort_seg *s;
	char why[1024], root[512];
	struct cohort_probe pr = { 0 };
	const char *env[] = { NULL };

	/* Larger than the directory's file system: refused before anything is created. */
	shm_test_opts(&o, why, sizeof(why));
	CHECK_EQ(cohort_seg_create("huge", (size_t)1 << 50, &o, &s), COHORT_ENOSPACE);
	CHECK_CONTAINS(why, "segment 'huge' needs 1.0 PiB but");
	CHECK_CONTAINS(why, "free");
	CHECK_EQ(access("cohort.0.test.huge", F_OK), -1);

	/* A job at 90 MiB of a 100 MiB cgroup limit cannot add 20 MiB of shared memory. */
	snprintf(root, sizeof(root), "%s/fx", test_tmpdir());
	write_file("fx/proc/self/cgroup", "0::/job\n");
	write_file("fx/proc/self/status", "Name:\tx\nCpus_allowed_list:\t0-1\n");
	write_file("fx/proc/meminfo", "MemTotal:       8000000 kB\nMemAvailable:   7000000 kB\n");
	write_file("fx/cg/cgroup.controllers", "memory\n");
	write_file("fx/cg/job/memory.max", "104857600\n");
	write_file("fx/cg/job/memory.current", "94371840\n");
	pr.proc_root = "fx/proc";
	pr.cgroup_root = "fx/cg";
	pr.envp = env;
	o.probe = &pr;
	CHECK_EQ(cohort_seg_create("big", 20u << 20, &o, &s), COHORT_ENOSPACE);
	CHECK_CONTAINS(why, "segment 'big' needs 20.0 MiB but the job's memory limit leaves 10.0 MiB of headroom");
	CHECK_CONTAINS(why, "limit 100.0 MiB from fx/cg/job/memory.max, 90.0 MiB in use");
	/* What fits goes through. */
	CHECK_OK(cohort_seg_create("small", 4u << 20, &o, &s));
	cohort_seg_close(s);
	/* no_check skips the figures, and the pages are still reserved. */
	o.no_check = 1;
	CHECK_OK(cohort_seg_create("big", 20u << 20, &o, &s));
	cohort_seg_close(s);
}

/*
 * The real failure: a tmpfs too small. In a private mount namespace mount
 * a 4 MiB tmpfs; a segment larger than what is left is refused at creation
 * (by the check, or with no_check by posix_fallocate), never a SIGBUS,
 * and nothing is left behind.
 */
static void tmpfs_child(void *arg)
{
	const char *mnt = arg;
	struct cohort_seg_options o = { .dir = mnt, .job = "t" };
	struct cohort_seg *a, *b;
	char why[512];
	int r;

	o.why = why;
	o.why_size = sizeof(why);
	if (unshare(CLONE_NEWNS) != 0)
		_exit(20);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		_exit(21);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=4m,mode=0700") != 0)
		_exit(22);
	if (cohort_seg_create("a", 3u << 20, &o, &a) != 0)
		_exit(23);
	memset(cohort_seg_data(a), 1, 3u << 20);      /* touches every page: reserved, no SIGBUS */
	r = cohort_seg_create("b", 3u << 20, &o, &b);
	if (r != COHORT_ENOSPACE)
		_exit(24);
	if (!strstr(why, "segment 'b' needs 3.0 MiB but") || !strstr(why, "free"))
		_exit(25);
	o.no_check = 1;
	r = cohort_seg_create("b", 3u << 20, &o, &b);
	if (r != COHORT_ENOSPACE)
		_exit(26);
	if (!strstr(why, "could not reserve"))
		_exit(27);
	/* Nothing left behind: only segment a is there. */
	if (access(mnt, F_OK) != 0)
		_exit(28);
	char pb[512];
	cohort_seg_path("b", &o, pb, sizeof(pb));
	if (access(pb, F_OK) == 0)
		_exit(29);
	cohort_seg_close(a);
	cohort_seg_unlink("a", &o);
	/* The whole file system is free again. */
	r = cohort_seg_create("c", 3u << 20, &o, &b);
	if (r != 0)
		_exit(30);
	memset(cohort_seg_data(b), 2, 3u << 20);
	cohort_seg_close(b);
	_exit(0);
}

TEST(shm_seg_tmpfs_exhaustion_is_an_error_not_sigbus)
{
	char mnt[512];

	if (geteuid() != 0)
		SKIP("needs root to mount a tmpfs in a private mount namespace");
	snprintf(mnt, sizeof(mnt), "%s/mnt", test_tmpdir());
	CHECK(mkdir(mnt, 0700) == 0);
	int code = shm_test_wait(helper_spawn(tmpfs_child, mnt));
	if (code == 20 || code == 21 || code == 22)
		SKIP("cannot mount a tmpfs in a private mount namespace here (step %d)", code);
	CHECK_MSG(code == 0, "tmpfs child failed at step %d (%s)", code,
	          code == 128 + SIGBUS ? "SIGBUS" : "see tmpfs_child");
}
