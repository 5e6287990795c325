/*
 * test-harden.c - the supervisor under resource limits: out of file
 * descriptors, out of memory, a full disk for its recording, and thousands
 * of short-lived children with no descriptor or zombie left behind.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

	snprintf(script, sizeof(script),
	         "touch ready.$COHORT_RANK; i=0; while [ $i -lt %u ]; do /bin/true; (/bin/true &); "
	         "i=$((i + 2)); done; touch done.$COHORT_RANK; sleep 2", spawns);
	sup = start_run("-n 2 -i 0.02 -o rec.ndjson", script);
	CHECK(wait_file("ready.0", 20000) && wait_file("ready.1", 20000));
	usleep(200000);
	fds_before = count_fds(sup);
	CHECK(fds_before > 0);
	CHECK(wait_file("done.0", 240000) && wait_file("done.1", 20000));
	/* The supervisor reaps on its next tick (0.02 s); allow it a second. */
	for (int t = 0; t < 50; t++) {
		zombies = count_zombies(sup);
		if (zombies == 0)
			break;
		usleep(20000);
	}
	fds_after = count_fds(sup);
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
	CHECK_CONTAINS(err, "cannot read adir after line 0: Is a directory");
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
	cohort_sem_detach(&c->sem);
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

	if (cohort_barrier_attach(&c->bar) != 0)
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

	if (!mp || cohort_queue_attach(c->mem, sizeof(c->mem), &q) != 0)
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
	if (cohort_queue_attach(reuse->mem, sizeof(reuse->mem), &q) != 0)
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
