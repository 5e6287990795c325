/* test-shm.c - segments, mutex, barrier, semaphore, queue and arena. */
#include "harness.h"

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

/* Shared anonymous memory, inherited by helper processes. */
static void *shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK_MSG(p != MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

static void opts_here(struct cohort_seg_options *o, char *why, size_t why_size)
{
	memset(o, 0, sizeof(*o));
	o->dir = test_tmpdir();
	o->job = "test";
	o->why = why;
	o->why_size = why_size;
	if (why_size)
		why[0] = '\0';
}

static int wait_exit(pid_t pid)
{
	int st = helper_wait(pid, 20000);

	CHECK_MSG(st != -1, "helper %d did not finish in 20 s", (int)pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- segments ---- */

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

	opts_here(&o, why, sizeof(why));
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

	CHECK_EQ(wait_exit(helper_spawn(child_open_and_write, &o)), 0);
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

	opts_here(&o, why, sizeof(why));
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
	CHECK_EQ(wait_exit(pid), 0);
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
		int code = wait_exit(pid);
		CHECK_MSG(code == 0, "round %d: exit %d (2x: a create failed, 3x: another scope, "
		          "4x: no file)", round, code);
	}
}

TEST(shm_seg_never_follows_a_symlink)
{
	struct cohort_seg_options o;
	struct cohort_seg *s;
	char why[256], path[512], target[512];

	opts_here(&o, why, sizeof(why));
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

	opts_here(&o, why, sizeof(why));
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

	opts_here(&o, why, sizeof(why));
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

	opts_here(&o, why, sizeof(why));
	CHECK_OK(cohort_seg_create("guarded", 8192, &o, &s));
	((char *)cohort_seg_data(s))[8191] = 1;
	CHECK_EQ(wait_exit(helper_spawn(write_past_end, &o)), 128 + SIGSEGV);
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
	opts_here(&o, why, sizeof(why));
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
	int code = wait_exit(helper_spawn(tmpfs_child, mnt));
	if (code == 20 || code == 21 || code == 22)
		SKIP("cannot mount a tmpfs in a private mount namespace here (step %d)", code);
	CHECK_MSG(code == 0, "tmpfs child failed at step %d (%s)", code,
	          code == 128 + SIGBUS ? "SIGBUS" : "see tmpfs_child");
}

/* ---- mutex ---- */

struct mtx_shared {
	cohort_mutex_t m;
	uint64_t a, b;
	_Atomic int flag;
};

static void lock_and_die(void *arg)
{
	struct mtx_shared *s = arg;

	if (cohort_mutex_lock(&s->m, -1) != 0)
		_exit(10);
	s->a++;
	_exit(0);   /* dies holding it */
}

static void try_lock_other(void *arg)
{
	struct mtx_shared *s = arg;

	if (cohort_mutex_lock(&s->m, 0) != -EBUSY)
		_exit(10);
	if (cohort_mutex_lock(&s->m, 50) != COHORT_ETIMEDOUT)
		_exit(11);
	if (cohort_mutex_owner(&s->m) != getppid())
		_exit(12);
	if (cohort_mutex_unlock(&s->m) != -EPERM)
		_exit(13);
	if (cohort_mutex_owner(&s->m) != getppid())
		_exit(14);
}

TEST(shm_mutex_lock_trylock_timeout_owner)
{
	struct mtx_shared *s = shared(sizeof(*s));
#if defined(__SANITIZE_THREAD__)
	SKIP("ThreadSanitizer does not intercept pthread_mutex_clocklock (the timed lock), so the unlock that follows looks to it like the unlock of an unlocked mutex");
#endif

	CHECK_OK(cohort_mutex_init(&s->m));
	CHECK_EQ(cohort_mutex_owner(&s->m), 0);
	CHECK_OK(cohort_mutex_lock(&s->m, -1));
	CHECK_EQ(cohort_mutex_owner(&s->m), getpid());
	CHECK_EQ(cohort_mutex_lock(&s->m, -1), -EDEADLK);
	CHECK_EQ(wait_exit(helper_spawn(try_lock_other, s)), 0);
	CHECK_OK(cohort_mutex_unlock(&s->m));
	CHECK_EQ(cohort_mutex_owner(&s->m), 0);
	CHECK_EQ(cohort_mutex_unlock(&s->m), -EPERM);
	CHECK_OK(cohort_mutex_lock(&s->m, 100));
	CHECK_OK(cohort_mutex_unlock(&s->m));
}

TEST(shm_mutex_owner_death_is_reported_and_repaired)
{
	struct mtx_shared *s = shared(sizeof(*s));
	pid_t pid;

	CHECK_OK(cohort_mutex_init(&s->m));
	pid = helper_spawn(lock_and_die, s);
	CHECK_EQ(wait_exit(pid), 0);
	CHECK_EQ(cohort_mutex_lock(&s->m, 1000), COHORT_EOWNERDEAD);
	CHECK_EQ(cohort_mutex_last_dead(&s->m), pid);
	CHECK_EQ(cohort_mutex_owner(&s->m), getpid());
	s->b = s->a;    /* repair */
	CHECK_OK(cohort_mutex_consistent(&s->m));
	CHECK_OK(cohort_mutex_unlock(&s->m));
	CHECK_OK(cohort_mutex_lock(&s->m, 1000));
	CHECK_OK(cohort_mutex_unlock(&s->m));

	/* Not repaired: unusable for good, and says so. */
	pid = helper_spawn(lock_and_die, s);
	CHECK_EQ(wait_exit(pid), 0);
	CHECK_EQ(cohort_mutex_lock(&s->m, 1000), COHORT_EOWNERDEAD);
	CHECK_OK(cohort_mutex_unlock(&s->m));
	CHECK_EQ(cohort_mutex_lock(&s->m, 1000), COHORT_ENOTRECOVERABLE);
}

static void count_up(void *arg)
{
	struct mtx_shared *s = arg;

	for (int i = 0; i < 20000; i++) {
		if (cohort_mutex_lock(&s->m, 10000) != 0)
			_exit(10);
		s->a++;
		cohort_mutex_unlock(&s->m);
	}
}

TEST(shm_mutex_exact_count_across_processes)
{
	struct mtx_shared *s = shared(sizeof(*s));
	pid_t pids[4];
#if defined(__SANITIZE_THREAD__)
	SKIP("ThreadSanitizer does not intercept pthread_mutex_clocklock (the timed lock), so the unlock that follows looks to it like the unlock of an unlocked mutex");
#endif

	CHECK_OK(cohort_mutex_init(&s->m));
	for (int i = 0; i < 4; i++)
		pids[i] = helper_spawn(count_up, s);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(wait_exit(pids[i]), 0);
	CHECK_EQ_U64(s->a, 80000);
}

/* ---- barrier ---- */

struct bar_shared {
	cohort_barrier_t b;
	_Atomic int serial;
	_Atomic int round[3];
};

static void barrier_rounds(void *arg)
{
	struct bar_shared *s = arg;

	for (int i = 0; i < 200; i++) {
		int r = cohort_barrier_wait(&s->b, 10000);

		if (r < 0)
			_exit(10);
		if (r == 1)
			atomic_fetch_add(&s->serial, 1);
	}
}

TEST(shm_barrier_rounds_have_one_serial_each)
{
	struct bar_shared *s = shared(sizeof(*s));
	pid_t p[3];

	CHECK_OK(cohort_barrier_init(&s->b, 3));
	for (int i = 0; i < 3; i++)
		p[i] = helper_spawn(barrier_rounds, s);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(wait_exit(p[i]), 0);
	CHECK_EQ(atomic_load(&s->serial), 200);
	CHECK_EQ(cohort_barrier_init(&s->b, 0), -EINVAL);
	CHECK_EQ(cohort_barrier_init(&s->b, COHORT_MEMBERS_MAX + 1), -EINVAL);
}

static void attach_and_exit(void *arg)
{
	struct bar_shared *s = arg;

	if (cohort_barrier_attach(&s->b) != 0)
		_exit(10);
}

TEST(shm_barrier_dead_member_ends_the_wait)
{
	struct bar_shared *s = shared(sizeof(*s));
	pid_t dead;

	CHECK_OK(cohort_barrier_init(&s->b, 2));
	dead = helper_spawn(attach_and_exit, s);
	CHECK_EQ(wait_exit(dead), 0);
	CHECK_EQ(cohort_barrier_wait(&s->b, 10000), COHORT_EPEERDEAD);
	CHECK_EQ(cohort_barrier_dead(&s->b), dead);
	/* Broken stays broken. */
	CHECK_EQ(cohort_barrier_wait(&s->b, 10000), COHORT_EPEERDEAD);

	/* A member that never comes, alive: a timeout, which breaks the barrier. */
	CHECK_OK(cohort_barrier_init(&s->b, 2));
	CHECK_EQ(cohort_barrier_wait(&s->b, 30), COHORT_ETIMEDOUT);
	CHECK_EQ(cohort_barrier_wait(&s->b, 30), COHORT_EPEERDEAD);
	CHECK_EQ(cohort_barrier_dead(&s->b), 0);
}

static void wait_then_detach(void *arg)
{
	struct bar_shared *s = arg;

	if (cohort_barrier_wait(&s->b, 10000) < 0)
		_exit(10);
	if (cohort_barrier_detach(&s->b) != 0)
		_exit(11);
	if (cohort_barrier_detach(&s->b) != -ENOENT)
		_exit(12);
}

TEST(shm_barrier_detach_is_a_clean_exit)
{
	struct bar_shared *s = shared(sizeof(*s));

	CHECK_OK(cohort_barrier_init(&s->b, 2));
	pid_t pid = helper_spawn(wait_then_detach, s);
	CHECK(cohort_barrier_wait(&s->b, 10000) >= 0);
	CHECK_EQ(wait_exit(pid), 0);
	/* It left cleanly: alone now, this process passes the barrier at once. */
	CHECK_EQ(cohort_barrier_wait(&s->b, 10000), 1);
	CHECK_EQ(cohort_barrier_wait(&s->b, 10000), 1);
	CHECK_EQ(cohort_barrier_dead(&s->b), 0);
}

/* ---- semaphore ---- */

struct sem_shared {
	cohort_sem_t s;
	_Atomic int inside, max_inside;
};

static void take_two_and_die(void *arg)
{
	struct sem_shared *s = arg;

	if (cohort_sem_wait(&s->s, 1000) != 0 || cohort_sem_wait(&s->s, 1000) != 0)
		_exit(10);
}

static void sem_worker(void *arg)
{
	struct sem_shared *s = arg;

	for (int i = 0; i < 300; i++) {
		if (cohort_sem_wait(&s->s, 10000) != 0)
			_exit(10);
		int n = atomic_fetch_add(&s->inside, 1) + 1;
		int m = atomic_load(&s->max_inside);
		while (n > m && !atomic_compare_exchange_weak(&s->max_inside, &m, n))
			;
		atomic_fetch_sub(&s->inside, 1);
		cohort_sem_post(&s->s);
	}
}

TEST(shm_sem_counts_and_survives_a_dead_holder)
{
	struct sem_shared *s = shared(sizeof(*s));
	unsigned units = 99;
	pid_t p[4];

	CHECK_OK(cohort_sem_init(&s->s, 2));
	for (int i = 0; i < 4; i++)
		p[i] = helper_spawn(sem_worker, s);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(wait_exit(p[i]), 0);
	CHECK(atomic_load(&s->max_inside) <= 2);
	CHECK_EQ(cohort_sem_value(&s->s), 2);
	/* The workers exited: reap them so they are not taken for dead holders. */
	CHECK_EQ(cohort_sem_reap(&s->s, &units), 4);
	CHECK_EQ(units, 0);

	pid_t dead = helper_spawn(take_two_and_die, s);
	CHECK_EQ(wait_exit(dead), 0);
	CHECK_EQ(cohort_sem_value(&s->s), 0);
	CHECK_EQ(cohort_sem_wait(&s->s, 0), -EAGAIN);
	CHECK_EQ(cohort_sem_wait(&s->s, 10000), COHORT_EPEERDEAD);
	CHECK_EQ(cohort_sem_dead(&s->s), dead);
	CHECK_EQ(cohort_sem_reap(&s->s, &units), 1);
	CHECK_EQ(units, 2);
	CHECK_EQ(cohort_sem_value(&s->s), 2);
	CHECK_OK(cohort_sem_wait(&s->s, 1000));
	CHECK_OK(cohort_sem_post(&s->s));
	CHECK_EQ(cohort_sem_wait(&s->s, 20) , 0);
	CHECK_EQ(cohort_sem_wait(&s->s, 20) , 0);
	CHECK_EQ(cohort_sem_wait(&s->s, 20), COHORT_ETIMEDOUT);
}

static void take_one_and_detach(void *arg)
{
	struct sem_shared *s = arg;

	if (cohort_sem_wait(&s->s, 1000) != 0)
		_exit(10);
	if (cohort_sem_detach(&s->s) != 1)
		_exit(11);
}

static void post_only(void *arg)
{
	struct sem_shared *s = arg;

	for (int i = 0; i < 100; i++)
		if (cohort_sem_post(&s->s) != 0)
			_exit(10);
}

TEST(shm_sem_detach_and_posters_that_are_not_members)
{
	struct sem_shared *s = shared(sizeof(*s));

	CHECK_OK(cohort_sem_init(&s->s, 1));
	CHECK_EQ(wait_exit(helper_spawn(take_one_and_detach, s)), 0);
	/* Its unit came back, and its exit is not a death. */
	CHECK_EQ(cohort_sem_value(&s->s), 1);
	CHECK_OK(cohort_sem_wait(&s->s, 1000));
	CHECK_EQ(cohort_sem_wait(&s->s, 30), COHORT_ETIMEDOUT);
	/* Many short-lived posters never fill the member table. */
	for (int i = 0; i < COHORT_MEMBERS_MAX + 8; i++)
		CHECK_EQ(wait_exit(helper_spawn(post_only, s)), 0);
	CHECK_EQ(cohort_sem_value(&s->s), 100 * (COHORT_MEMBERS_MAX + 8));
	CHECK_EQ(cohort_sem_detach(&s->s), 1);
	CHECK_EQ(cohort_sem_detach(&s->s), -ENOENT);
}

/* ---- queue ---- */

TEST(shm_queue_fifo_variable_sizes_and_wrap)
{
	size_t size = cohort_queue_footprint(4096);
	void *mem = shared(size);
	cohort_queue_t *q, *q2;
	struct cohort_queue_stats st;
	unsigned char in[2100], out[2100];

	CHECK_OK(cohort_queue_init(mem, size, &q));
	CHECK_OK(cohort_queue_attach(mem, size, &q2));
	CHECK_EQ(cohort_queue_attach(mem, size + 64, &q2), COHORT_EBADSEG);
	CHECK_EQ(cohort_queue_max_message(q), 4096 / 2 - 8);
	CHECK_EQ(cohort_queue_recv(q, out, sizeof(out), 0), -EAGAIN);
	CHECK_EQ(cohort_queue_send(q, in, 0, 0), -EMSGSIZE);
	CHECK_EQ(cohort_queue_send(q, in, 4096 / 2 - 7, 0), -EMSGSIZE);

	/* Many rounds of odd sizes force the ring to wrap at every offset. */
	unsigned seq = 0, got = 0;
	for (int round = 0; round < 2000; round++) {
		size_t len = 1 + (size_t)(round * 37 % 700);
		int r;

		for (size_t i = 0; i < len; i++)
			in[i] = (unsigned char)(seq + i);
		r = cohort_queue_send(q, in, len, 0);
		if (r == -EAGAIN) {
			/* Full: drain one at a time until it fits. */
			do {
				int n = cohort_queue_recv(q, out, sizeof(out), 0);
				CHECK_MSG(n > 0, "recv %d", n);
				CHECK_EQ(out[0], (unsigned char)got);
				for (int i = 1; i < n; i++)
					CHECK_EQ(out[i], (unsigned char)(got + (unsigned)i));
				got++;
				r = cohort_queue_send(q, in, len, 0);
			} while (r == -EAGAIN);
			CHECK_OK(r);
		} else {
			CHECK_OK(r);
		}
		seq++;
	}
	for (;;) {
		int n = cohort_queue_recv(q, out, sizeof(out), 0);
		if (n == -EAGAIN)
			break;
		CHECK(n > 0);
		CHECK_EQ(out[0], (unsigned char)got);
		got++;
	}
	CHECK_EQ(got, seq);
	CHECK_OK(cohort_queue_stats(q, &st));
	CHECK_EQ_U64(st.sent, seq);
	CHECK_EQ_U64(st.received, seq);
	CHECK_EQ_U64(st.used, 0);
	CHECK_EQ_U64(st.lost_send + st.lost_recv + st.recovered, 0);

	/* Too small a buffer: an error, and the message stays. */
	CHECK_OK(cohort_queue_send(q, in, 100, 0));
	CHECK_EQ(cohort_queue_recv(q, out, 99, 0), -EMSGSIZE);
	CHECK_EQ(cohort_queue_recv(q, out, 100, 0), 100);
	CHECK_EQ(cohort_queue_recv(q, out, sizeof(out), 20), COHORT_ETIMEDOUT);
	/* Two handles, one queue. */
	CHECK_OK(cohort_queue_send(q2, in, 10, 0));
	CHECK_EQ(cohort_queue_recv(q, out, sizeof(out), 0), 10);
	CHECK_OK(cohort_queue_close(q2));
	CHECK_OK(cohort_queue_close(q));
}

TEST(shm_queue_refuses_corrupt_bookkeeping)
{
	size_t size = cohort_queue_footprint(4096);
	unsigned char *mem = shared(size), out[64];
	cohort_queue_t *q;

	CHECK_OK(cohort_queue_init(mem, size, &q));
	CHECK_OK(cohort_queue_send(q, "abcdef", 6, 0));
	/* Overwrite the record's length with garbage. */
	uint32_t bad = 0x7fffffff;
	memcpy(mem + COHORT_QUEUE_HEADER, &bad, 4);
	CHECK_EQ(cohort_queue_recv(q, out, sizeof(out), 0), COHORT_ECORRUPT);
	bad = 6;
	memcpy(mem + COHORT_QUEUE_HEADER, &bad, 4);
	CHECK_EQ(cohort_queue_recv(q, out, sizeof(out), 0), 6);
	/* A foreign region is not a queue. */
	memset(mem, 0xab, 64);
	CHECK_EQ(cohort_queue_attach(mem, size, &q), COHORT_EBADSEG);
}

#define MPMC_PRODUCERS 3
#define MPMC_CONSUMERS 3
#define MPMC_PER 20000

struct mpmc {
	cohort_queue_t *q;
	int id;
	_Atomic uint64_t *seen;   /* per producer, per seq */
};

static void mpmc_producer(void *arg)
{
	struct mpmc *m = arg;
	uint32_t msg[16];

	for (uint32_t i = 0; i < MPMC_PER; i++) {
		size_t words = 2 + i % 14;

		msg[0] = (uint32_t)m->id;
		msg[1] = i;
		for (size_t k = 2; k < words; k++)
			msg[k] = i * 7 + (uint32_t)k;
		if (cohort_queue_send(m->q, msg, words * 4, 10000) != 0)
			_exit(10);
	}
}

static void mpmc_consumer(void *arg)
{
	struct mpmc *m = arg;
	uint32_t msg[16];

	for (;;) {
		int n = cohort_queue_recv(m->q, msg, sizeof(msg), 10000);

		if (n < 0)
			_exit(10);
		if (n == 4 && msg[0] == 0xffffffffu)
			return;
		if (n % 4 || n < 8 || msg[0] >= MPMC_PRODUCERS || msg[1] >= MPMC_PER)
			_exit(11);
		if ((size_t)n != (2 + msg[1] % 14) * 4)
			_exit(12);
		for (int k = 2; k < n / 4; k++)
			if (msg[k] != msg[1] * 7 + (uint32_t)k)
				_exit(13);
		atomic_fetch_add(&m->seen[msg[0] * MPMC_PER + msg[1]], 1);
	}
}

TEST_TIMEOUT(shm_queue_mpmc_every_message_exactly_once, 60)
{
	struct cohort_seg_options o;
	struct cohort_seg *seg;
	char why[256];
	size_t qsize = cohort_queue_footprint(16384);
	struct mpmc prod[MPMC_PRODUCERS], cons[MPMC_CONSUMERS];
	pid_t pp[MPMC_PRODUCERS], cp[MPMC_CONSUMERS];
	_Atomic uint64_t *seen = shared(sizeof(*seen) * MPMC_PRODUCERS * MPMC_PER);
	cohort_queue_t *q;

	opts_here(&o, why, sizeof(why));
	CHECK_OK(cohort_seg_create("q", qsize, &o, &seg));
	CHECK_OK(cohort_queue_init(cohort_seg_data(seg), qsize, &q));
	for (int i = 0; i < MPMC_CONSUMERS; i++) {
		cons[i] = (struct mpmc){ q, i, seen };
		cp[i] = helper_spawn(mpmc_consumer, &cons[i]);
	}
	for (int i = 0; i < MPMC_PRODUCERS; i++) {
		prod[i] = (struct mpmc){ q, i, seen };
		pp[i] = helper_spawn(mpmc_producer, &prod[i]);
	}
	for (int i = 0; i < MPMC_PRODUCERS; i++)
		CHECK_EQ(wait_exit(pp[i]), 0);
	uint32_t stop = 0xffffffffu;
	for (int i = 0; i < MPMC_CONSUMERS; i++)
		CHECK_OK(cohort_queue_send(q, &stop, 4, 10000));
	for (int i = 0; i < MPMC_CONSUMERS; i++)
		CHECK_EQ(wait_exit(cp[i]), 0);
	for (int i = 0; i < MPMC_PRODUCERS * MPMC_PER; i++)
		CHECK_MSG(seen[i] == 1, "message %d seen %llu times", i, (unsigned long long)seen[i]);
	cohort_seg_close(seg);
}

/* ---- arena ---- */

TEST(shm_arena_alloc_free_reuse_and_stats)
{
	size_t size = 1 << 20;
	void *mem = shared(size);
	cohort_arena_t *a, *a2;
	struct cohort_arena_stats st;
	cohort_off_t h[64];

	CHECK_OK(cohort_arena_init(mem, size, &a));
	CHECK_OK(cohort_arena_attach(mem, size, &a2));
	CHECK_OK(cohort_arena_stats(a, &st));
	CHECK_EQ_U64(st.allocations, 0);
	uint64_t all_free = st.free;
	CHECK_EQ_U64(st.largest_free, all_free);

	for (int i = 0; i < 64; i++) {
		CHECK_OK(cohort_arena_alloc(a, 100 + (size_t)i * 10, &h[i]));
		CHECK(h[i] % 16 == 0);
		unsigned char *p = cohort_arena_ptr(a2, h[i]);
		CHECK(p != NULL);
		memset(p, i, 100 + (size_t)i * 10);
	}
	CHECK_OK(cohort_arena_stats(a, &st));
	CHECK_EQ_U64(st.allocations, 64);
	CHECK_EQ_U64(st.total_allocs, 64);
	for (int i = 0; i < 64; i++) {
		unsigned char *p = cohort_arena_ptr(a, h[i]);
		for (int k = 0; k < 100 + i * 10; k++)
			CHECK_EQ(p[k], i);
		CHECK_EQ(cohort_arena_check(a, h[i]), 100 + i * 10);
	}
	for (int i = 0; i < 64; i += 2)
		CHECK_OK(cohort_arena_free(a, h[i]));
	CHECK_EQ(cohort_arena_free(a, h[0]), COHORT_ECORRUPT);   /* double free */
	CHECK(cohort_arena_ptr(a, h[0]) == NULL);
	for (int i = 1; i < 64; i += 2)
		CHECK_OK(cohort_arena_free(a, h[i]));
	CHECK_OK(cohort_arena_stats(a, &st));
	CHECK_EQ_U64(st.allocations, 0);
	CHECK_EQ_U64(st.free, all_free);

	/* Everything merged back: one allocation of nearly all of it fits. */
	cohort_off_t big;
	CHECK_OK(cohort_arena_alloc(a, (size_t)all_free - 64, &big));
	cohort_off_t more;
	CHECK_EQ(cohort_arena_alloc(a, 64, &more), COHORT_ENOSPACE);
	CHECK_OK(cohort_arena_stats(a, &st));
	CHECK_EQ_U64(st.failed, 1);
	CHECK_OK(cohort_arena_free(a, big));
	CHECK_EQ(cohort_arena_alloc(a, 0, &more), -EINVAL);
}

TEST(shm_arena_catches_overruns_and_bad_handles)
{
	size_t size = 64 << 10;
	unsigned char *mem = shared(size);
	cohort_arena_t *a;
	cohort_off_t h, h2;

	CHECK_OK(cohort_arena_init(mem, size, &a));
	CHECK_OK(cohort_arena_alloc(a, 100, &h));
	CHECK_OK(cohort_arena_alloc(a, 100, &h2));
	unsigned char *p = cohort_arena_ptr(a, h);
	p[100] = 0;   /* within the padding of the 8-byte rounding: no harm done */
	memset(p + 104, 0x41, 1);     /* one byte into the canary */
	CHECK_EQ(cohort_arena_check(a, h), COHORT_ECORRUPT);
	CHECK_EQ(cohort_arena_free(a, h), COHORT_ECORRUPT);
	CHECK_EQ(cohort_arena_check(a, h2), 100);

	/* Handles that are no allocation. */
	CHECK(cohort_arena_ptr(a, 0) == NULL);
	CHECK(cohort_arena_ptr(a, h + 16) == NULL);
	CHECK(cohort_arena_ptr(a, size) == NULL);
	CHECK(cohort_arena_ptr(a, UINT64_MAX - 8) == NULL);
	CHECK_EQ(cohort_arena_free(a, 8), COHORT_ECORRUPT);
	CHECK_EQ(cohort_arena_free(a, h + 1), COHORT_ECORRUPT);
	CHECK_EQ(cohort_arena_attach(mem + 64, size - 64, &a), COHORT_EBADSEG);
}

TEST(shm_arena_random_churn_keeps_contents)
{
	size_t size = 256 << 10;
	void *mem = shared(size);
	cohort_arena_t *a;
	cohort_off_t h[200] = { 0 };
	size_t len[200] = { 0 };
	unsigned seed = 12345;

	CHECK_OK(cohort_arena_init(mem, size, &a));
	for (int step = 0; step < 20000; step++) {
		unsigned i = (seed = seed * 1103515245 + 12345) % 200;

		if (h[i]) {
			unsigned char *p = cohort_arena_ptr(a, h[i]);
			CHECK(p != NULL);
			for (size_t k = 0; k < len[i]; k++)
				CHECK_EQ(p[k], (unsigned char)(i + k));
			CHECK_OK(cohort_arena_free(a, h[i]));
			h[i] = 0;
		} else {
			len[i] = 1 + (seed >> 8) % 3000;
			int r = cohort_arena_alloc(a, len[i], &h[i]);
			if (r == COHORT_ENOSPACE) {
				h[i] = 0;
				continue;
			}
			CHECK_OK(r);
			unsigned char *p = cohort_arena_ptr(a, h[i]);
			for (size_t k = 0; k < len[i]; k++)
				p[k] = (unsigned char)(i + k);
		}
	}
	struct cohort_arena_stats st;
	CHECK_OK(cohort_arena_stats(a, &st));
	CHECK_EQ_U64(st.used + st.free, st.size);
}

/* ---- examples ---- */

static bool example_path(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/examples/%s/%s", test_build_dir(), name, name);
	return access(buf, X_OK) == 0;
}

/* "expected E, got G": the figures an example printed. */
static void expected_got(const char *out, long *e, long *g)
{
	const char *p = strstr(out, "expected "), *q = strstr(out, ", got ");

	CHECK_MSG(p && q, "output: %s", out);
	*e = strtol(p + strlen("expected "), NULL, 10);
	*g = strtol(q + strlen(", got "), NULL, 10);
}

TEST_TIMEOUT(shm_examples_behave_as_described, 120)
{
	struct cmd_result r;
	char path[4096];
	long e, g;

	if (!example_path("counter", path, sizeof(path)))
		SKIP("examples not built (make builds them under %s/examples)", test_build_dir());

	cmd_run(&r, "%s 4 50000", path);
	CHECK_EQ(r.status, 0);
	expected_got(r.out, &e, &g);
	CHECK_EQ(e, 200000);
	CHECK_EQ(g, e);
	cmd_free(&r);

	cmd_run(&r, "%s --kill 3 100000", path);
	CHECK_MSG(r.status == 0, "counter --kill: %s%s", r.out, r.err);
	CHECK_CONTAINS(r.out, "lock recovered");
	expected_got(r.out, &e, &g);
	CHECK_EQ(g, e);
	cmd_free(&r);

	CHECK(example_path("workqueue", path, sizeof(path)));
	cmd_run(&r, "%s 3 50000", path);
	CHECK_MSG(r.status == 0, "workqueue: %s%s", r.out, r.err);
	CHECK_CONTAINS(r.out, "50000 received");
	CHECK_CONTAINS(r.out, ": match");
	cmd_free(&r);

	/* The wrong ways: they run, and never count more than was added. */
	CHECK(example_path("race-counter", path, sizeof(path)));
	cmd_run(&r, "%s 2 200000", path);
	CHECK_EQ(r.status, 0);
	expected_got(r.out, &e, &g);
	CHECK_EQ(e, 400000);
	CHECK(g > 0 && g <= e);
	cmd_free(&r);

	CHECK(example_path("process-local-mutex", path, sizeof(path)));
	cmd_run(&r, "%s 2 200000", path);
	CHECK_EQ(r.status, 0);
	expected_got(r.out, &e, &g);
	CHECK_EQ(e, 400000);
	CHECK(g > 0 && g <= e);
	cmd_free(&r);
}
