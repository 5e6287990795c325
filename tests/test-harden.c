/*
 * test-harden.c - the supervisor under resource limits: out of file
 * descriptors, out of memory, a full disk for its recording, and thousands
 * of short-lived children with no descriptor or zombie left behind; other
 * users' files, and a process of the job that rewrites a live queue or
 * arena.
 */
#include "harness.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define COHORT "%s/cohort"

/*
 * Start `cohort run ARGS -- sh -c SCRIPT` with stdout and stderr in
 * sup.out and sup.err of the test directory. Returns the supervisor's pid.
 */
static pid_t start_run(const char *args, const char *script)
{
	char cohort[1024], cmd[4096];
	pid_t pid;

	snprintf(cohort, sizeof(cohort), "%s/cohort", test_build_dir());
	snprintf(cmd, sizeof(cmd), "exec '%s' run %s -- sh -c '%s' >sup.out 2>sup.err", cohort, args,
	         script);
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	CHECK(pid > 0);
	return pid;
}

/* Wait (at most timeout_ms) for a file the workers create. */
static bool wait_file(const char *path, unsigned timeout_ms)
{
	for (unsigned t = 0; t < timeout_ms; t += 20) {
		if (access(path, F_OK) == 0)
			return true;
		usleep(20000);
	}
	return false;
}

static unsigned count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * The descriptors pid holds for good: the fewest of ten looks 10 ms apart.
 * A supervisor sampling every 20 ms has a /proc file open for a moment at
 * any instant; a leaked descriptor stays in every look.
 */
static unsigned steady_fds(pid_t pid)
{
	unsigned least = UINT_MAX;

	for (int i = 0; i < 10; i++) {
		unsigned n = count_fds(pid);

		if (n < least)
			least = n;
		usleep(10000);
	}
	return least == UINT_MAX ? 0 : least;
}

/* Children of pid that are zombies (exited, not reaped). */
static unsigned count_zombies(pid_t parent)
{
	struct dirent *e;
	unsigned n = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char path[300], buf[512], *p;
		int ppid;
		char state;
		FILE *f;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 1, " %c %d", &state, &ppid) == 2 && state == 'Z' && ppid == parent)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Run to the end; returns the exit code (128+signal for a signal), -1 on timeout. */
static int finish(pid_t pid, unsigned timeout_ms)
{
	int st = helper_wait(pid, timeout_ms);

	if (st == -1) {
		kill(pid, SIGKILL);
		helper_wait(pid, 5000);
		return -1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST_TIMEOUT(harden_run_survives_emfile, 60)
{
	struct rlimit rl = { 3, 3 };
	char *out, *err;
	pid_t sup;
	int st;

#if defined(__SANITIZE_ADDRESS__)
	/*
	 * LeakSanitizer opens /proc/PID/task at exit, which the limit below
	 * forbids, and then fails the run; leaks are checked by every other run.
	 */
	setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
#endif
	/* The workers start, then the supervisor may open no new descriptor at all. */
	sup = start_run("-n 2 -i 0.05 -o rec.ndjson", "touch started.$COHORT_RANK; sleep 1.5");
	CHECK(wait_file("started.0", 20000) && wait_file("started.1", 20000));
	CHECK_OK(prlimit(sup, RLIMIT_NOFILE, &rl, NULL));
	st = finish(sup, 30000);
	out = read_file("sup.out");
	err = read_file("sup.err");
	CHECK_MSG(st == 0, "exit %d:\n%s", st, err);
	CHECK_CONTAINS(err, "2 exited 0");
	/* What it could not do, it says, with the reason. */
	CHECK_CONTAINS(err, "Too many open files");
	free(out);
	free(err);
}

TEST_TIMEOUT(harden_run_survives_enomem, 60)
{
	struct rlimit rl;
	char path[64], *status, *vm, *out, *err;
	pid_t sup;

#if defined(__SANITIZE_THREAD__)
	SKIP("ThreadSanitizer aborts when a mapping of its own is refused, and has no option to return NULL instead");
#endif
#if defined(__SANITIZE_ADDRESS__)
	/*
	 * AddressSanitizer's allocator aborts when refused memory unless told
	 * to return NULL as malloc does; LeakSanitizer needs memory at exit.
	 */
	setenv("ASAN_OPTIONS", "allocator_may_return_null=1:detect_leaks=0", 1);
#endif
	sup = start_run("-n 2 -i 0.05 -o rec.ndjson", "touch started.$COHORT_RANK; sleep 1.5");
	CHECK(wait_file("started.0", 20000) && wait_file("started.1", 20000));
	/* No more address space than it has now: every new mapping fails. */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)sup);
	status = read_file(path);
	CHECK(status != NULL);
	vm = strstr(status, "VmSize:");
	CHECK(vm != NULL);
	rl.rlim_cur = rl.rlim_max = strtoull(vm + 7, NULL, 10) * 1024;
	free(status);
	CHECK_OK(prlimit(sup, RLIMIT_AS, &rl, NULL));
	CHECK_EQ(finish(sup, 30000), 0);
	out = read_file("sup.out");
	err = read_file("sup.err");
	CHECK_CONTAINS(err, "2 exited 0");
	/* Whichever allocation failed first (the recording, or reading it back), it is named. */
	CHECK_MSG(strstr(err, "out of memory") || strstr(err, "Cannot allocate memory"), "%s", err);
	free(out);
	free(err);
}

TEST_TIMEOUT(harden_run_recording_disk_full_keeps_supervising, 60)
{
	struct cmd_result r;

	if (geteuid() != 0)
		SKIP("mounting a small tmpfs in a private mount namespace needs root");
	/*
	 * A 16 KiB disk fills within a second; rank 1 then grows past its
	 * budget, and must still be stopped by cohort although nothing is
	 * recorded any more.
	 */
	cmd_run(&r, "mkdir -p disk && unshare -m sh -c 'mount -t tmpfs -o size=16k tmpfs disk && "
	        COHORT " run -n 2 -i 0.02 --enforce watch --grace 1 -m 100M -o disk/rec.ndjson -- "
	        "%s/examples/faults/grow --size 300 --rank 1'",
	        test_build_dir(), test_build_dir());
	CHECK_CONTAINS(r.err, "stopped: No space left on device; supervision goes on without it");
	CHECK_CONTAINS(r.err, "above its 100.0 MiB budget: stopped by cohort");
	CHECK_CONTAINS(r.err, "(stopped early)");
	CHECK_EQ(r.status, 128 + SIGTERM);
	/* The message comes once, not once per sample. */
	CHECK_MSG(strstr(strstr(r.err, "No space left") + 1, "No space left") == NULL, "%s", r.err);
	cmd_free(&r);
}

/*
 * Each of 2 workers starts `spawns` short-lived children (10,000 in all
 * under make stress), half of them
 * orphaned at once (they are reparented to the supervisor, a subreaper),
 * then waits. The supervisor must end with the descriptors it had and no
 * zombie.
 */
TEST_TIMEOUT(harden_run_many_spawns_no_leak, 300)
{
	unsigned spawns = test_stress() ? 5000 : 200, fds_before, fds_after, zombies = 0;
	char script[512], *out;
	pid_t sup;

	/*
	 * The supervisor keeps a statm file open for each process it watches,
	 * so both counts are taken with the same processes alive: each worker's
	 * shell and one sleep (the first for 3 s, counted from 0.5 s after
	 * ready; the last after done).
	 */
	snprintf(script, sizeof(script),
	         "touch ready.$COHORT_RANK; sleep 3; i=0; while [ $i -lt %u ]; do /bin/true; (/bin/true &); "
	         "i=$((i + 2)); done; touch done.$COHORT_RANK; sleep 2", spawns);
	sup = start_run("-n 2 -i 0.02 -o rec.ndjson", script);
	CHECK(wait_file("ready.0", 20000) && wait_file("ready.1", 20000));
	usleep(500000);
	fds_before = steady_fds(sup);
	CHECK(fds_before > 0);
	CHECK(wait_file("done.0", 240000) && wait_file("done.1", 20000));
	/* The supervisor reaps on its next tick (0.02 s); allow it a second. */
	for (int t = 0; t < 50; t++) {
		zombies = count_zombies(sup);
		if (zombies == 0)
			break;
		usleep(20000);
	}
	fds_after = steady_fds(sup);
	CHECK_MSG(zombies == 0, "%u zombie children of the supervisor after %u spawns", zombies, spawns);
	CHECK_MSG(fds_after <= fds_before, "the supervisor held %u descriptors, then %u after %u spawns",
	          fds_before, fds_after, spawns);
	CHECK_EQ(finish(sup, 30000), 0);
	out = read_file("sup.err");
	CHECK_CONTAINS(out, "2 exited 0");
	free(out);
}

/* ---- shared segments and other users ---- */

#define OTHER_UID 65534   /* nobody */

static void seg_opts(struct cohort_seg_options *o, char *why, size_t why_size)
{
	memset(o, 0, sizeof(*o));
	o->dir = test_tmpdir();
	o->job = "harden";
	o->no_check = 1;
	o->why = why;
	o->why_size = why_size;
	why[0] = '\0';
}

/* As OTHER_UID: open the segment; exit 0 when refused with EACCES. */
static void open_as_other(void *arg)
{
	struct cohort_seg_options o;
	struct cohort_seg *s;
	char why[256];

	(void)arg;
	if (setgid(OTHER_UID) < 0 || setuid(OTHER_UID) < 0)
		_exit(10);
	seg_opts(&o, why, sizeof(why));
	/* The segment's name carries its creator's uid: ask for that file. */
	o.dir = test_tmpdir();
	{
		char path[COHORT_PATH_MAX];
		int fd;

		snprintf(path, sizeof(path), "%s/cohort.0.harden.grid", test_tmpdir());
		fd = open(path, O_RDWR | O_NOFOLLOW);
		if (fd >= 0)
			_exit(11);   /* a 0600 file of root's opened by nobody */
		if (errno != EACCES)
			_exit(12);
	}
	_exit(cohort_seg_open("grid", &o, &s) < 0 ? 0 : 13);
}

TEST(harden_seg_of_another_user_is_refused)
{
	struct cohort_seg_options o;
	struct cohort_seg *s;
	struct stat st;
	char why[256], path[COHORT_PATH_MAX];
	pid_t pid;

	if (geteuid() != 0)
		SKIP("a second real user needs root (setuid)");
	seg_opts(&o, why, sizeof(why));
	CHECK_OK(cohort_seg_create("grid", 8192, &o, &s));
	CHECK_OK(cohort_seg_close(s));
	CHECK(cohort_seg_path("grid", &o, path, sizeof(path)) > 0);
	CHECK_OK(stat(path, &st));
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(st.st_uid, 0);

	/* The test directory must be reachable by the other user. */
	CHECK_OK(chmod(test_tmpdir(), 0755));
	pid = helper_spawn(open_as_other, NULL);
	CHECK_EQ(helper_wait(pid, 10000), 0);

	/* A valid segment under this user's name, but the file belongs to another user. */
	CHECK_OK(chown(path, OTHER_UID, OTHER_UID));
	CHECK_EQ(cohort_seg_open("grid", &o, &s), COHORT_EBADSEG);
	CHECK_CONTAINS(why, "owned by another user");
	/* ... and its creation under that name is refused: O_EXCL, never reused. */
	CHECK_EQ(cohort_seg_create("grid", 8192, &o, &s), -EEXIST);
	CHECK_OK(stat(path, &st));
	CHECK_EQ(st.st_uid, OTHER_UID);
}

/* A worker that could not be started is a finding, never "every worker ended well". */
TEST(harden_run_worker_never_started_is_a_finding)
{
	struct cmd_result r;

	cmd_run(&r, COHORT " run -n 2 -o rec.ndjson -- /nonexistent/worker", test_build_dir());
	CHECK_EQ(r.status, 127);
	CHECK_CONTAINS(r.err, "rank 0 could not be started at 0.0 s: cannot run '/nonexistent/worker'");
	CHECK(strstr(r.err, "every worker ended well") == NULL);
	cmd_free(&r);
	/* The same from the recording. */
	cmd_run(&r, COHORT " report rec.ndjson", test_build_dir());
	CHECK_CONTAINS(r.out, "spawn_failed, rank 0: rank 0 could not be started");
	cmd_free(&r);
	/* And when the supervisor is out of descriptors before it can start anyone. */
	cmd_run(&r, "ulimit -n 6; exec " COHORT " run -n 2 -o rec2.ndjson -- sleep 0.2", test_build_dir());
	if (strstr(r.err, "cannot run 'sleep'")) {
		/* The finding, unless reading the recording back ran out of descriptors too. */
		CHECK_CONTAINS(r.err, "Too many open files");
		CHECK_MSG(strstr(r.err, "could not be started") ||
		          strstr(r.err, "cannot read back the recording"), "%s", r.err);
	}
	CHECK(strstr(r.err, "every worker ended well") == NULL || strstr(r.err, "2 exited 0"));
	cmd_free(&r);
}

/* A recording that cannot be read is named as such, not taken for an empty or short one. */
TEST(harden_recording_read_error_is_named)
{
	struct cohort_recording *rec = NULL;
	char err[COHORT_MSG_MAX];
	int r;

	CHECK_OK(mkdir("adir", 0700));
	/* fopen() of a directory succeeds; every read then fails with EISDIR. */
	r = cohort_recording_load("adir", &rec, err, sizeof(err));
	CHECK_EQ(r, -EISDIR);
	CHECK(rec == NULL);
	CHECK_CONTAINS(err, "cannot read adir: Is a directory");
}

/* ---- hostile shared state: a process of the job rewrites a live queue or arena ---- */

/*
 * A shared region of size bytes (whole pages) between two PROT_NONE pages,
 * so that a read or write one byte outside it is a SIGSEGV at once.
 */
static unsigned char *guarded_region(size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *p = mmap(NULL, size + 2 * page, PROT_READ | PROT_WRITE,
	                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	CHECK_OK(mprotect(p, page, PROT_NONE));
	CHECK_OK(mprotect(p + page + size, page, PROT_NONE));
	return p + page;
}

/* What the victim, another process of the job, got back. */
struct victim {
	cohort_queue_t *q;
	cohort_arena_t *a;
	size_t alloc_size;
	int send, recv, alloc, check, free_, stats;
	cohort_off_t off;
};

/* The victim: one send and one recv on the queue it attached before the rewrite. */
static void queue_victim(void *arg)
{
	struct victim *v = arg;
	unsigned char buf[256];

	v->send = cohort_queue_send(v->q, "hello", 5, 0);
	v->recv = cohort_queue_recv(v->q, buf, sizeof(buf), 0);
	_exit(0);
}

/* Run the victim in its own process; it must end normally, not by SIGFPE or SIGSEGV. */
static void run_victim(void (*fn)(void *), struct victim *v)
{
	pid_t pid = helper_spawn(fn, v);
	int st = helper_wait(pid, 20000);

	CHECK_MSG(st == 0, "the victim process ended with wait status %#x (signal %d)", st,
	          WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

#define QREGION (4 * 4096)

/* A rewritten capacity of 0 used to kill every other user of the queue with SIGFPE. */
TEST(harden_queue_capacity_rewritten_to_zero)
{
	unsigned char *mem = guarded_region(QREGION), buf[64];
	struct victim *v = mmap(NULL, sizeof(*v), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cohort_queue_t *q;
	uint64_t *cap, saved;

	CHECK(v != MAP_FAILED);
	CHECK_OK(cohort_queue_init(mem, QREGION, &q));
	CHECK_OK(cohort_queue_send(q, "first", 5, 0));
	v->q = q;
	cap = cohort__queue_field(q, "capacity");
	saved = *cap;
	*cap = 0;
	run_victim(queue_victim, v);
	CHECK_EQ(v->send, COHORT_ECORRUPT);
	CHECK_EQ(v->recv, COHORT_ECORRUPT);
	/* A newcomer refuses it at attach. */
	cohort_queue_t *q2 = NULL;
	CHECK_EQ(cohort_queue_open(mem, QREGION, &q2), COHORT_EBADSEG);
	CHECK(q2 == NULL);
	/* Put back, the queue is whole: the refusal wrote nothing. */
	*cap = saved;
	CHECK_EQ(cohort_queue_recv(q, buf, sizeof(buf), 0), 5);
	CHECK(memcmp(buf, "first", 5) == 0);
	CHECK_OK(cohort_queue_close(q));
}

/*
 * capacity = 2^40 with a tail that indexes just past the region: another
 * process's send used to return 0 after writing outside the region (here,
 * into the guard page). With the header intact, positions that fit no lap
 * of the slots' states are refused, not followed.
 */
TEST(harden_queue_hostile_capacity_and_positions_stay_inside)
{
	unsigned char *mem = guarded_region(QREGION), before[QREGION];
	struct victim *v = mmap(NULL, sizeof(*v), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cohort_queue_t *q;
	uint64_t *cap, *tail, *head, *nslots, ring, n;

	CHECK(v != MAP_FAILED);
	CHECK_OK(cohort_queue_init(mem, QREGION, &q));
	v->q = q;
	cap = cohort__queue_field(q, "capacity");
	tail = cohort__queue_field(q, "tail");
	head = cohort__queue_field(q, "head");
	nslots = cohort__queue_field(q, "nslots");
	CHECK(cap && tail && head && nslots);
	ring = *cap;
	n = *nslots;
	/* 128-byte slots, a power of two of them, inside the region. */
	CHECK_EQ_U64(ring, n * 128);
	CHECK_LE(ring, QREGION - COHORT_QUEUE_HEADER);
	CHECK_EQ(n & (n - 1), 0);

	/* 1. The attack: a huge capacity, positions at the region's end. */
	*cap = 1ULL << 40;
	*tail = *head = n;
	memcpy(before, mem, QREGION);
	run_victim(queue_victim, v);
	CHECK_EQ(v->send, COHORT_ECORRUPT);
	CHECK_EQ(v->recv, COHORT_ECORRUPT);
	CHECK_MSG(memcmp(before + COHORT_QUEUE_HEADER, mem + COHORT_QUEUE_HEADER,
	                 QREGION - COHORT_QUEUE_HEADER) == 0, "the ring was written through");

	/* 2. The header intact, the positions a thousand laps beyond the slots' states. */
	*cap = ring;
	*tail = *head = n * 1000 + n - 4;
	memcpy(before, mem, QREGION);
	run_victim(queue_victim, v);
	CHECK_EQ(v->send, COHORT_ECORRUPT);
	CHECK_EQ(v->recv, COHORT_ECORRUPT);
	CHECK_MSG(memcmp(before + COHORT_QUEUE_HEADER, mem + COHORT_QUEUE_HEADER,
	                 QREGION - COHORT_QUEUE_HEADER) == 0, "the ring was written through");

	/* 3. A head laps ahead of the tail (the send may go in: the tail and its slot agree). */
	*tail = 0;
	*head = 3 * n;
	memcpy(before, mem, QREGION);
	run_victim(queue_victim, v);
	CHECK_EQ(v->recv, COHORT_ECORRUPT);

	/* 4. A tail more than a ring ahead of the head. */
	memcpy(mem, before, QREGION);
	*head = 0;
	*tail = n + 8;
	run_victim(queue_victim, v);
	CHECK_EQ(v->send, COHORT_ECORRUPT);
	CHECK_EQ(v->recv, COHORT_ECORRUPT);

	/* Made consistent again, the queue works. */
	*head = *tail = 0;
	run_victim(queue_victim, v);
	CHECK_EQ(v->send, 0);
	CHECK_EQ(v->recv, 5);
	CHECK_OK(cohort_queue_close(q));
}

#define AREGION (64 * 1024)

static void arena_victim(void *arg)
{
	struct victim *v = arg;
	struct cohort_arena_stats st;
	cohort_off_t off = 0;

	v->alloc = cohort_arena_alloc(v->a, v->alloc_size, &off);
	if (v->alloc == 0) {
		/* What a worker does with what it was given: write all of it. */
		unsigned char *p = cohort_arena_ptr(v->a, off);

		if (p)
			memset(p, 0x5a, v->alloc_size);
	}
	v->check = cohort_arena_check(v->a, v->off);
	v->free_ = cohort_arena_free(v->a, v->off);
	v->stats = cohort_arena_stats(v->a, &st);
	_exit(0);
}

/* A rewritten arena size used to make every other allocator SIGSEGV on the guard page. */
TEST(harden_arena_size_rewritten)
{
	unsigned char *mem = guarded_region(AREGION);
	struct victim *v = mmap(NULL, sizeof(*v), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cohort_arena_t *a, *a2 = NULL;
	uint64_t *size, saved;
	cohort_off_t off;

	CHECK(v != MAP_FAILED);
	CHECK_OK(cohort_arena_init(mem, AREGION, &a));
	CHECK_OK(cohort_arena_alloc(a, 1000, &off));
	v->a = a;
	v->off = off;
	v->alloc_size = 100;
	size = cohort__arena_field(a, "size");
	saved = *size;
	for (int i = 0; i < 3; i++) {
		static const uint64_t sizes[] = { 1ULL << 40, AREGION + 4096, 4096 };

		*size = sizes[i];
		run_victim(arena_victim, v);
		CHECK_EQ(v->alloc, COHORT_ECORRUPT);
		CHECK_EQ(v->check, COHORT_ECORRUPT);
		CHECK_EQ(v->free_, COHORT_ECORRUPT);
		CHECK_EQ(v->stats, COHORT_ECORRUPT);
	}
	*size = 1ULL << 40;
	CHECK_EQ(cohort_arena_open(mem, AREGION, &a2), COHORT_EBADSEG);
	CHECK(a2 == NULL);
	/* Put back: the allocation is still there, whole. */
	*size = saved;
	CHECK_EQ(cohort_arena_check(a, off), 1000);
	CHECK_OK(cohort_arena_close(a));
}

/*
 * A forged first block (the tag computed as src/arena.c does) claiming more
 * than the arena holds, alone or with the size rewritten to match: an
 * alloc(100000) in a 64 KiB arena used to succeed, arena_check vouched for
 * it, and the bytes after the arena were overwritten.
 */
TEST(harden_arena_forged_first_block)
{
	unsigned char *mem = guarded_region(AREGION);
	struct victim *v = mmap(NULL, sizeof(*v), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cohort_arena_t *a;
	uint64_t *size, first = 256, saved_word, forged = 256 * 1024;
	cohort_off_t off;

	CHECK(v != MAP_FAILED);
	CHECK_OK(cohort_arena_init(mem, AREGION, &a));
	v->a = a;
	v->alloc_size = 100000;
	size = cohort__arena_field(a, "size");
	memcpy(&saved_word, mem + first, 8);
	CHECK_EQ_U64(saved_word, cohort__arena_block_word(first, AREGION - first, false));

	/*
	 * 1. The forged block alone: more than the arena is refused by the
	 * size this process attached with, and a fitting size by the chain.
	 */
	uint64_t w = cohort__arena_block_word(first, forged, false);
	memcpy(mem + first, &w, 8);
	v->off = first + 16;
	run_victim(arena_victim, v);
	CHECK_EQ(v->alloc, -EINVAL);
	CHECK_EQ(v->check, COHORT_ECORRUPT);
	CHECK_EQ(v->stats, COHORT_ECORRUPT);
	v->alloc_size = 1000;
	run_victim(arena_victim, v);
	CHECK_EQ(v->alloc, COHORT_ECORRUPT);

	/* 2. With the size rewritten to agree with it. */
	*size = first + forged;
	for (int i = 0; i < 2; i++) {
		v->alloc_size = i ? 100000 : 1000;
		run_victim(arena_victim, v);
		/* More than the arena this process attached: refused before the chain is read. */
		CHECK_EQ(v->alloc, i ? -EINVAL : COHORT_ECORRUPT);
		CHECK_EQ(v->check, COHORT_ECORRUPT);
		CHECK_EQ(v->stats, COHORT_ECORRUPT);
	}

	/* 3. A forged used block inside the arena whose asked-for size would wrap the bounds check. */
	*size = AREGION;
	w = cohort__arena_block_word(first, AREGION - first, true);
	memcpy(mem + first, &w, 8);
	uint64_t usize = UINT64_MAX - 3;
	memcpy(mem + first + 8, &usize, 8);
	CHECK_EQ(cohort_arena_check(a, first + 16), COHORT_ECORRUPT);
	CHECK(cohort_arena_ptr(a, first + 16) == NULL);

	/* Put back, the arena allocates again, inside itself. */
	memcpy(mem + first, &saved_word, 8);
	CHECK_OK(cohort_arena_alloc(a, 1000, &off));
	CHECK_EQ(cohort_arena_check(a, off), 1000);
	CHECK_EQ(cohort_arena_alloc(a, 100000, &off), -EINVAL);
	CHECK_OK(cohort_arena_close(a));
}

/* The segment fuzz target's corpus (live queues and arenas patched in rounds) replays clean. */
TEST_TIMEOUT(harden_shmseg_fuzz_corpus_replays, 120)
{
	struct cmd_result r;

	char dir[1024];
	struct dirent *e;
	int files = 0;
	bool hostile = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/fuzz/corpus/shmseg", test_src_dir());
	d = opendir(dir);
	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		files++;
		hostile |= strncmp(e->d_name, "hostile-", 8) == 0;
	}
	closedir(d);
	CHECK_MSG(hostile, "no hostile-* regression input in %s", dir);
	cmd_run(&r, "%s/fuzz/fuzz-shmseg %s", test_build_dir(), dir);
	CHECK_MSG(r.status == 0, "fuzz-shmseg on its corpus exited %d:\n%s", r.status, r.err);
	CHECK_MSG(atoi(r.out) == files, "fuzz-shmseg replayed %d of %d inputs: %s", atoi(r.out), files, r.out);
	cmd_free(&r);
}

/* ---- planted files: cohort gather in a shared directory ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Temporary publication files in dir. */
static unsigned count_temporaries(const char *dir)
{
	struct dirent *e;
	unsigned n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".cohort-tmp-"))
			n++;
	closedir(d);
	return n;
}

/* As the other user: plant shared/out.rank-1 as a symlink to root's secret. */
static void plant_symlink(void *arg)
{
	(void)arg;
	if (setgid(OTHER_UID) < 0 || setuid(OTHER_UID) < 0)
		_exit(10);
	_exit(symlink("../secret", "shared/out.rank-1") == 0 ? 0 : 11);
}

/* As the other user: plant shared/out.rank-1 as a regular file of its own. */
static void plant_file(void *arg)
{
	int fd;

	(void)arg;
	if (setgid(OTHER_UID) < 0 || setuid(OTHER_UID) < 0)
		_exit(10);
	fd = open("shared/out.rank-1", O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0 || write(fd, "planted\n", 8) != 8)
		_exit(11);
	_exit(0);
}


/*
 * ---- hostile headers, at random ----
 *
 * A process of the job rewrites the live queue's or arena's shared words
 * with values chosen to hurt (0, a record's end, one past the ring, 2^40,
 * all ones, random), one to three at a time, while another process that
 * attached before goes on sending, receiving, allocating, writing what it
 * was given and freeing. The region lies between PROT_NONE pages, so one
 * byte read or written outside it is a SIGSEGV: every victim must end
 * normally, within its time. Under `make stress` 20,000 rounds of each,
 * with the figures in <build>/hostile-figures.txt.
 */

static uint64_t hostile_rng;

static uint64_t hostile_rnd(void)
{
	hostile_rng ^= hostile_rng << 13;
	hostile_rng ^= hostile_rng >> 7;
	hostile_rng ^= hostile_rng << 17;
	return hostile_rng;
}

static uint64_t hostile_value(uint64_t ring)
{
	const uint64_t v[] = { 0, 1, 7, 8, ring - 4, ring - 8, ring, ring + 8, ring * 2, 1ULL << 32,
	                       1ULL << 40, UINT64_MAX, UINT64_MAX - 7, (uint64_t)INT64_MAX + 1 };
	uint64_t r = hostile_rnd();

	return r % 4 == 0 ? hostile_rnd() : v[r / 4 % (sizeof(v) / sizeof(v[0]))];
}

struct hostile_tally {
	unsigned long long rounds, ok, corrupt, other;
};

static void tally(struct hostile_tally *t, int r)
{
	if (r >= 0)
		t->ok++;
	else if (r == COHORT_ECORRUPT)
		t->corrupt++;
	else
		t->other++;
}

struct hostile_victim {
	cohort_queue_t *q;
	cohort_arena_t *a;
	uint64_t seed;
	struct hostile_tally t;
};

static void hostile_queue_victim(void *arg)
{
	struct hostile_victim *v = arg;
	unsigned char buf[512], msg[300];

	hostile_rng = v->seed;
	memset(msg, 0x6b, sizeof(msg));
	for (int i = 0; i < 8; i++) {
		if (hostile_rnd() % 2)
			tally(&v->t, cohort_queue_send(v->q, msg, 1 + hostile_rnd() % sizeof(msg), 0));
		else
			tally(&v->t, cohort_queue_recv(v->q, buf, 1 + hostile_rnd() % sizeof(buf), 0));
	}
	_exit(0);
}

static void hostile_arena_victim(void *arg)
{
	struct hostile_victim *v = arg;
	cohort_off_t offs[8];
	int n = 0;

	hostile_rng = v->seed;
	for (int i = 0; i < 8; i++) {
		cohort_off_t off;
		size_t size = 1 + hostile_rnd() % 9000;
		int r = cohort_arena_alloc(v->a, size, &off);

		tally(&v->t, r);
		if (r == 0) {
			unsigned char *p = cohort_arena_ptr(v->a, off);

			/* What a worker does with what it was given: write all of it. */
			if (p)
				memset(p, 0x5a, size);
			offs[n++] = off;
		}
		tally(&v->t, cohort_arena_check(v->a, hostile_rnd() % 2 && n ? offs[n - 1] :
		                                (cohort_off_t)(hostile_rnd() % (2 * AREGION))));
	}
	while (n > 0)
		tally(&v->t, cohort_arena_free(v->a, offs[--n]));
	_exit(0);
}

/* One round: the victim in its own process must end normally, within its time; its calls tallied. */
static void hostile_round(void (*fn)(void *), struct hostile_victim *v, unsigned round,
                          struct hostile_tally *all)
{
	pid_t pid;
	int st;

	memset(&v->t, 0, sizeof(v->t));
	v->seed = hostile_rnd() | 1;
	pid = helper_spawn(fn, v);
	st = helper_wait(pid, 20000);
	CHECK_MSG(st == 0, "round %u: the victim ended with wait status %#x (signal %d)", round, st,
	          WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	all->ok += v->t.ok;
	all->corrupt += v->t.corrupt;
	all->other += v->t.other;
	all->rounds++;
}

static void hostile_figures(const char *what, const struct hostile_tally *t)
{
	printf("# hostile %s: %llu rounds, calls: %llu succeeded, %llu refused as corrupt, %llu other errors\n",
	       what, t->rounds, t->ok, t->corrupt, t->other);
	if (test_stress()) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/hostile-figures.txt", test_build_dir());
		if ((f = fopen(path, "a")) != NULL) {
			fprintf(f, "hostile %s: %llu rounds, calls: %llu succeeded, %llu refused as corrupt, "
			        "%llu other errors; 0 victims crashed or hung\n", what, t->rounds, t->ok,
			        t->corrupt, t->other);
			fclose(f);
		}
	}
}

TEST_TIMEOUT(harden_hostile_queue_headers_at_random, 900)
{
	unsigned char *mem = guarded_region(QREGION), *clean = malloc(QREGION);
	struct hostile_victim *v = mmap(NULL, sizeof(*v), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	                                -1, 0);
	static const char *const fields[] = { "capacity", "tail", "head", "nslots", "max_msg" };
	unsigned rounds = test_stress() ? 20000 : 300;
	struct hostile_tally all = { 0 };
	cohort_queue_t *q;
	uint64_t ring;

	CHECK(v != MAP_FAILED && clean != NULL);
	CHECK_OK(cohort_queue_init(mem, QREGION, &q));
	ring = *(uint64_t *)cohort__queue_field(q, "capacity");
	memcpy(clean, mem, QREGION);
	hostile_rng = 0x9e3779b97f4a7c15ULL;
	for (unsigned i = 0; i < rounds; i++) {
		unsigned edits = 1 + (unsigned)(hostile_rnd() % 3);

		/* The queue as it was made, with a few messages in it, then the rewrite. */
		memcpy(mem, clean, QREGION);
		for (unsigned m = (unsigned)(hostile_rnd() % 6); m > 0; m--)
			cohort_queue_send(q, "0123456789abcdef", 1 + hostile_rnd() % 16, 0);
		for (unsigned e = 0; e < edits; e++) {
			if (hostile_rnd() % 4 == 0) {
				/* A word anywhere in the region: the header's other words, a record's length. */
				uint64_t at = (hostile_rnd() % (QREGION / 8)) * 8, val = hostile_value(ring);

				memcpy(mem + at, &val, 8);
			} else {
				*(uint64_t *)cohort__queue_field(q, fields[hostile_rnd() % 5]) = hostile_value(ring);
			}
		}
		v->q = q;
		hostile_round(hostile_queue_victim, v, i, &all);
	}
	hostile_figures("queue", &all);
	/* Rewrites of the geometry must have been seen: some calls were refused. */
	CHECK_GT(all.corrupt, 0);
	memcpy(mem, clean, QREGION);
	CHECK_OK(cohort_queue_close(q));
	free(clean);
}

TEST_TIMEOUT(harden_hostile_arena_headers_at_random, 900)
{
	unsigned char *mem = guarded_region(AREGION), *clean = malloc(AREGION);
	struct hostile_victim *v = mmap(NULL, sizeof(*v), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	                                -1, 0);
	unsigned rounds = test_stress() ? 20000 : 300;
	struct hostile_tally all = { 0 };
	cohort_arena_t *a;

	CHECK(v != MAP_FAILED && clean != NULL);
	CHECK_OK(cohort_arena_init(mem, AREGION, &a));
	memcpy(clean, mem, AREGION);
	hostile_rng = 0x2545f4914f6cdd1dULL;
	for (unsigned i = 0; i < rounds; i++) {
		unsigned edits = 1 + (unsigned)(hostile_rnd() % 3);
		cohort_off_t off;

		memcpy(mem, clean, AREGION);
		for (unsigned m = (unsigned)(hostile_rnd() % 5); m > 0; m--)
			cohort_arena_alloc(a, 1 + hostile_rnd() % 4000, &off);
		for (unsigned e = 0; e < edits; e++) {
			uint64_t val = hostile_value(AREGION);

			if (hostile_rnd() % 3 == 0) {
				*(uint64_t *)cohort__arena_field(a, "size") = val;
			} else {
				/*
				 * A word of the header or of a block: a tag, a size, the
				 * rover. Not the lock's: a forged lock word is a holder
				 * that never lets go, a wait like that of a live process
				 * that keeps the lock, not a memory error (the lock's
				 * liveness has tests of its own).
				 */
				unsigned char *lock = cohort__arena_field(a, "lock");
				uint64_t at = (hostile_rnd() % (AREGION / 8)) * 8;

				if (mem + at + 8 > lock && mem + at < lock + sizeof(cohort_mutex_t))
					at = (uint64_t)((unsigned char *)cohort__arena_field(a, "rover") - mem);
				memcpy(mem + at, &val, 8);
			}
		}
		v->a = a;
		hostile_round(hostile_arena_victim, v, i, &all);
	}
	hostile_figures("arena", &all);
	CHECK_GT(all.corrupt, 0);
	memcpy(mem, clean, AREGION);
	CHECK_OK(cohort_arena_close(a));
	free(clean);
}

/*
 * root gathers in a directory another user can write: the other user's
 * symlink to root's 0600 secret, its own file, and a hard link to the
 * secret are each refused by name, nothing is published and no temporary
 * file stays.
 */
TEST(harden_gather_refuses_planted_parts)
{
	struct cmd_result r;
	struct stat st;
	char *s;

	if (geteuid() != 0)
		SKIP("a second real user needs root (setuid)");
	CHECK_OK(chmod(test_tmpdir(), 0755));
	CHECK_OK(mkdir("shared", 0777));
	CHECK_OK(chmod("shared", 0777));
	int fd = open("secret", O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "root:SECRET\n", 12), 12);
	close(fd);
	CHECK_OK(cohort_rank_publish("shared/out", 0, "part 0\n", 7, NULL));

	CHECK_EQ(helper_wait(helper_spawn(plant_symlink, NULL), 10000), 0);
	cmd_run(&r, COHORT " gather --ranks 2 shared/out", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "refusing the part 'shared/out.rank-1': it is a symbolic link");
	CHECK(strstr(r.out, "SECRET") == NULL);
	cmd_free(&r);
	CHECK_MSG(lstat("shared/out", &st) < 0 && errno == ENOENT, "shared/out was published");
	CHECK_EQ(count_temporaries("shared"), 0);

	CHECK_OK(unlink("shared/out.rank-1"));
	CHECK_EQ(helper_wait(helper_spawn(plant_file, NULL), 10000), 0);
	cmd_run(&r, COHORT " gather --ranks 2 --json shared/out", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.out, "refusing the part 'shared/out.rank-1': it belongs to uid 65534, not to you (uid 0)");
	cmd_free(&r);
	CHECK(access("shared/out", F_OK) < 0);
	CHECK_EQ(count_temporaries("shared"), 0);

	CHECK_OK(unlink("shared/out.rank-1"));
	CHECK_OK(link("secret", "shared/out.rank-1"));
	cmd_run(&r, COHORT " gather --ranks 2 shared/out", test_build_dir());
	CHECK_EQ(r.status, 3);
	CHECK_CONTAINS(r.err, "refusing the part 'shared/out.rank-1': it has 2 hard links");
	cmd_free(&r);
	CHECK(access("shared/out", F_OK) < 0);
	CHECK_EQ(count_temporaries("shared"), 0);

	/* A real part of root's own: gathered, mode 0644 less the umask. */
	CHECK_OK(unlink("shared/out.rank-1"));
	CHECK_OK(cohort_rank_publish("shared/out", 1, "part 1\n", 7, NULL));
	cmd_run(&r, "umask 027; exec " COHORT " gather --ranks 2 shared/out", test_build_dir());
	CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
	cmd_free(&r);
	s = read_file("shared/out");
	CHECK_STREQ(s, "part 0\npart 1\n");
	free(s);
	CHECK_OK(lstat("shared/out", &st));
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ(st.st_mode & 0777, 0640);
}

/*
 * A FIFO planted as a part used to block gather in open() past --timeout,
 * with its temporary file left behind: it is refused at once.
 */
TEST(harden_gather_fifo_part_does_not_block)
{
	struct cmd_result r;
	double t0, took;

	CHECK_OK(cohort_rank_publish("out", 0, "part 0\n", 7, NULL));
	CHECK_OK(mkfifo("out.rank-1", 0600));
	t0 = now_s();
	/* timeout(1) only so that a regression fails here instead of hanging the test. */
	cmd_run(&r, "timeout -s KILL 30 " COHORT " gather --ranks 2 --timeout 2 out", test_build_dir());
	took = now_s() - t0;
	CHECK_MSG(r.status == 3, "exit %d (137: killed after blocking for 30 s): %s", r.status, r.err);
	CHECK_CONTAINS(r.err, "refusing the part 'out.rank-1': it is a FIFO, not a regular file");
	cmd_free(&r);
	/* It waited for nothing: bounded well within the 30 s kill, whatever the load. */
	CHECK_LT_DBL(took, 20.0);
	CHECK(access("out", F_OK) < 0);
	CHECK_EQ(count_temporaries("."), 0);
}

/* ---- hostile recordings: cost follows the file, not the header's worker count ---- */

#define HOSTILE_HEADER "{\"type\":\"header\",\"format\":1,\"workers\":65536,\"interval_s\":1}\n"

/*
 * Run `cohort report` on path under an address-space limit of limit_mb
 * (none in a sanitizer build: its shadow memory needs terabytes of address
 * space), at most 120 s. Returns the exit status; *ret_s and *ret_maxrss_kb
 * get the real time and peak RSS measured.
 */
static int report_limited(const char *path, unsigned limit_mb, double *ret_s, long *ret_maxrss_kb)
{
	char cohort[1024];
	struct rusage ru;
	int st = 0;
	double t0 = now_s();
	pid_t pid;

	snprintf(cohort, sizeof(cohort), "%s/cohort", test_build_dir());
	pid = fork();
	if (pid == 0) {
		struct rlimit rl = { (rlim_t)limit_mb << 20, (rlim_t)limit_mb << 20 };
		int null = open("/dev/null", O_WRONLY);

		if (!getenv("COHORT_SANITIZER") && !strstr(test_build_dir(), "build-address") &&
		    !strstr(test_build_dir(), "build-undefined") && !strstr(test_build_dir(), "build-thread"))
			setrlimit(RLIMIT_AS, &rl);
		dup2(null, 1);
		alarm(120);
		execl(cohort, cohort, "report", path, (char *)NULL);
		_exit(127);
	}
	CHECK(pid > 0);
	CHECK(wait4(pid, &st, 0, &ru) == pid);
	*ret_s = now_s() - t0;
	*ret_maxrss_kb = ru.ru_maxrss;
	return st;
}

/*
 * A 36 KB recording whose header says 65536 workers: cohort
 * report used 3.15 GB (one samples x workers matrix). Then 50,000 one-field
 * events took 43.8 s (the diagnosis walked every event once per worker).
 */
TEST_TIMEOUT(harden_report_hostile_worker_count, 300)
{
	FILE *f = fopen("many.ndjson", "w");
	double took;
	long rss_kb;
	int st;
	struct stat sb;

	CHECK(f != NULL);
	fputs(HOSTILE_HEADER, f);
	/* Samples that each list one worker, the last rank. */
	for (int i = 0; f && ftell(f) < 36 * 1024; i++)
		fprintf(f, "{\"type\":\"sample\",\"t\":%d,\"workers\":[{\"rank\":65535,\"rss\":%d}]}\n",
		        i, 1000 + i);
	CHECK_OK(fclose(f));
	CHECK_OK(stat("many.ndjson", &sb));
	st = report_limited("many.ndjson", 256, &took, &rss_kb);
	fprintf(stderr, "# 36 KB, 65536 workers: cohort report %.2f s, peak RSS %ld KiB\n", took, rss_kb);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) <= 1, "cohort report ended with status %#x "
	          "(signal %d) under a 256 MiB address-space limit", st, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	CHECK_LT_DBL(took, 60.0);

	f = fopen("events.ndjson", "w");
	CHECK(f != NULL);
	fputs(HOSTILE_HEADER, f);
	/* Started workers with one-field events each, and as many rank-less ones. */
	for (int i = 0; i < 25000; i++)
		fprintf(f, "{\"type\":\"event\",\"kind\":\"spawn\",\"rank\":%d,\"pid\":%d}\n", i, 1000 + i);
	for (int i = 0; i < 25000; i++)
		fprintf(f, "{\"type\":\"event\",\"t\":%d}\n", i);
	CHECK_OK(fclose(f));
	st = report_limited("events.ndjson", 512, &took, &rss_kb);
	fprintf(stderr, "# 50,000 events, 65536 workers: cohort report %.2f s, peak RSS %ld KiB\n", took,
	        rss_kb);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) <= 1, "cohort report ended with status %#x "
	          "(signal %d) under a 512 MiB address-space limit", st, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	/* Was 43.8 s; the bound is generous for a loaded machine, not a figure. */
	CHECK_LT_DBL(took, 60.0);
}

/* ---- processes that outlive the supervisor, a supervisor that can be blocked ---- */

/* Read a pid a worker wrote into a file; 0 when not there yet. */
static pid_t read_pid(const char *path)
{
	char *text = read_file(path);
	pid_t pid = text ? (pid_t)atoi(text) : 0;

	free(text);
	return pid;
}

static bool running(pid_t pid)
{
	char path[64], *stat;
	bool r;

	if (pid <= 0 || kill(pid, 0) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	stat = read_file(path);
	r = stat && !strstr(stat, ") Z ");   /* a zombie has ended */
	free(stat);
	return r;
}

/* How many of pids still run after waiting for them at most timeout_ms. */
static unsigned still_running(const pid_t *pids, unsigned n, unsigned timeout_ms)
{
	unsigned left = n;

	for (unsigned t = 0; t <= timeout_ms; t += 20) {
		left = 0;
		for (unsigned i = 0; i < n; i++)
			left += running(pids[i]);
		if (!left)
			break;
		usleep(20000);
	}
	return left;
}

/*
 * 32 workers each start a setsid child that holds the job's segment open,
 * then the supervisor is killed with SIGKILL: the workers die with it
 * (parent-death signal), their children run on under init, in the worker
 * cgroups, with the segments open. `how` then reaps them: the next
 * `cohort run` or `cohort shm gc`.
 */
static void killed_supervisor_case(unsigned workers, const char *how)
{
	pid_t children[32], sup;
	char script[1024], path[64];
	struct cmd_result r;
	unsigned left;

	if (geteuid() != 0)
		SKIP("worker cgroups need root here (cgroup v1)");
	CHECK_LE(workers, 32);
	snprintf(script, sizeof(script),
	         "f=/dev/shm/cohort.0.$COHORT_JOB.seg-$COHORT_RANK; touch $f; "
	         "setsid sleep 120 <$f & echo $! >child.$COHORT_RANK; sleep 120");
	snprintf(path, sizeof(path), "-q -i 0.2 --enforce cgroup --no-record -n %u", workers);
	sup = start_run(path, script);
	for (unsigned k = 0; k < workers; k++) {
		snprintf(path, sizeof(path), "child.%u", k);
		CHECK_MSG(wait_file(path, 60000), "worker %u never started its child", k);
		for (int t = 0; t < 500 && !(children[k] = read_pid(path)); t++)
			usleep(10000);
		CHECK(children[k] > 0);
	}
	CHECK_OK(kill(sup, SIGKILL));
	CHECK_EQ(finish(sup, 10000), 128 + SIGKILL);
	/* What the killed one left: its children run on, in its cgroups, holding its segments. */
	CHECK_EQ(still_running(children, workers, 0), workers);
	cmd_run(&r, "find /sys/fs/cgroup/memory -maxdepth 8 -type d -name 'cohort-%d*' | wc -l", (int)sup);
	CHECK_GE(atoi(r.out), 1);
	cmd_free(&r);

	if (strcmp(how, "run") == 0)
		cmd_run(&r, COHORT " run --no-record -n 1 -- true", test_build_dir());
	else
		cmd_run(&r, COHORT " shm gc", test_build_dir());
	left = still_running(children, workers, 10000);
	for (unsigned k = 0; k < workers; k++)
		kill(children[k], SIGKILL);   /* whatever the verdict: nothing left behind by the test */
	CHECK_MSG(left == 0, "%u of %u children of the killed supervisor still run after `cohort %s`:\n%s",
	          left, workers, how, r.err);
	CHECK_EQ(r.status, 0);
	if (strcmp(how, "run") == 0)
		CHECK_CONTAINS(r.err, "is gone and left");
	else
		CHECK_CONTAINS(r.out, "killed ");
	cmd_free(&r);
	cmd_run(&r, "find /sys/fs/cgroup/memory -maxdepth 8 -type d -name 'cohort-%d*'", (int)sup);
	CHECK_MSG(r.out[0] == '\0', "cgroups of the killed supervisor left:\n%s", r.out);
	cmd_free(&r);
	cmd_run(&r, "ls /dev/shm/ | grep -c '^cohort\\.0\\.local-%d\\.'", (int)sup);
	CHECK_MSG(atoi(r.out) == 0, "%s segments of the killed supervisor's job left", r.out);
	cmd_free(&r);
}

TEST_TIMEOUT(harden_killed_supervisor_reaped_by_next_run, 180)
{
	killed_supervisor_case(32, "run");
}

TEST_TIMEOUT(harden_killed_supervisor_reaped_by_shm_gc, 180)
{
	killed_supervisor_case(32, "shm");
}

/*
 * A worker's setsid child grows past the worker's limit under --enforce
 * watch: cohort stops the worker, the child with it, while the job still
 * runs (rank 1 says whether the child died before it gave up waiting).
 */
TEST_TIMEOUT(harden_stopped_worker_takes_its_setsid_child, 90)
{
	char script[1024], *err;
	pid_t sup, child;
	int st;

	snprintf(script, sizeof(script),
	         "if [ $COHORT_RANK = 0 ]; then setsid %s/examples/faults/grow --size 310 --hold 60 & "
	         "echo $! >child; wait; else i=0; while [ $i -lt 600 ]; do "
	         "if [ -s child ] && ! kill -0 $(cat child) 2>/dev/null; then echo yes >gone; exit 0; fi; "
	         "sleep 0.1; i=$((i + 1)); done; echo no >gone; fi", test_build_dir());
	sup = start_run("-n 2 -i 0.1 --enforce watch --grace 1 -m 100M -o rec.ndjson", script);
	st = finish(sup, 80000);
	child = read_pid("child");
	err = read_file("sup.err");
	if (running(child))
		kill(child, SIGKILL);
	CHECK_MSG(st == 128 + SIGTERM, "exit %d:\n%s", st, err);
	CHECK_CONTAINS(err, "above its 100.0 MiB budget: stopped by cohort");
	/* What cohort did is said: no cgroup, so the tree it saw, the setsid child among it. */
	CHECK_CONTAINS(err, "rank 0 has no cgroup of its own: cohort stops the processes of its tree");
	free(err);
	err = read_file("gone");
	CHECK_MSG(err && strcmp(err, "yes\n") == 0, "the setsid child of the stopped worker ran on while "
	          "the job ran (rank 1 saw: %s)", err ? err : "nothing");
	free(err);
	CHECK(child > 0 && !running(child));
}

/* The children of pid's main thread, as /proc lists them. */
static unsigned count_children(pid_t pid)
{
	char path[64], *text, *p;
	unsigned n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	text = read_file(path);
	for (p = text; p && *p; p++)
		n += *p == ' ';
	free(text);
	return n;
}

/*
 * Under a child subreaper (systemd --user, tini), a supervisor killed
 * while it spawns hands its half-started workers to the subreaper, not to
 * pid 1: none of them may go on to run the command.
 */
TEST_TIMEOUT(harden_killed_during_spawn_under_subreaper, 240)
{
	char cohort[1024];
	unsigned orphans = 0, runs = test_stress() ? 200 : 30;

	snprintf(cohort, sizeof(cohort), "%s/cohort", test_build_dir());
	CHECK_OK(prctl(PR_SET_CHILD_SUBREAPER, 1));
	for (unsigned run = 0; run < runs; run++) {
		pid_t sup = fork(), pid;
		unsigned waited = 0;
		int st;

		CHECK(sup >= 0);
		if (sup == 0) {
			int nul = open("/dev/null", O_WRONLY);

			dup2(nul, 1);
			dup2(nul, 2);
			execl(cohort, cohort, "run", "-q", "--no-record", "--enforce", "watch", "-n", "32", "--",
			      "sleep", "120", (char *)NULL);
			_exit(127);
		}
		/* Into the middle of the spawning: after the first worker, at a varying moment. */
		while (count_children(sup) == 0 && waited++ < 20000)
			usleep(100);
		usleep((run * 397) % 3000);
		CHECK_OK(kill(sup, SIGKILL));
		CHECK_EQ(waitpid(sup, &st, 0), sup);
		/* Everything the supervisor started is now ours: each must end by itself, within 10 s. */
		for (unsigned t = 0; t < 1000;) {
			pid = waitpid(-1, &st, WNOHANG);
			if (pid < 0)
				break;   /* no child left */
			if (pid == 0) {
				usleep(10000);
				t++;
			}
		}
		orphans = count_children(getpid());
		if (orphans) {
			/* Kill what is left, by pid (all of them our children), before failing. */
			char path[64], *text, *p;

			snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)getpid(), (int)getpid());
			text = read_file(path);
			for (p = text; p && *p;) {
				char *end;
				long v = strtol(p, &end, 10);

				if (end == p)
					break;
				if (v > 0)
					kill((pid_t)v, SIGKILL);
				p = end;
			}
			free(text);
			while (waitpid(-1, &st, 0) > 0)
				;
			CHECK_MSG(orphans == 0, "run %u: a worker of the killed supervisor ran orphaned under "
			          "the subreaper", run);
		}
	}
}

/*
 * `cohort run -l` with its stdout in a pipe nobody reads. Returns the
 * supervisor's pid; *ret_fd is the pipe's read end, kept open (a reader
 * that is there but does not read).
 */
static pid_t start_stalled(const char *args, const char *script, int *ret_fd)
{
	char cmd[4096];
	int p[2];
	pid_t pid;

	CHECK_OK(pipe(p));
	snprintf(cmd, sizeof(cmd), "exec '%s/cohort' run %s -- sh -c '%s' 2>sup.err", test_build_dir(), args,
	         script);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	*ret_fd = p[0];
	return pid;
}

/* Bytes waiting in a pipe: that the reader really did stall. */
static int pipe_queued(int fd)
{
	int n = 0;

	return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

/*
 * Rank 0 floods stdout while rank 1 grows past its limit: the stalled
 * reader must not keep cohort from stopping rank 1, and the drop is said.
 */
TEST_TIMEOUT(harden_stalled_stdout_does_not_stop_enforcement, 90)
{
	char script[1024], *err;
	double t0;
	pid_t sup;
	int fd, st;

	snprintf(script, sizeof(script),
	         "if [ $COHORT_RANK = 0 ]; then i=0; while [ $i -lt 40 ]; do seq 1 5000; i=$((i + 1)); done; "
	         "else %s/examples/faults/grow --size 400 --hold 60; fi", test_build_dir());
	t0 = (double)time(NULL);
	sup = start_stalled("-l -n 2 -i 0.1 --enforce watch --grace 1 -m 100M -o rec.ndjson", script, &fd);
	st = finish(sup, 60000);
	err = read_file("sup.err");
	CHECK_MSG(st != -1, "cohort run did not end within 60 s with its stdout stalled:\n%s", err);
	CHECK_GE(pipe_queued(fd), 1);
	CHECK_MSG(st == 128 + SIGTERM, "exit %d:\n%s", st, err);
	CHECK_CONTAINS(err, "rank 1 (pid ");
	CHECK_CONTAINS(err, "above its 100.0 MiB budget: stopped by cohort");
	CHECK_CONTAINS(err, "of the workers' stdout were dropped");
	CHECK_LE((double)time(NULL) - t0, 50);
	free(err);
	close(fd);
}

/* With the reader stalled, SIGTERM to the supervisor still stops the job, at once. */
TEST_TIMEOUT(harden_stalled_stdout_sigterm_acts, 60)
{
	char *err;
	pid_t sup;
	int fd, st, t;

	sup = start_stalled("-l -n 2 -i 0.1 --enforce watch --grace 1 -o rec.ndjson",
	                    "while :; do seq 1 5000; done", &fd);
	/* The pipe full (64 KiB at least): the reader has stalled. */
	for (t = 0; t < 3000 && pipe_queued(fd) < 60000; t++)
		usleep(10000);
	CHECK_GE(pipe_queued(fd), 60000);
	usleep(300000);
	CHECK_OK(kill(sup, SIGTERM));
	st = finish(sup, 20000);
	err = read_file("sup.err");
	CHECK_MSG(st == 128 + SIGTERM, "exit %d after SIGTERM with stdout stalled:\n%s", st, err ? err : "");
	free(err);
	close(fd);
}

/*
 * ---- Liveness: a live holder is never judged dead, a dead one always ----
 *
 * A barrier's, semaphore's or queue's holder is judged by its lease (an
 * OFD lock the kernel drops at the process's death: src/peer.c), not by
 * its pid: a process whose main thread called pthread_exit() (its leader
 * shows Z), a process in another pid namespace (its pid means nothing
 * here) are alive; a dead holder whose pid was taken again is dead.
 */

#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/mount.h>

static void *shared_mem(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK_MSG(p != MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* In a helper: wait (bounded) until *flag reaches want; false on timeout. */
static bool wait_flag(_Atomic uint32_t *flag, uint32_t want, unsigned ms)
{
	uint64_t end = mono_ms() + ms;

	while (atomic_load(flag) < want) {
		if (mono_ms() > end)
			return false;
		usleep(200);
	}
	return true;
}

static void await(_Atomic uint32_t *flag, uint32_t want)
{
	CHECK_MSG(wait_flag(flag, want, 20000), "helpers did not get to step %u within 20 s", want);
}

/* The state letter of this process's leader (/proc/self/stat, field 3). */
static char leader_state(void)
{
	char buf[512];
	FILE *f = fopen("/proc/self/stat", "re");
	char *p = NULL;

	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);

		buf[n] = '\0';
		fclose(f);
		p = strrchr(buf, ')');
	}
	return p && p[1] == ' ' ? p[2] : '?';
}

/* Start time of the calling process, clock ticks since boot. */
static uint64_t self_ticks(void)
{
	uint64_t t = 0;

	cohort__proc_start(getpid(), &t, NULL);
	return t;
}

/*
 * Run fn(arg) in a thread of a helper process whose main thread then calls
 * pthread_exit(): fn starts once the leader shows Z, and the process ends
 * when fn returns.
 */
struct leaderless {
	void (*fn)(void *);
	void *arg;
};

static void *leaderless_thread(void *p)
{
	struct leaderless *l = p;

	for (int i = 0; i < 20000 && leader_state() != 'Z'; i++)
		usleep(500);
	if (leader_state() != 'Z')
		_exit(31);
	l->fn(l->arg);
	_exit(0);
}

static void leaderless_main(void *p)
{
	static struct leaderless l;
	pthread_t t;

	l = *(struct leaderless *)p;
	if (pthread_create(&t, NULL, leaderless_thread, &l) != 0)
		_exit(30);
	pthread_exit(NULL);
}

static pid_t spawn_leaderless(void (*fn)(void *), void *arg)
{
	struct leaderless l = { fn, arg };

	return helper_spawn(leaderless_main, &l);
}

/*
 * Run fn(arg) as pid 1 of a new pid namespace (root only), sharing our
 * memory and /dev/shm. Returns the pid of the outer helper (it ends with
 * fn's process), or 0 when pid namespaces are not available here.
 */
struct nsrun {
	void (*fn)(void *);
	void *arg;
	_Atomic int32_t status;   /* 0: running; 1: unshare failed; 2: started */
	_Atomic int32_t inner;    /* fn's process, as our pid namespace sees it */
};

/*
 * Like a container: a pid namespace with its own /proc (in a mount
 * namespace of its own, sharing every other mount, /dev/shm included), so
 * that its processes read their own pids' /proc entries.
 */
static void nsrun_main(void *p)
{
	struct nsrun *n = p;
	int st;

	if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) {
		atomic_store(&n->status, 1);
		_exit(0);
	}
	pid_t pid = fork();
	if (pid < 0)
		_exit(40);
	if (pid == 0) {
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
		    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
			_exit(41);
		atomic_store(&n->status, 2);
		n->fn(n->arg);
		_exit(0);
	}
	atomic_store(&n->inner, pid);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static pid_t spawn_in_pidns(struct nsrun *n, void (*fn)(void *), void *arg)
{
	n->fn = fn;
	n->arg = arg;
	atomic_store(&n->status, 0);
	pid_t pid = helper_spawn(nsrun_main, n);
	for (int i = 0; i < 20000 && atomic_load(&n->status) == 0; i++)
		usleep(500);
	CHECK_MSG(atomic_load(&n->status) != 0, "pid namespace helper did not start");
	if (atomic_load(&n->status) == 1) {
		helper_wait(pid, 10000);
		return 0;
	}
	return pid;
}

static void check_helper_ok(pid_t pid)
{
	int st = helper_wait(pid, 30000);

	CHECK_MSG(st != -1, "helper %d still running after 30 s", (int)pid);
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "helper %d ended with status %d", (int)pid, st);
}

/* ---- semaphore and barrier ---- */

struct sem_case {
	cohort_sem_t sem;
	cohort_barrier_t bar;
	_Atomic uint32_t step;
	_Atomic int32_t result;
	_Atomic int32_t pid;      /* the holder's own pid (in its namespace) */
};

/* Take the one unit, say so, hold it until told, give it back. */
static void sem_hold(void *arg)
{
	struct sem_case *c = arg;

	if (cohort_sem_wait(&c->sem, 10000) != 0)
		_exit(20);
	atomic_store(&c->pid, getpid());
	atomic_store(&c->step, 1);
	if (!wait_flag(&c->step, 2, 30000))
		_exit(21);
	cohort_sem_post(&c->sem);
	cohort_sem_leave(&c->sem);
}

/* The holder lives: a waiter times out, never EPEERDEAD; reap takes nothing. */
static void check_sem_holder_alive(struct sem_case *c, pid_t helper)
{
	unsigned units = 99;

	await(&c->step, 1);
	CHECK_EQ(cohort_sem_wait(&c->sem, 300), COHORT_ETIMEDOUT);
	CHECK_EQ(cohort_sem_dead(&c->sem), 0);
	CHECK_EQ(cohort_sem_reap(&c->sem, &units), 0);
	CHECK_EQ(units, 0);
	CHECK_EQ(cohort_sem_value(&c->sem), 0);
	atomic_store(&c->step, 2);
	check_helper_ok(helper);
	CHECK_EQ(cohort_sem_wait(&c->sem, 5000), 0);
}

TEST(harden_sem_thread_exit_leader_is_alive)
{
	struct sem_case *c = shared_mem(sizeof(*c));

	CHECK_OK(cohort_sem_init(&c->sem, 1));
	check_sem_holder_alive(c, spawn_leaderless(sem_hold, c));
}

TEST(harden_sem_pidns_holder_is_alive)
{
	struct sem_case *c = shared_mem(sizeof(*c));
	struct nsrun *n = shared_mem(sizeof(*n));
	pid_t pid;

	CHECK_OK(cohort_sem_init(&c->sem, 1));
	pid = spawn_in_pidns(n, sem_hold, c);
	if (!pid)
		SKIP("no new pid namespace here (needs root)");
	check_sem_holder_alive(c, pid);
	CHECK_EQ(atomic_load(&c->pid), 1);   /* it was pid 1 there: our init here */
}

/* A member that arrives late (after 300 ms) at a barrier of two. */
static void barrier_late(void *arg)
{
	struct sem_case *c = arg;

	if (cohort_barrier_join(&c->bar) != 0)
		_exit(22);
	atomic_store(&c->step, 1);
	usleep(300000);
	atomic_store(&c->result, cohort_barrier_wait(&c->bar, 20000));
}

static void check_barrier_no_false_death(struct sem_case *c, pid_t helper)
{
	await(&c->step, 1);
	int r = cohort_barrier_wait(&c->bar, 20000);
	CHECK_MSG(r == 0 || r == 1, "barrier_wait: %d (%s), dead %d", r, cohort_strerror(r),
	          (int)cohort_barrier_dead(&c->bar));
	check_helper_ok(helper);
	CHECK_EQ(r + atomic_load(&c->result), 1);   /* one serial waiter in the round */
}

TEST(harden_barrier_thread_exit_leader_no_false_peerdead)
{
	struct sem_case *c = shared_mem(sizeof(*c));

	CHECK_OK(cohort_barrier_init(&c->bar, 2));
	check_barrier_no_false_death(c, spawn_leaderless(barrier_late, c));
}

TEST(harden_barrier_pidns_member_no_false_peerdead)
{
	struct sem_case *c = shared_mem(sizeof(*c));
	struct nsrun *n = shared_mem(sizeof(*n));
	pid_t pid;

	CHECK_OK(cohort_barrier_init(&c->bar, 2));
	pid = spawn_in_pidns(n, barrier_late, c);
	if (!pid)
		SKIP("no new pid namespace here (needs root)");
	check_barrier_no_false_death(c, pid);
}

/* ---- queue: producers that live, counted exactly ---- */

#define LQ_RING (1u << 20)
#define LQ_BIG (64u << 10)
#define LQ_VICTIM_MAX (32u << 20)

/* Producer 2 is a victim, killed inside send and started again (inherited by fork). */
static bool lq_victims;
#define LQ_PRODUCERS 3

struct lq_msg {
	uint32_t producer, seq, len, sum;
	unsigned char payload[2 * LQ_BIG];
};

struct lq_case {
	_Alignas(64) unsigned char mem[COHORT_QUEUE_HEADER + LQ_RING];
	_Atomic uint32_t step;
	_Atomic uint32_t failed[LQ_PRODUCERS];    /* sends that did not return 0 */
	_Atomic uint32_t sent[LQ_PRODUCERS];      /* sends that returned 0 */
	uint32_t n;                               /* messages per producer, at most */
	_Atomic uint32_t stop;                    /* producers: send no more */
	_Atomic uint32_t done[LQ_PRODUCERS];      /* a producer's last send has returned */
	_Atomic uint32_t next2;                   /* victims: producer 2's next sequence number */
	_Atomic uint8_t ok2[LQ_VICTIM_MAX];       /* victims: producer 2's sends that returned 0 */
};

/*
 * Producers 0 and 1 (the ones the test stops) send 64 to 128 KiB: copying
 * one into the ring takes long enough that a stop often finds them
 * holding the lock. Producer 2 sends 16 to 195 bytes.
 */
static uint32_t lq_len(uint32_t producer, uint32_t seq)
{
	if (producer < 2 || lq_victims)
		return LQ_BIG + (seq * 4099u + producer * 7) % LQ_BIG;
	return 16 + (seq * 13 + producer * 7) % 180;
}

/* The first and last 64 bytes name the message; the middle the producer. */
static unsigned char lq_byte(uint32_t producer, uint32_t seq, uint32_t len, uint32_t i)
{
	if (i < 64 || i + 64 >= len)
		return (unsigned char)(producer * 31 + seq * 7 + i * 3);
	return (unsigned char)(producer * 131 + i * 5);
}

static void lq_produce(struct lq_case *c, uint32_t id)
{
	cohort_queue_t *q;
	struct lq_msg *mp = malloc(sizeof(*mp));

	if (!mp || cohort_queue_open(c->mem, sizeof(c->mem), &q) != 0)
		_exit(23);
	for (uint32_t i = 0; i < sizeof(mp->payload); i++)
		mp->payload[i] = lq_byte(id, 0, sizeof(mp->payload), i);
	for (uint32_t next = 0; next < c->n && !atomic_load_explicit(&c->stop, memory_order_relaxed);
	     next++) {
		bool victim = lq_victims && id == 2;
		uint32_t seq = victim ? atomic_fetch_add(&c->next2, 1) : next;
		uint32_t len = lq_len(id, seq), sum = 0;

		if (victim && seq >= LQ_VICTIM_MAX)
			break;

		mp->producer = id;
		mp->seq = seq;
		mp->len = len;
		for (uint32_t i = 0; i < len; i++) {
			if (i < 64 || i + 64 >= len)
				mp->payload[i] = lq_byte(id, seq, len, i);
			else if (i == 64)
				i = len - 65;   /* the middle is written once, above */
		}
		for (uint32_t i = 0; i < 64 && i < len; i++)
			sum = sum * 31 + mp->payload[i];
		mp->sum = sum;
		if (cohort_queue_send(q, mp, offsetof(struct lq_msg, payload) + len, 20000) == 0) {
			atomic_fetch_add(&c->sent[id], 1);
			if (victim)
				atomic_store(&c->ok2[seq], 1);
		} else
			atomic_fetch_add(&c->failed[id], 1);
		for (uint32_t i = len > 128 ? len - 64 : 64; i < len; i++)
			mp->payload[i] = lq_byte(id, 0, sizeof(mp->payload), i);   /* the middle again */
	}
	atomic_store(&c->done[id], 1);
}

static bool lq_all_done(struct lq_case *c)
{
	for (int p = 0; p < LQ_PRODUCERS; p++)
		if (!atomic_load(&c->done[p]))
			return false;
	return true;
}

static void lq_producer0(void *arg) { lq_produce(arg, 0); }
static void lq_producer1(void *arg) { lq_produce(arg, 1); }
static void lq_producer2(void *arg) { lq_produce(arg, 2); }

/* What the receiver saw: each message whole and once. */
struct lq_tally {
	uint8_t *seen[LQ_PRODUCERS];
	unsigned char middle[LQ_PRODUCERS][2 * LQ_BIG];
	uint64_t received, torn, dup;
};

static void lq_take(struct lq_tally *t, const struct lq_msg *m, int r, uint32_t n)
{
	bool whole = (size_t)r >= offsetof(struct lq_msg, payload) && m->producer < LQ_PRODUCERS &&
	             m->seq < n && m->len == lq_len(m->producer, m->seq) &&
	             (size_t)r == offsetof(struct lq_msg, payload) + m->len;
	uint32_t sum = 0;

	t->received++;
	for (uint32_t i = 0; whole && i < m->len; i++) {
		if (i == 64 && m->len > 128) {
			/* The middle depends on the producer only: compare it at once. */
			whole = memcmp(m->payload + 64, t->middle[m->producer] + 64, m->len - 128) == 0;
			i = m->len - 65;
			continue;
		}
		whole = m->payload[i] == lq_byte(m->producer, m->seq, m->len, i);
		if (i < 64)
			sum = sum * 31 + m->payload[i];
	}
	if (!whole || sum != m->sum)
		t->torn++;
	else if (t->seen[m->producer][m->seq]++)
		t->dup++;
}

/*
 * Producers 0 (leader gone by pthread_exit, when leaderless), 1 (in a new
 * pid namespace, when pidns; else a plain process) and 2 (plain) send n
 * messages each through a 4 KiB ring, so that their sends contend for the
 * producers' lock all the time; this process receives. Every send that
 * returned 0 must come out exactly once and whole: 0 lost, 0 torn, 0
 * duplicated, and no lock taken from the living (recovered 0).
 */
static bool run_live_producers(bool leaderless, bool pidns, uint32_t want, unsigned want_stalls,
                               unsigned kills, const char *label)
{
	unsigned killed = 0, kill_stops = 0;
	const uint32_t n = LQ_VICTIM_MAX;   /* at most, per producer: they send until told to stop */
	struct lq_case *c = shared_mem(sizeof(*c));
	struct nsrun *ns = shared_mem(sizeof(*ns));
	static struct lq_tally t;
	uint64_t lost = 0, start = mono_ms();
	struct lq_msg *mp = malloc(sizeof(*mp));
	CHECK(mp);
	struct cohort_queue_stats st;
	cohort_queue_t *q;
	pid_t pids[LQ_PRODUCERS];

	c->n = n;
	CHECK_OK(cohort_queue_init(c->mem, sizeof(c->mem), &q));
	pids[0] = leaderless ? spawn_leaderless(lq_producer0, c) : helper_spawn(lq_producer0, c);
	pids[1] = pidns ? spawn_in_pidns(ns, lq_producer1, c) : helper_spawn(lq_producer1, c);
	if (!pids[1]) {
		kill(pids[0], SIGKILL);
		helper_wait(pids[0], 10000);
		return false;
	}
	pids[2] = helper_spawn(lq_producer2, c);
	for (int p = 0; p < LQ_PRODUCERS; p++) {
		t.seen[p] = calloc(n, 1);
		CHECK(t.seen[p]);
		for (uint32_t i = 0; i < sizeof(t.middle[p]); i++)
			t.middle[p][i] = lq_byte((uint32_t)p, 0, sizeof(t.middle[p]), i);
	}
	pid_t target[2] = { pids[0], pidns ? (pid_t)atomic_load(&ns->inner) : pids[1] };
	pid_t named[2] = { pids[0], pidns ? 1 : pids[1] };   /* how its lock word names it */
	unsigned stalls = 0, attempts = 0, stops = 0;
	for (;;) {
		uint64_t settled = 0;

		/*
		 * Now and then stop producer 0 or 1 (a preempted holder, for as
		 * long as the others need to judge it): when its lock word names
		 * it, the others must wait for it, not take its lock.
		 */
		if (t.received % 40 == 39 && stalls < want_stalls && (leaderless || pidns)) {
			int k = (int)(attempts++ % 2);

			if ((k == 0 && !leaderless) || (k == 1 && !pidns))
				k = 1 - k;
			for (int tries = 0; tries < 100 && atomic_load(&c->sent[k]) +
			                                   atomic_load(&c->failed[k]) < n; tries++) {
				/* Make room first, so that the producers are sending, not asleep. */
				for (int r; (r = cohort_queue_recv(q, mp, sizeof(*mp), 0)) > 0; )
					lq_take(&t, mp, r, n);
				/* A moment for it to run, varied so that stops land all over its send. */
				for (uint64_t spin_end = mono_us() + 50 + (uint64_t)(tries * 37) % 400;
				     mono_us() < spin_end; )
					sched_yield();
				if (kill(target[k], SIGSTOP) != 0)
					break;
				stops++;
				usleep(1000);
				if (cohort__queue_holder(q, true) != named[k]) {
					kill(target[k], SIGCONT);
					continue;
				}
				{
					uint64_t until = mono_ms() + 60;

					stalls++;
					while (mono_ms() < until) {
						int r = cohort_queue_recv(q, mp, sizeof(*mp), 5);

						if (r > 0)
							lq_take(&t, mp, r, n);
					}
				}
				kill(target[k], SIGCONT);
				break;
			}
		}

		for (int p = 0; p < LQ_PRODUCERS; p++)
			settled += atomic_load(&c->sent[p]) + atomic_load(&c->failed[p]);
		/*
		 * With victims: stop producer 2 until its lock word names it,
		 * kill it there, start another. The live producers must lose
		 * nothing meanwhile; the victims at most their in-flight message.
		 */
		if (killed < kills && t.received % 40 == 19) {
			for (int tries = 0; tries < 100; tries++) {
				int wst;

				for (int r; (r = cohort_queue_recv(q, mp, sizeof(*mp), 0)) > 0; )
					lq_take(&t, mp, r, n);
				for (uint64_t spin_end = mono_us() + 20 + (uint64_t)(tries * 53) % 300;
				     mono_us() < spin_end; )
					sched_yield();
				CHECK(kill(pids[2], SIGSTOP) == 0);
				CHECK(waitpid(pids[2], &wst, WUNTRACED) == pids[2]);
				CHECK_MSG(WIFSTOPPED(wst), "victim %d ended (status %d) before it was killed",
				          (int)pids[2], wst);
				kill_stops++;
				if (cohort__queue_holder(q, true) != pids[2]) {
					kill(pids[2], SIGCONT);
					continue;
				}
				CHECK(kill(pids[2], SIGKILL) == 0);
				CHECK(waitpid(pids[2], &wst, 0) == pids[2]);
				killed++;
				pids[2] = helper_spawn(lq_producer2, c);
				break;
			}
		}
		if (stalls >= want_stalls && t.received >= want && killed >= kills)
			atomic_store(&c->stop, 1);
		CHECK_MSG((stalls >= want_stalls && killed >= kills) || mono_ms() - start < 600000,
		          "%s: %u of %u stops found a live producer holding its lock, %u of %u stops "
		          "a victim, in 600 s", label, stalls, stops, killed, kill_stops);
		int r = cohort_queue_recv(q, mp, sizeof(*mp), 200);
		if (r == COHORT_ETIMEDOUT && (settled == (uint64_t)LQ_PRODUCERS * n ||
		                              (atomic_load(&c->stop) && lq_all_done(c))))
			break;
		CHECK_MSG(mono_ms() - start < 600000, "%s: not done within 600 s", label);
		if (r == COHORT_ETIMEDOUT)
			continue;
		CHECK_MSG(r > 0, "recv: %d (%s)", r, cohort_strerror(r));
		lq_take(&t, mp, r, n);
	}
	uint64_t inflight_lost = 0, seen2 = 0;
	for (int p = 0; p < LQ_PRODUCERS; p++) {
		check_helper_ok(pids[p]);
		if (p == 2 && lq_victims) {
			/* Each sequence number is one send: returned 0, or in flight at a kill. */
			for (uint32_t s = 0; s < atomic_load(&c->next2) && s < LQ_VICTIM_MAX; s++) {
				seen2 += t.seen[p][s];
				if (!t.seen[p][s])
					*(atomic_load(&c->ok2[s]) ? &lost : &inflight_lost) += 1;
			}
		} else {
			/* A producer's sends are in order: the first sent[p] sequence numbers returned 0. */
			for (uint32_t s = 0; s < atomic_load(&c->sent[p]); s++)
				lost += !t.seen[p][s];
		}
		free(t.seen[p]);
	}
	CHECK_OK(cohort_queue_stats(q, &st));
	printf("%s: %u producers, %u stalls of a live holder (%u stops), %u victims killed holding "
	       "the lock (%u stops), %" PRIu64 " victims' in-flight messages lost, %" PRIu64 " received, %"
	       PRIu64 " lost, %" PRIu64 " torn, %" PRIu64 " duplicated, %" PRIu64
	       " locks taken over, %u failed sends, %.1f s\n",
	       label, LQ_PRODUCERS, stalls, stops, killed, kill_stops, inflight_lost, t.received, lost, t.torn, t.dup, st.recovered,
	       atomic_load(&c->failed[0]) + atomic_load(&c->failed[1]) + atomic_load(&c->failed[2]),
	       (double)(mono_ms() - start) / 1000);
	fflush(stdout);
	if (test_stress()) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/shm-kill-figures.txt", test_build_dir());
		f = fopen(path, "a");
		if (f) {
			fprintf(f, "%s: %u producers, %u stalls of a live holder (%u stops), %u victims killed "
			        "holding the lock (%u stops, %" PRIu64 " in-flight lost): %" PRIu64
			        " received, %" PRIu64 " lost, %" PRIu64 " torn, %" PRIu64 " duplicated, %"
			        PRIu64 " locks taken over\n", label, LQ_PRODUCERS, stalls, stops, killed, kill_stops, inflight_lost, t.received, lost,
			        t.torn, t.dup, st.recovered);
			fclose(f);
		}
	}
	for (int p = 0; p < LQ_PRODUCERS; p++)
		CHECK_EQ(atomic_load(&c->failed[p]), 0);
	CHECK_EQ(t.torn, 0);
	CHECK_EQ(t.dup, 0);
	CHECK_EQ(lost, 0);
	CHECK_EQ(t.received, (uint64_t)atomic_load(&c->sent[0]) + atomic_load(&c->sent[1]) +
	                     (lq_victims ? seen2 : atomic_load(&c->sent[2])));
	CHECK_GE(t.received, want);
	/* Locks were taken over from the killed victims only, and their losses are counted. */
	CHECK_EQ(st.recovered, killed);
	/*
	 * A victim killed after taking the lock but before it began writing
	 * (marked its side busy) loses a message it never started: not
	 * counted. Every counted loss is one of those in flight.
	 */
	CHECK_LE(st.lost_send, inflight_lost);
	CHECK_LE(inflight_lost, killed);
	if (!killed)
		CHECK_EQ(st.last_dead, 0);
	CHECK_GE(stalls, want_stalls);
	free(mp);
	return true;
}

static uint32_t live_messages(void)
{
	return test_stress() ? 300000 : 3000;
}

static unsigned live_stalls(void)
{
	return test_stress() ? 100 : 2;
}

TEST_TIMEOUT(harden_queue_thread_exit_producer_keeps_its_lock, 900)
{
	run_live_producers(true, false, live_messages(), live_stalls(), 0, "thread-exit producer");
}

TEST_TIMEOUT(harden_queue_pidns_producer_keeps_its_lock, 900)
{
	if (!run_live_producers(false, true, live_messages(), live_stalls(), 0, "pid-namespace producer"))
		SKIP("no new pid namespace here (needs root)");
}

TEST_TIMEOUT(harden_queue_live_peers_beside_killed_producers, 900)
{
	lq_victims = true;
	if (!run_live_producers(true, true, live_messages(), live_stalls(), test_stress() ? 50 : 5,
	                        "thread-exit and pid-namespace producers beside killed ones"))
		SKIP("no new pid namespace here (needs root)");
}

TEST_TIMEOUT(harden_queue_thread_exit_and_pidns_producers_together, 900)
{
	if (!run_live_producers(true, true, live_messages(), live_stalls(), 0, "thread-exit and pid-namespace producers"))
		SKIP("no new pid namespace here (needs root)");
}

/* ---- a dead holder whose pid is taken again is dead ---- */

struct reuse_case {
	cohort_sem_t sem;
	_Alignas(64) unsigned char mem[COHORT_QUEUE_HEADER + 8192];
	_Atomic uint32_t step;
	_Atomic int32_t holder, reuser;        /* their pids in the namespace */
	_Atomic uint64_t holder_ticks, reuser_ticks;
	_Atomic int32_t sem_wait, sem_dead, reaped, units;
	_Atomic int32_t send, recovered, last_dead;
	_Atomic int32_t fail;                  /* where it went wrong, 0: nowhere */
};

static struct reuse_case *reuse;

/* Make the next fork in our pid namespace get pid want (root, ns_last_pid). */
static bool next_pid_is(pid_t want)
{
	char buf[32];
	int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	int len = snprintf(buf, sizeof(buf), "%d", (int)want - 1);
	bool ok = fd >= 0 && write(fd, buf, (size_t)len) == len;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* The process that takes the pid: it only lives on, as an unrelated process would. */
static void reuser_main(void)
{
	atomic_store(&reuse->reuser, getpid());
	atomic_store(&reuse->reuser_ticks, self_ticks());
	wait_flag(&reuse->step, 2, 30000);
	_exit(0);
}

static pid_t reuse_pid(pid_t pid)
{
	if (!next_pid_is(pid))
		return -1;
	pid_t r = fork();
	if (r == 0)
		reuser_main();
	return r;
}

static void fail_at(int where)
{
	atomic_store(&reuse->fail, where);
	atomic_store(&reuse->step, 2);
	_exit(0);
}

/*
 * pid 1 of a new namespace: a holder takes the semaphore's one unit and
 * dies; its pid is given to a new process at once (same clock tick, most
 * often: same start time); then a holder of the producers' lock is killed
 * inside a send and its pid too is given away. The waiter, here, must find
 * both dead.
 */
static void reuse_ns_main(void *arg)
{
	cohort_queue_t *q;
	int st;

	(void)arg;
	/* 1. The semaphore. */
	pid_t h = fork();
	if (h == 0) {
		if (cohort_sem_wait(&reuse->sem, 5000) != 0)
			_exit(1);
		atomic_store(&reuse->holder, getpid());
		atomic_store(&reuse->holder_ticks, self_ticks());
		_exit(0);   /* dies holding the unit: no post, no detach */
	}
	if (h < 0 || waitpid(h, &st, 0) != h || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_at(1);
	pid_t s = reuse_pid(h);
	if (s != h)
		fail_at(2);
	atomic_store(&reuse->sem_wait, cohort_sem_wait(&reuse->sem, 5000));
	atomic_store(&reuse->sem_dead, cohort_sem_dead(&reuse->sem));
	unsigned units = 0;
	atomic_store(&reuse->reaped, cohort_sem_reap(&reuse->sem, &units));
	atomic_store(&reuse->units, (int32_t)units);

	/* 2. The queue: stop a producer until its lock word names it, then kill it. */
	if (cohort_queue_open(reuse->mem, sizeof(reuse->mem), &q) != 0)
		fail_at(3);
	pid_t p = fork();
	if (p == 0) {
		static char msg[1000];

		for (;;)
			cohort_queue_send(q, msg, sizeof(msg), -1);
	}
	bool killed = false;
	for (int tries = 0; tries < 200000 && !killed; tries++) {
		char buf[1024];

		while (cohort_queue_recv(q, buf, sizeof(buf), 0) > 0)
			;
		for (int i = 0; i < tries % 50; i++)
			sched_yield();
		kill(p, SIGSTOP);
		if (waitpid(p, &st, WUNTRACED) != p || !WIFSTOPPED(st))
			fail_at(4);
		if (cohort__queue_holder(q, true) == p) {
			kill(p, SIGKILL);
			waitpid(p, &st, 0);
			killed = true;
		} else {
			kill(p, SIGCONT);
		}
	}
	if (!killed)
		fail_at(5);
	pid_t s2 = reuse_pid(p);
	if (s2 != p)
		fail_at(6);
	static char msg[100];
	atomic_store(&reuse->send, cohort_queue_send(q, msg, sizeof(msg), 5000));
	/* Its claim is met by whoever reaches its slot: a consumer draining the queue. */
	for (char buf[1024]; cohort_queue_recv(q, buf, sizeof(buf), 0) > 0; )
		;
	struct cohort_queue_stats qs;
	cohort_queue_stats(q, &qs);
	atomic_store(&reuse->recovered, (int32_t)qs.recovered);
	atomic_store(&reuse->last_dead, qs.last_dead);
	atomic_store(&reuse->step, 2);
	waitpid(s, &st, 0);
	waitpid(s2, &st, 0);
}

TEST_TIMEOUT(harden_pid_reuse_does_not_keep_a_dead_holder_alive, 120)
{
	struct nsrun *n = shared_mem(sizeof(*n));
	cohort_queue_t *q;
	pid_t pid;

	reuse = shared_mem(sizeof(*reuse));
	CHECK_OK(cohort_sem_init(&reuse->sem, 1));
	CHECK_OK(cohort_queue_init(reuse->mem, sizeof(reuse->mem), &q));
	pid = spawn_in_pidns(n, reuse_ns_main, NULL);
	if (!pid)
		SKIP("no new pid namespace here (needs root)");
	check_helper_ok(pid);
	CHECK_EQ(atomic_load(&reuse->fail), 0);
	printf("semaphore holder pid %d started at tick %" PRIu64 ", its reuser at tick %" PRIu64
	       " (%s)\n", (int)atomic_load(&reuse->holder), atomic_load(&reuse->holder_ticks),
	       atomic_load(&reuse->reuser_ticks),
	       atomic_load(&reuse->holder_ticks) == atomic_load(&reuse->reuser_ticks) ?
	       "the same: a start time cannot tell them apart" : "not the same tick");
	CHECK_EQ(atomic_load(&reuse->sem_wait), COHORT_EPEERDEAD);
	CHECK_EQ(atomic_load(&reuse->sem_dead), atomic_load(&reuse->holder));
	CHECK_EQ(atomic_load(&reuse->reaped), 1);
	CHECK_EQ(atomic_load(&reuse->units), 1);
	CHECK_EQ(cohort_sem_wait(&reuse->sem, 0), 0);
	CHECK_EQ(atomic_load(&reuse->send), 0);
	CHECK_EQ(atomic_load(&reuse->recovered), 1);
	CHECK_GT(atomic_load(&reuse->last_dead), 1);
}

/* ---- shm gc and a job in another pid namespace ---- */

struct gc_case {
	_Atomic uint32_t step;
	_Atomic int32_t job_pid;     /* the job's pid in its namespace */
	_Atomic int32_t created, reopened;
	char job[COHORT_ID_MAX];
	char dir[1024];              /* the segment directory: this test's own, not /dev/shm */
};

static struct gc_case *gcc;

/* A pid free here (no process has it), to be the job's pid in its namespace. */
static pid_t free_host_pid(void)
{
	for (pid_t p = 30000 + (getpid() % 1000) * 7; p < 4000000; p += 977) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d", (int)p);
		if (access(path, F_OK) != 0)
			return p;
	}
	return 0;
}

static void gc_job_main(void)
{
	struct cohort_seg_options o = { .dir = gcc->dir };
	struct cohort_seg *s;

	unsetenv("COHORT_JOB");
	unsetenv("SLURM_JOB_ID");
	atomic_store(&gcc->job_pid, getpid());
	cohort_seg_job(&o, gcc->job, sizeof(gcc->job));
	atomic_store(&gcc->created, cohort_seg_create("gcjob", 4096, &o, &s));
	if (atomic_load(&gcc->created) == 0)
		cohort_seg_close(s);   /* unmapped and closed: only the job's liveness keeps it */
	atomic_store(&gcc->step, 1);
	if (!wait_flag(&gcc->step, 2, 60000))
		_exit(1);
	int r = cohort_seg_open("gcjob", &o, &s);
	atomic_store(&gcc->reopened, r);
	if (r == 0)
		cohort_seg_close(s);
	cohort_seg_unlink("gcjob", &o);
}

static void gc_ns_main(void *arg)
{
	pid_t want = *(pid_t *)arg;
	int st;

	if (!next_pid_is(want)) {
		atomic_store(&gcc->created, -1000);
		atomic_store(&gcc->step, 1);
		return;
	}
	pid_t j = fork();
	if (j == 0) {
		gc_job_main();
		_exit(0);
	}
	waitpid(j, &st, 0);
}

TEST_TIMEOUT(harden_shm_gc_keeps_a_pidns_jobs_segment, 120)
{
	struct nsrun *n = shared_mem(sizeof(*n));
	static pid_t want;
	char path[4096];
	struct cmd_result res;
	pid_t pid;

	gcc = shared_mem(sizeof(*gcc));
	snprintf(gcc->dir, sizeof(gcc->dir), "%s", test_tmpdir());
	want = free_host_pid();
	CHECK(want > 0);
	pid = spawn_in_pidns(n, gc_ns_main, &want);
	if (!pid)
		SKIP("no new pid namespace here (needs root)");
	await(&gcc->step, 1);
	CHECK_EQ(atomic_load(&gcc->created), 0);
	CHECK_EQ(atomic_load(&gcc->job_pid), want);
	snprintf(path, sizeof(path), "%s/cohort.%u.%s.gcjob", gcc->dir, (unsigned)getuid(), gcc->job);
	CHECK_MSG(access(path, F_OK) == 0, "%s missing", path);
	/* Here, pid `want` is nobody: a pid would call the job gone. Its lease says it runs. */
	cmd_run(&res, "COHORT_ROOT_SHM='%s' %s/cohort shm gc --json", gcc->dir, test_build_dir());
	CHECK_EQ(res.status, 0);
	CHECK_MSG(access(path, F_OK) == 0, "gc removed the live job's %s:\n%s", path, res.out);
	CHECK_CONTAINS(res.out, "its job still runs");
	cmd_free(&res);
	atomic_store(&gcc->step, 2);
	check_helper_ok(pid);
	CHECK_EQ(atomic_load(&gcc->reopened), 0);
	CHECK_MSG(access(path, F_OK) != 0, "%s left behind", path);
}
