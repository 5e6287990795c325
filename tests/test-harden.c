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
#include <sys/ioctl.h>
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
		CHECK_CONTAINS(r.err, "was killed and left");
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
