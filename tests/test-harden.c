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
