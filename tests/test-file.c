/* test-file.c - atomic publish, file locks and per-rank output, under kills. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

/* Number of cohort temporary files in dir. */
static unsigned count_temps(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	CHECK_MSG(d != NULL, "opendir %s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL)
		if (cohort_publish_is_temp(de->d_name))
			n++;
	closedir(d);
	return n;
}

/*
 * Run fn in a forked child and wait for it (60 s at most). The child may
 * use CHECK and SKIP: its failure fails the test, its skip skips it.
 */
static void in_child(void (*fn)(void *), void *arg)
{
	pid_t pid = helper_spawn(fn, arg);
	int st = helper_wait(pid, 60000);

	if (st == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		test_fail(__FILE__, __LINE__, "child timed out");
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		SKIP(" (skipped in a child)");
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status 0x%x)", st);
}

/* Enter a private mount namespace, or skip saying why. */
static void private_mounts(void)
{
	if (geteuid() != 0)
		SKIP("needs root to mount in a private mount namespace");
	if (unshare(CLONE_NEWNS) < 0)
		SKIP("unshare(CLONE_NEWNS): %s", strerror(errno));
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		SKIP("making mounts private: %s", strerror(errno));
}

/*
 * Self-checking records: a 32-byte header "CHT1 <len> <fnv32>\n" then len
 * bytes that depend on a sequence number. A reader can tell a whole record
 * from any mix or truncation of records.
 */
#define REC_HDR 32
#define REC_MAX (REC_HDR + 96 * 1024)

static uint32_t fnv32(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static size_t make_record(unsigned char *buf, uint32_t seq, size_t len)
{
	char hdr[REC_HDR + 1];

	for (size_t i = 0; i < len; i++)
		buf[REC_HDR + i] = (unsigned char)(seq * 131u + i * 7u + (i >> 8));
	snprintf(hdr, sizeof(hdr), "CHT1 %010zu %08x", len, fnv32(buf + REC_HDR, len));
	memset(buf, ' ', REC_HDR);
	memcpy(buf, hdr, strlen(hdr));
	buf[REC_HDR - 1] = '\n';
	return REC_HDR + len;
}

/* 1 when buf[0..n) is one whole record. */
static int record_ok(const unsigned char *buf, size_t n)
{
	unsigned long len;
	unsigned sum;

	if (n < REC_HDR || memcmp(buf, "CHT1 ", 5) != 0)
		return 0;
	if (sscanf((const char *)buf + 5, "%10lu %8x", &len, &sum) != 2)
		return 0;
	return len == n - REC_HDR && fnv32(buf + REC_HDR, len) == sum;
}

/* Read a whole file (up to REC_MAX + 1 bytes). Returns its size or -errno. */
static ssize_t slurp_record(const char *path, unsigned char *buf)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + len, REC_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == REC_MAX + 1)
			break;
	}
	close(fd);
	return (ssize_t)len;
}

/* ---- publish basics ---- */

TEST(file_publish_replaces_whole)
{
	char error[COHORT_MSG_MAX] = "";
	struct cohort_publish_opts o = { .mode = 0640, .why = error, .why_size = sizeof(error) };
	struct stat st;
	char *s;
	mode_t old = umask(022);

	CHECK_OK(cohort_publish_data("out.txt", "first\n", 6, &o));
	s = read_file("out.txt");
	CHECK_STREQ(s, "first\n");
	free(s);
	CHECK_OK(cohort_publish_data("out.txt", "second version\n", 15, NULL));
	s = read_file("out.txt");
	CHECK_STREQ(s, "second version\n");
	free(s);
	CHECK_OK(stat("out.txt", &st));
	CHECK_EQ(st.st_mode & 07777, 0644);
	CHECK_OK(cohort_publish_data("./sub.txt", "", 0, &o));
	CHECK_OK(stat("sub.txt", &st));
	CHECK_EQ(st.st_size, 0);
	CHECK_EQ(st.st_mode & 07777, 0640);
	CHECK_EQ(count_temps("."), 0);
	CHECK_STREQ(error, "");
	umask(old);
}

TEST(file_publish_invisible_until_commit)
{
	struct cohort_publish pub;
	DIR *d;
	struct dirent *de;
	int temps = 0;
	char *s;

	write_file("t.txt", "old\n");
	CHECK_OK(cohort_publish_open(&pub, "t.txt", NULL));
	CHECK_OK(cohort_publish_write(&pub, "new\n", 4));
	s = read_file("t.txt");
	CHECK_STREQ(s, "old\n");
	free(s);
	/* The temporary file sits beside the target, named as cohort's. */
	d = opendir(".");
	while ((de = readdir(d)) != NULL) {
		if (cohort_publish_is_temp(de->d_name)) {
			temps++;
			CHECK_MSG(strncmp(de->d_name, ".t.txt.cohort-tmp-", 18) == 0, "temp name %s", de->d_name);
		}
	}
	closedir(d);
	CHECK_EQ(temps, 1);
	CHECK_OK(cohort_publish_commit(&pub));
	s = read_file("t.txt");
	CHECK_STREQ(s, "new\n");
	free(s);
	CHECK_EQ(count_temps("."), 0);
	CHECK_EQ(cohort_publish_commit(&pub), -EBADF);
	cohort_publish_abort(&pub);   /* an ended publication: no-op */
	cohort_publish_abort(NULL);

	/* Abort leaves the target as it was. */
	CHECK_OK(cohort_publish_open(&pub, "t.txt", NULL));
	CHECK_OK(cohort_publish_write(&pub, "other\n", 6));
	cohort_publish_abort(&pub);
	s = read_file("t.txt");
	CHECK_STREQ(s, "new\n");
	free(s);
	CHECK_EQ(count_temps("."), 0);
}

TEST(file_publish_temp_names)
{
	CHECK(cohort_publish_is_temp(".a.cohort-tmp-0123456789abcdef"));
	CHECK(cohort_publish_is_temp("..cohort-tmp-0123456789abcdef"));
	CHECK(!cohort_publish_is_temp("a.cohort-tmp-0123456789abcdef"));
	CHECK(!cohort_publish_is_temp(".a.cohort-tmp-0123456789abcdeF"));
	CHECK(!cohort_publish_is_temp(".a.cohort-tmp-0123456789abcde"));
	CHECK(!cohort_publish_is_temp(".a.cohort-tmp-0123456789abcdef0"));
	CHECK(!cohort_publish_is_temp(".a.cohort-tmp-"));
	CHECK(!cohort_publish_is_temp(""));
	CHECK(!cohort_publish_is_temp(NULL));

	/* A target name of 255 bytes still gets a temporary name that fits. */
	char name[256];
	char *s;

	memset(name, 'n', 255);
	name[255] = '\0';
	CHECK_OK(cohort_publish_data(name, "x", 1, NULL));
	s = read_file(name);
	CHECK_STREQ(s, "x");
	free(s);
}

TEST(file_publish_bad_paths)
{
	char error[COHORT_MSG_MAX] = "";
	struct cohort_publish_opts o = { .why = error, .why_size = sizeof(error) };

	CHECK_OK(mkdir("adir", 0755));
	CHECK_EQ(cohort_publish_data("adir", "x", 1, &o), -EISDIR);
	CHECK_CONTAINS(error, "is a directory");
	CHECK_EQ(cohort_publish_data("adir/", "x", 1, &o), -EISDIR);
	CHECK_EQ(cohort_publish_data("", "x", 1, &o), -EINVAL);
	CHECK_EQ(cohort_publish_data("nodir/x", "x", 1, &o), -ENOENT);
	CHECK_CONTAINS(error, "nodir");
	CHECK_CONTAINS(error, "create the directory first");
	CHECK_EQ(count_temps("."), 0);
	CHECK_EQ(count_temps("adir"), 0);
}

/* ---- error cases: not writable, disk full, other filesystem ---- */

static void unwritable_child(void *arg)
{
	char error[COHORT_MSG_MAX] = "";
	struct cohort_publish_opts o = { .why = error, .why_size = sizeof(error) };
	int r;

	(void)arg;
	if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
		SKIP("cannot drop root privileges: %s", strerror(errno));
	r = cohort_publish_data("ro/target", "new\n", 4, &o);
	CHECK_MSG(r == -EACCES, "want -EACCES, got %d (%s)", r, cohort_strerror(r));
	CHECK_CONTAINS(error, "cannot create a temporary file in 'ro'");
	CHECK_CONTAINS(error, "Permission denied");
	CHECK_CONTAINS(error, "make the directory writable");
}

TEST(file_publish_error_not_writable)
{
	char *s;

	/* Let an unprivileged user reach the directory, not write it. */
	CHECK_OK(chmod(test_tmpdir(), 0755));
	write_file("ro/target", "old\n");
	CHECK_OK(chmod("ro/target", 0666));
	CHECK_OK(chmod("ro", 0555));
	in_child(unwritable_child, NULL);
	s = read_file("ro/target");
	CHECK_STREQ(s, "old\n");
	free(s);
	CHECK_EQ(count_temps("ro"), 0);
}

static void readonly_child(void *arg)
{
	char error[COHORT_MSG_MAX] = "";
	struct cohort_publish_opts o = { .why = error, .why_size = sizeof(error) };
	int r;

	(void)arg;
	private_mounts();
	CHECK_MSG(mount("rodir", "rodir", NULL, MS_BIND, NULL) == 0, "bind: %s", strerror(errno));
	CHECK_MSG(mount(NULL, "rodir", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) == 0,
	          "remount ro: %s", strerror(errno));
	r = cohort_publish_data("rodir/target", "new\n", 4, &o);
	CHECK_MSG(r == -EROFS, "want -EROFS, got %d (%s)", r, cohort_strerror(r));
	CHECK_CONTAINS(error, "read-only");
}

TEST(file_publish_error_read_only_fs)
{
	char *s;

	write_file("rodir/target", "old\n");
	in_child(readonly_child, NULL);
	s = read_file("rodir/target");
	CHECK_STREQ(s, "old\n");
	free(s);
}

static void disk_full_child(void *arg)
{
	char error[COHORT_MSG_MAX] = "";
	struct cohort_publish_opts o = { .why = error, .why_size = sizeof(error) };
	size_t big = 1 << 20;
	char *data = malloc(big), *s;
	int r;

	(void)arg;
	private_mounts();
	CHECK_OK(mkdir("small", 0755));
	CHECK_MSG(mount("tmpfs", "small", "tmpfs", 0, "size=256k") == 0, "mount tmpfs: %s",
	          strerror(errno));
	write_file("small/target", "old\n");
	memset(data, 'x', big);
	r = cohort_publish_data("small/target", data, big, &o);
	CHECK_MSG(r == -ENOSPC, "want -ENOSPC, got %d (%s)", r, cohort_strerror(r));
	CHECK_CONTAINS(error, "No space left on device");
	CHECK_CONTAINS(error, "the target was not touched");
	CHECK_CONTAINS(error, "of 1048576 bytes");
	s = read_file("small/target");
	CHECK_STREQ(s, "old\n");
	free(s);
	CHECK_EQ(count_temps("small"), 0);
	/* The space came back: a file that fits is published. */
	CHECK_OK(cohort_publish_data("small/target", data, 64 << 10, &o));
	CHECK_EQ(count_temps("small"), 0);
	free(data);
}

TEST(file_publish_error_disk_full)
{
	in_child(disk_full_child, NULL);
}

TEST(file_publish_error_other_filesystem)
{
	char error[COHORT_MSG_MAX] = "";
	struct cohort_publish_opts o = { .tmp_dir = "/dev/shm", .why = error,
	                                 .why_size = sizeof(error) };
	struct stat a, b;
	char *s;

	CHECK_OK(stat(".", &a));
	if (stat("/dev/shm", &b) < 0 || a.st_dev == b.st_dev)
		SKIP("/dev/shm is not on another filesystem than %s", test_tmpdir());
	write_file("target", "old\n");
	CHECK_EQ(cohort_publish_data("target", "new\n", 4, &o), -EXDEV);
	CHECK_CONTAINS(error, "not on the filesystem of");
	CHECK_CONTAINS(error, "leave tmp_dir unset");
	s = read_file("target");
	CHECK_STREQ(s, "old\n");
	free(s);
	/* The same directory as a tmp_dir is fine. */
	o.tmp_dir = ".";
	CHECK_OK(cohort_publish_data("target", "new\n", 4, &o));
	s = read_file("target");
	CHECK_STREQ(s, "new\n");
	free(s);
}

static void cross_mount_child(void *arg)
{
	char error[COHORT_MSG_MAX] = "";
	struct cohort_publish_opts o = { .tmp_dir = "b", .why = error, .why_size = sizeof(error) };
	int r;

	(void)arg;
	private_mounts();
	/* b is a second mount of the same filesystem: same device, but the
	 * kernel refuses a rename across the two mounts. */
	CHECK_MSG(mount("bsrc", "b", NULL, MS_BIND, NULL) == 0, "bind: %s", strerror(errno));
	r = cohort_publish_data("a/target", "new\n", 4, &o);
	CHECK_MSG(r == -EXDEV, "want -EXDEV, got %d (%s)", r, cohort_strerror(r));
	CHECK_CONTAINS(error, "different mounts");
	CHECK_CONTAINS(error, "the target was not touched");
	CHECK_EQ(count_temps("b"), 0);
}

TEST(file_publish_error_cross_mount_rename)
{
	char *s;

	write_file("a/target", "old\n");
	CHECK_OK(mkdir("b", 0755));
	CHECK_OK(mkdir("bsrc", 0755));
	in_child(cross_mount_child, NULL);
	s = read_file("a/target");
	CHECK_STREQ(s, "old\n");
	free(s);
	CHECK_EQ(count_temps("bsrc"), 0);
}

/* ---- cleaning dead writers' temporary files ---- */

static int ready_pipe[2];

static void open_and_hang(void *arg)
{
	struct cohort_publish pub;

	(void)arg;
	if (cohort_publish_open(&pub, "target", NULL) < 0 ||
	    cohort_publish_write(&pub, "partial", 7) < 0)
		_exit(2);
	if (write(ready_pipe[1], "r", 1) != 1)
		_exit(2);
	for (;;)
		pause();
}

TEST(file_publish_clean_only_dead_writers)
{
	unsigned removed = 99;
	char c;
	pid_t pid;
	int st;

	write_file("target", "old\n");
	write_file(".keep.cohort-tmp-notours", "x");       /* not a temp name */
	CHECK_OK(pipe(ready_pipe));
	pid = helper_spawn(open_and_hang, NULL);
	CHECK_EQ(read(ready_pipe[0], &c, 1), 1);
	CHECK_EQ(count_temps("."), 1);
	/* A live writer's file stays. */
	CHECK_OK(cohort_publish_clean(".", &removed));
	CHECK_EQ(removed, 0);
	CHECK_EQ(count_temps("."), 1);
	kill(pid, SIGKILL);
	st = helper_wait(pid, 10000);
	CHECK(st != -1 && WIFSIGNALED(st));
	/* A dead one's goes. */
	CHECK_EQ(count_temps("."), 1);
	CHECK_OK(cohort_publish_clean(".", &removed));
	CHECK_EQ(removed, 1);
	CHECK_EQ(count_temps("."), 0);
	CHECK(access(".keep.cohort-tmp-notours", F_OK) == 0);
	CHECK(access("target", F_OK) == 0);
	CHECK_EQ(cohort_publish_clean("nodir", &removed), -ENOENT);
}

/* As an unprivileged user: a dead writer's read-only temporary file. */
static void readonly_temp_child(void *arg)
{
	struct cohort_publish_opts o = { .mode = 0444 };
	unsigned removed = 0;
	pid_t pid;
	char c;

	(void)arg;
	if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
		SKIP("cannot drop root privileges: %s", strerror(errno));
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct cohort_publish pub;

		if (cohort_publish_open(&pub, "w/target", &o) < 0 || write(ready_pipe[1], "r", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	CHECK_EQ(read(ready_pipe[0], &c, 1), 1);
	CHECK_OK(cohort_publish_clean("w", &removed));
	CHECK_EQ(removed, 0);
	kill(pid, SIGKILL);
	CHECK(helper_wait(pid, 10000) != -1);
	CHECK_EQ(count_temps("w"), 1);
	CHECK_OK(cohort_publish_clean("w", &removed));
	CHECK_EQ(removed, 1);
	CHECK_EQ(count_temps("w"), 0);
}

TEST(file_publish_clean_read_only_temp)
{
	CHECK_OK(chmod(test_tmpdir(), 0755));
	CHECK_OK(mkdir("w", 0777));
	CHECK_OK(chmod("w", 0777));
	CHECK_OK(pipe(ready_pipe));
	in_child(readonly_temp_child, NULL);
}

/* ---- kills at random points ---- */

struct shared_counts {
	volatile int stop;
	volatile unsigned long reads, torn, missing;
	volatile unsigned long err;
};

static struct shared_counts *shared_map(void)
{
	void *p = mmap(NULL, sizeof(struct shared_counts), PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	memset(p, 0, sizeof(struct shared_counts));
	return p;
}

static struct shared_counts *counts;

static void reader_loop(void *arg)
{
	unsigned char *buf = malloc(REC_MAX + 1);

	(void)arg;
	while (!counts->stop) {
		ssize_t n = slurp_record("target", buf);

		if (n < 0) {
			__atomic_add_fetch(&counts->missing, 1, __ATOMIC_RELAXED);
			continue;
		}
		__atomic_add_fetch(&counts->reads, 1, __ATOMIC_RELAXED);
		if (!record_ok(buf, (size_t)n))
			__atomic_add_fetch(&counts->torn, 1, __ATOMIC_RELAXED);
	}
	free(buf);
}

static void writer_loop(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	struct cohort_publish_opts o = { .flags = seed & 1 ? 0 : COHORT_PUBLISH_NOSYNC };
	unsigned char *buf = malloc(REC_MAX);

	for (uint32_t seq = seed;; seq++) {
		size_t n = make_record(buf, seq, (seq * 7919u) % (REC_MAX - REC_HDR));

		if (cohort_publish_data("target", buf, n, &o) < 0)
			_exit(2);
	}
}

static unsigned rand_below(unsigned *state, unsigned n)
{
	*state = *state * 1103515245u + 12345u;
	return (*state >> 8) % n;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

TEST_TIMEOUT(file_publish_kill_writers, 600)
{
	unsigned kills = test_stress() ? 1000 : 40, seed = (unsigned)getpid(), removed = 0;
	unsigned char *buf = malloc(REC_MAX + 1), *first = malloc(REC_MAX);
	pid_t readers[2];
	ssize_t n;

	counts = shared_map();
	CHECK_OK(cohort_publish_data("target", first, make_record(first, 1, 1000), NULL));
	for (int i = 0; i < 2; i++)
		readers[i] = helper_spawn(reader_loop, NULL);
	for (unsigned k = 0; k < kills; k++) {
		pid_t w = helper_spawn(writer_loop, (void *)(uintptr_t)(k * 1000003u + 7));
		int st;

		sleep_us(200 + rand_below(&seed, 6000));
		kill(w, SIGKILL);
		st = helper_wait(w, 10000);
		CHECK_MSG(st != -1, "writer %d did not die", (int)w);
		CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		          "writer %u ended by itself (status 0x%x): a publish failed", k, st);
		n = slurp_record("target", buf);
		CHECK_MSG(n >= 0 && record_ok(buf, (size_t)n), "after kill %u the target is torn (%zd bytes)", k, n);
	}
	counts->stop = 1;
	for (int i = 0; i < 2; i++)
		CHECK(helper_wait(readers[i], 10000) == 0);
	printf("%u kills, %lu reads, %lu torn, %lu missing\n", kills, counts->reads, counts->torn,
	       counts->missing);
	CHECK_MSG(counts->reads > 0, "readers read nothing");
	CHECK_MSG(counts->torn == 0, "%lu of %lu reads saw a torn file", counts->torn, counts->reads);
	CHECK_MSG(counts->missing == 0, "%lu reads found no target at all", counts->missing);
	/* Kills that landed mid-publish left temporary files: clean them. */
	unsigned left = count_temps(".");
	CHECK_OK(cohort_publish_clean(".", &removed));
	printf("%u temporary files left by killed writers, %u removed\n", left, removed);
	CHECK_MSG(left > 0, "no kill landed inside a publish: the test exercised nothing");
	CHECK_EQ(removed, left);
	CHECK_EQ(count_temps("."), 0);
	free(buf);
	free(first);
}

/* ---- file locks ---- */

static void lock_and_hang(void *arg)
{
	struct cohort_flock lk;

	(void)arg;
	if (cohort_flock_open(&lk, "shared.dat", 0) < 0 || cohort_flock_lock(&lk) < 0)
		_exit(2);
	if (write(ready_pipe[1], "r", 1) != 1)
		_exit(2);
	for (;;)
		pause();
}

TEST(file_flock_timeout_names_holder)
{
	struct cohort_flock lk;
	pid_t holder = 12345, pid, who;
	char c;
	int st;

	CHECK_OK(cohort_flock_open(&lk, "shared.dat", 0));
	CHECK_EQ(cohort_flock_holder("shared.dat", &who), 0);
	CHECK_EQ(who, 0);
	CHECK_OK(pipe(ready_pipe));
	pid = helper_spawn(lock_and_hang, NULL);
	CHECK_EQ(read(ready_pipe[0], &c, 1), 1);
	CHECK_EQ(cohort_flock_timedlock(&lk, 0, &holder), COHORT_ETIMEDOUT);
	CHECK_EQ(holder, pid);
	holder = 0;
	CHECK_EQ(cohort_flock_timedlock(&lk, 150, &holder), COHORT_ETIMEDOUT);
	CHECK_EQ(holder, pid);
	CHECK_EQ(cohort_flock_holder("shared.dat", &who), 1);
	CHECK_EQ(who, pid);
	CHECK_EQ(cohort_flock_unlock(&lk), -EPERM);
	/* The holder dies: the kernel releases its lock. */
	kill(pid, SIGKILL);
	st = helper_wait(pid, 10000);
	CHECK(st != -1);
	CHECK_OK(cohort_flock_timedlock(&lk, 5000, &holder));
	CHECK_EQ(cohort_flock_holder("shared.dat", &who), 1);
	CHECK_EQ(who, getpid());
	CHECK_EQ(cohort_flock_timedlock(&lk, 0, NULL), -EDEADLK);
	CHECK_OK(cohort_flock_unlock(&lk));
	CHECK_EQ(cohort_flock_holder("shared.dat", &who), 0);
	cohort_flock_close(&lk);
	cohort_flock_close(NULL);
	CHECK_EQ(cohort_flock_open(&lk, "nodir/x", 0), -ENOENT);
}

TEST(file_flock_excludes_within_one_process)
{
	struct cohort_flock a, b;
	pid_t holder = 0;

	CHECK_OK(cohort_flock_open(&a, "f", 0));
	CHECK_OK(cohort_flock_open(&b, "f", 0));
	CHECK_OK(cohort_flock_lock(&a));
	CHECK_EQ(cohort_flock_timedlock(&b, 20, &holder), COHORT_ETIMEDOUT);
	CHECK_EQ(holder, getpid());
	cohort_flock_close(&a);          /* closing releases */
	CHECK_OK(cohort_flock_timedlock(&b, 0, NULL));
	cohort_flock_close(&b);
}

/* Increment a counter in place, under the lock, with a slow read-modify-write. */
static void increment_loop(void *arg)
{
	unsigned times = (unsigned)(uintptr_t)arg;
	struct cohort_flock lk;

	if (cohort_flock_open(&lk, "counter", 0) < 0)
		_exit(2);
	for (unsigned i = 0; i < times; i++) {
		uint64_t v = 0;

		if (cohort_flock_lock(&lk) < 0)
			_exit(2);
		if (pread(lk.fd, &v, sizeof(v), 0) < 0)
			_exit(2);
		sched_yield();
		v++;
		if (pwrite(lk.fd, &v, sizeof(v), 0) != sizeof(v))
			_exit(2);
		cohort_flock_unlock(&lk);
	}
	cohort_flock_close(&lk);
}

TEST(file_flock_no_lost_updates)
{
	pid_t w[4];
	uint64_t v = 0;
	int fd;

	for (int i = 0; i < 4; i++)
		w[i] = helper_spawn(increment_loop, (void *)(uintptr_t)500);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(helper_wait(w[i], 20000), 0);
	fd = open("counter", O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, &v, sizeof(v), 0), (ssize_t)sizeof(v));
	close(fd);
	CHECK_EQ_U64(v, 2000);
}

/* The pattern for whole-file updates: lock a separate file, read, publish. */
static void read_modify_publish(void *arg)
{
	unsigned times = (unsigned)(uintptr_t)arg;
	struct cohort_publish_opts o = { .flags = COHORT_PUBLISH_NOSYNC };
	struct cohort_flock lk;

	if (cohort_flock_open(&lk, "count.lock", 0) < 0)
		_exit(2);
	for (unsigned i = 0; i < times; i++) {
		char text[32];
		char *old;
		unsigned long v;

		if (cohort_flock_lock(&lk) < 0)
			_exit(2);
		old = read_file("count.txt");
		if (!old || sscanf(old, "%lu", &v) != 1)
			_exit(3);
		free(old);
		snprintf(text, sizeof(text), "%lu\n", v + 1);
		if (cohort_publish_data("count.txt", text, strlen(text), &o) < 0)
			_exit(2);
		cohort_flock_unlock(&lk);
	}
	cohort_flock_close(&lk);
}

TEST(file_flock_read_modify_publish)
{
	pid_t w[4];
	char *s;

	write_file("count.txt", "0\n");
	for (int i = 0; i < 4; i++)
		w[i] = helper_spawn(read_modify_publish, (void *)(uintptr_t)200);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(helper_wait(w[i], 20000), 0);
	s = read_file("count.txt");
	CHECK_STREQ(s, "800\n");
	free(s);
	CHECK_EQ(count_temps("."), 0);
}

TEST_TIMEOUT(file_flock_kill_holders, 600)
{
	unsigned kills = test_stress() ? 1000 : 40, seed = (unsigned)getpid() * 3u, held = 0;
	struct cohort_flock lk;

	CHECK_OK(cohort_flock_open(&lk, "counter", 0));
	for (unsigned k = 0; k < kills; k++) {
		pid_t w = helper_spawn(increment_loop, (void *)(uintptr_t)~0u), who = 0;
		int st, r;

		sleep_us(100 + rand_below(&seed, 3000));
		/* Stopped, the worker cannot change hands: know whether it dies holding. */
		kill(w, SIGSTOP);
		CHECK_EQ(waitpid(w, &st, WUNTRACED), w);
		r = cohort_flock_holder("counter", &who);
		CHECK_OK(r);
		if (r == 1 && who == w)
			held++;
		kill(w, SIGKILL);
		st = helper_wait(w, 10000);
		CHECK_MSG(st != -1 && WIFSIGNALED(st), "worker %u: status 0x%x", k, st);
		pid_t holder = 0;
		r = cohort_flock_timedlock(&lk, 5000, &holder);
		CHECK_MSG(r == 0, "after kill %u the lock is still held (by pid %d): %s", k,
		          (int)holder, cohort_strerror(r));
		CHECK_OK(cohort_flock_unlock(&lk));
	}
	printf("%u kills, %u while holding the lock\n", kills, held);
	CHECK_MSG(held > 0, "no worker died holding the lock: the test exercised nothing");
	cohort_flock_close(&lk);
}

/* ---- per-rank output ---- */

struct late_part { unsigned rank; unsigned delay_ms; };

static void publish_late(void *arg)
{
	const struct late_part *p = arg;
	char text[32];

	sleep_us(p->delay_ms * 1000);
	snprintf(text, sizeof(text), "rank %u\n", p->rank);
	if (cohort_rank_publish("out", p->rank, text, strlen(text), NULL) < 0)
		_exit(2);
}

TEST(file_rank_gather_in_order)
{
	char error[COHORT_MSG_MAX] = "", path[64];
	struct cohort_gather_opts g = { .publish = { .why = error, .why_size = sizeof(error) } };
	struct late_part late = { 2, 150 };
	uint64_t bytes = 0;
	char *s;
	pid_t pid;

	CHECK_OK(cohort_rank_path("out", 7, path, sizeof(path)));
	CHECK_STREQ(path, "out.rank-7");
	CHECK_EQ(cohort_rank_path("out", 7, path, 5), -ENAMETOOLONG);

	/* Ranks publish out of order; rank 2 is missing at first. */
	for (int k = 4; k >= 0; k--) {
		char text[32];

		if (k == 2)
			continue;
		snprintf(text, sizeof(text), "rank %d\n", k);
		CHECK_OK(cohort_rank_publish("out", (unsigned)k, text, strlen(text), NULL));
	}
	CHECK_EQ(cohort_rank_gather("out", 5, &g, &bytes), COHORT_ETIMEDOUT);
	CHECK_CONTAINS(error, "1 of 5 parts of 'out' still missing after 0 ms: rank 2");
	CHECK(access("out", F_OK) < 0);
	CHECK_EQ(count_temps("."), 0);

	/* With a wait, the late rank makes it. */
	pid = helper_spawn(publish_late, &late);
	g.timeout_ms = 10000;
	g.remove_parts = 1;
	CHECK_OK(cohort_rank_gather("out", 5, &g, &bytes));
	CHECK_EQ(helper_wait(pid, 10000), 0);
	s = read_file("out");
	CHECK_STREQ(s, "rank 0\nrank 1\nrank 2\nrank 3\nrank 4\n");
	CHECK_EQ_U64(bytes, strlen(s));
	free(s);
	for (unsigned k = 0; k < 5; k++) {
		CHECK_OK(cohort_rank_path("out", k, path, sizeof(path)));
		CHECK_MSG(access(path, F_OK) < 0, "%s not removed", path);
	}
	CHECK_EQ(count_temps("."), 0);
	CHECK_EQ(cohort_rank_gather("out", 0, &g, NULL), -EINVAL);

	/* Many missing: the list is cut short. */
	g.timeout_ms = 0;
	CHECK_EQ(cohort_rank_gather("none", 40, &g, NULL), COHORT_ETIMEDOUT);
	CHECK_CONTAINS(error, "40 of 40 parts");
	CHECK_CONTAINS(error, "rank 0, 1, 2");
	CHECK_CONTAINS(error, ", ...");
}

/* ---- the example ---- */

/* Parse "<label> N writes, N reads, N torn" from the example's output. */
static void example_line(const char *out, const char *label, unsigned long *reads,
                         unsigned long *torn)
{
	const char *p = strstr(out, label);
	unsigned long writes;

	CHECK_MSG(p != NULL, "no '%s' line in:\n%s", label, out);
	CHECK_MSG(sscanf(p + strlen(label), " %lu writes, %lu reads, %lu torn", &writes, reads,
	                 torn) == 3, "cannot parse the '%s' line in:\n%s", label, out);
	CHECK_EQ(writes, 600);
}

TEST_TIMEOUT(file_example_handoff, 120)
{
	unsigned long naive_reads, naive_torn, cohort_reads, cohort_torn;
	struct cmd_result r;
	char exe[1024];

	snprintf(exe, sizeof(exe), "%s/examples/file-handoff/file-handoff", test_build_dir());
	if (access(exe, X_OK) < 0)
		SKIP("%s not built (make check builds it)", exe);
	cmd_run(&r, "'%s' --rounds 300 --dir . --no-sync", exe);
	CHECK_MSG(r.status == 0, "exit %d\n%s%s", r.status, r.out, r.err);
	example_line(r.out, "naive:", &naive_reads, &naive_torn);
	example_line(r.out, "cohort:", &cohort_reads, &cohort_torn);
	CHECK_MSG(naive_torn > 0, "the naive way showed no torn read:\n%s", r.out);
	CHECK_MSG(cohort_reads > 0, "the cohort way's readers read nothing:\n%s", r.out);
	CHECK_MSG(cohort_torn == 0, "the cohort way tore:\n%s", r.out);
	CHECK_EQ(count_temps("."), 0);
	CHECK(access("handoff.dat", F_OK) < 0);
	cmd_free(&r);

	cmd_run(&r, "'%s' --rounds 0", exe);
	CHECK_EQ(r.status, 2);
	CHECK_CONTAINS(r.err, "--rounds '0': expected a whole number from 1");
	cmd_free(&r);
}

/* ---- cohort gather ---- */

TEST(file_cli_gather)
{
	struct cmd_result r;
	const char *b = test_build_dir();
	char *s;

	for (unsigned k = 0; k < 3; k++) {
		char text[32];

		snprintf(text, sizeof(text), "line %u\n", k);
		CHECK_OK(cohort_rank_publish("res.csv", k, text, strlen(text), NULL));
	}
	/* A temporary file of a killed writer lies beside the parts. */
	write_file(".res.csv.cohort-tmp-00000000deadbeef", "half");

	cmd_run(&r, "%s/cohort gather --ranks 4 res.csv", b);
	CHECK_EQ(r.status, 1);
	CHECK_CONTAINS(r.err, "1 of 4 parts of 'res.csv' still missing after 0 ms: rank 3");
	CHECK(access("res.csv", F_OK) < 0);
	cmd_free(&r);

	cmd_run(&r, "SLURM_NTASKS=3 %s/cohort gather --remove res.csv", b);
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	CHECK_CONTAINS(r.out, "gathered 3 parts into res.csv (21 B); parts removed");
	CHECK_CONTAINS(r.out, "removed 1 temporary file left by killed writers");
	cmd_free(&r);
	s = read_file("res.csv");
	CHECK_STREQ(s, "line 0\nline 1\nline 2\n");
	free(s);
	CHECK(access("res.csv.rank-0", F_OK) < 0);
	CHECK_EQ(count_temps("."), 0);

	CHECK_OK(cohort_rank_publish("res.csv", 0, "a", 1, NULL));
	cmd_run(&r, "%s/cohort gather -n 1 --json --no-sync res.csv", b);
	CHECK_EQ(r.status, 0);
	CHECK_CONTAINS(r.out, "\"gathered\": true");
	CHECK_CONTAINS(r.out, "\"bytes\": 1");
	cmd_free(&r);

	cmd_run(&r, "env -u SLURM_NTASKS %s/cohort gather res.csv", b);
	CHECK_EQ(r.status, 2);
	CHECK_CONTAINS(r.err, "give --ranks N");
	cmd_free(&r);
	cmd_run(&r, "%s/cohort gather -n 2 --timeout 1x res.csv", b);
	CHECK_EQ(r.status, 2);
	CHECK_CONTAINS(r.err, "invalid time '1x' for --timeout");
	cmd_free(&r);
	/* The parts are there but the whole cannot be published. */
	CHECK_OK(mkdir("adir", 0755));
	CHECK_OK(cohort_rank_publish("adir", 0, "a", 1, NULL));
	cmd_run(&r, "%s/cohort gather -n 1 adir", b);
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "cannot publish to 'adir': it is a directory");
	cmd_free(&r);
}
