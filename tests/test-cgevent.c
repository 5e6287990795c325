/*
 * test-cgevent.c - memory cgroup notifications: real v1 cgroups with a
 * process that runs into the limit or past a threshold, a v2 tree copied
 * from a fixture whose memory.events the test rewrites, and bad input.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Notifications that must come: generous, for a loaded 2-CPU machine. */
#define COME_MS 20000
/* "Nothing happens" checks: a short wait is enough, load cannot make a notification appear. */
#define QUIET_MS 300

/* poll the event's descriptor: 1 readable, 0 timed out. */
static int wait_readable(const struct cohort_cgevent *ev, int timeout_ms)
{
	struct pollfd p = { .fd = cohort_cgevent_fd(ev), .events = POLLIN };
	int r;

	CHECK(p.fd >= 0);
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	CHECK_MSG(r >= 0, "poll: %s", strerror(errno));
	if (r > 0)
		CHECK_MSG(p.revents & POLLIN, "poll revents 0x%x", p.revents);
	return r;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- real v1 memory cgroups ---- */

/* Write a cgroup file; a file the kernel does not have (no swap accounting) is no error. */
static bool set_file(const char *dir, const char *file, const char *text)
{
	char path[COHORT_PATH_MAX + 64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text);
}

/*
 * A v1 memory cgroup for one test, under the runner's own, or a skip that
 * says why there is none.
 */
static void v1_cgroup(struct cohort_workcg *cg, const char *what, uint64_t limit)
{
	char name[64], text[32];
	int r;

	if (geteuid() != 0)
		SKIP("a real memory cgroup needs root here");
	if (access("/sys/fs/cgroup/memory/cgroup.event_control", F_OK) != 0)
		SKIP("no cgroup v1 memory controller with cgroup.event_control at /sys/fs/cgroup/memory");
	snprintf(name, sizeof(name), "cohort-cgevent-%s-%d", what, (int)getpid());
	r = cohort_workcg_create(NULL, NULL, name, limit, cg);
	if (r == COHORT_ENOCGROUP)
		SKIP("the runner has no memory cgroup");
	CHECK_OK(r);
	CHECK_EQ(cg->version, 1);
	/*
	 * Swap may be turned on while the test runs (other tests do): the
	 * limit must then still end in the OOM killer, not in swapping out.
	 */
	snprintf(text, sizeof(text), "%" PRIu64, limit);
	if (!set_file(cg->dir, "memory.swappiness", "0") ||
	    (limit && !set_file(cg->dir, "memory.memsw.limit_in_bytes", text))) {
		int e = errno;

		cohort_workcg_remove(cg);
		CHECK_MSG(0, "cannot keep %s from swapping: %s", cg->dir, strerror(e));
	}
}

/* Kill whatever is left in the cgroup and remove it; the body's failure stands. */
static void v1_cgroup_remove(struct cohort_workcg *cg)
{
	uint64_t deadline = now_ms() + 10000;

	for (;;) {
		pid_t *pids = NULL;
		size_t n = 0;

		if (cohort_pids_cgroup(NULL, cg->dir, &pids, &n) < 0 || n == 0) {
			cohort_pids_free(pids);
			break;
		}
		for (size_t i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		cohort_pids_free(pids);
		if (now_ms() > deadline)
			break;
		usleep(10000);
	}
	CHECK_OK(cohort_workcg_remove(cg));
}

/*
 * Run body(cg) in a child and remove the cgroup afterwards, whatever the
 * body did: its CHECKs fail the test, its SKIPs skip it.
 */
static void with_v1_cgroup(const char *what, uint64_t limit, void (*body)(void *))
{
	struct cohort_workcg cg;
	pid_t pid;
	int st;

	v1_cgroup(&cg, what, limit);
	pid = helper_spawn(body, &cg);
	st = helper_wait(pid, 50000);
	if (st == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	v1_cgroup_remove(&cg);
	CHECK_MSG(st != -1, "the test body timed out");
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		SKIP(" (skipped in the test body)");
	CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the test body failed (status 0x%x)", st);
}

struct hog {
	const struct cohort_workcg *cg;
	size_t bytes;          /* touched, one write per page */
	int hold;              /* then sleep until killed, else exit */
	int ready_fd;          /* written once attached, -1 for none */
};

/* Into the cgroup, then allocate; only new pages are charged to it. */
static void hog_main(void *arg)
{
	struct hog *h = arg;
	char *p;

	if (cohort_workcg_add_pid(h->cg, 0) < 0)
		_exit(10);
	if (h->ready_fd >= 0 && write(h->ready_fd, "x", 1) != 1)
		_exit(11);
	p = malloc(h->bytes);
	if (!p)
		_exit(12);
	for (size_t i = 0; i < h->bytes; i += 4096)
		((volatile char *)p)[i] = 1;
	while (h->hold)
		pause();
	free(p);
}

static pid_t hog_start(const struct cohort_workcg *cg, size_t bytes, int hold)
{
	struct hog h = { cg, bytes, hold, -1 };
	int pfd[2];
	char c;
	pid_t pid;

	CHECK(pipe2(pfd, O_CLOEXEC) == 0);
	h.ready_fd = pfd[1];
	pid = helper_spawn(hog_main, &h);
	close(pfd[1]);
	CHECK_MSG(read(pfd[0], &c, 1) == 1, "the allocating child did not reach its cgroup");
	close(pfd[0]);
	return pid;
}

static void body_v1_oom_kill(void *arg)
{
	const struct cohort_workcg *cg = arg;
	struct cohort_cgevent *ev = NULL;
	struct cohort_cgevent_info info;
	uint64_t kills = 0, ooms = 0, deadline;
	pid_t pid;
	int st;

	CHECK_OK(cohort_cgevent_open(NULL, cg->dir, 0, &ev));
	CHECK_EQ(wait_readable(ev, QUIET_MS), 0);
	CHECK_EQ(cohort_cgevent_read(ev, &info), 0);
	CHECK_EQ(info.version, 1);
	CHECK_EQ_U64(info.oom_kill, 0);
	CHECK_EQ_U64(info.oom_kill_new, 0);

	/* 256 MiB into a 32 MiB cgroup without swap: the OOM killer must act. */
	pid = hog_start(cg, 256 << 20, 0);
	deadline = now_ms() + COME_MS;
	/*
	 * The OOM notification may come a moment before the kill is counted;
	 * then the descriptor wakes again when the recheck finds it.
	 */
	while (kills == 0) {
		int left = (int)(deadline > now_ms() ? deadline - now_ms() : 0);
		int r;

		CHECK_MSG(wait_readable(ev, left) == 1,
		          "no notification within %d ms (OOM notifications %" PRIu64 ")", COME_MS, ooms);
		r = cohort_cgevent_read(ev, &info);
		CHECK_OK(r);
		if (r == 0)
			continue;
		kills += info.oom_kill_new;
		ooms += info.oom_new;
		CHECK_EQ(info.threshold_crossed, 0);
		CHECK_EQ_U64(info.max_events_new, 0);
		CHECK_EQ_U64(info.high_events_new, 0);
		CHECK_MSG(info.peak <= (32 << 20), "peak %" PRIu64 " above the 32 MiB limit", info.peak);
	}
	CHECK_MSG(kills >= 1 && ooms >= 1, "kills %" PRIu64 ", OOM notifications %" PRIu64, kills, ooms);
	CHECK(info.oom_kill >= 1);
	CHECK(info.peak > 0);
	st = helper_wait(pid, COME_MS);
	CHECK_MSG(st != -1, "the allocating child was not killed");
	CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child ended with status 0x%x", st);
	cohort_cgevent_close(ev);
}

TEST_TIMEOUT(cgevent_v1_oom_kill_notified, 60)
{
	with_v1_cgroup("oom", 32 << 20, body_v1_oom_kill);
}

/* An OOM in a cgroup below the one watched: v1 counts the kill there only, the sum finds it. */
static void body_v1_oom_kill_below(void *arg)
{
	const struct cohort_workcg *cg = arg;
	struct cohort_workcg child;
	struct cohort_cgevent *ev = NULL;
	struct cohort_cgevent_info info;
	uint64_t kills = 0, deadline;
	pid_t pid;
	int st;

	CHECK_OK(cohort_workcg_create(NULL, cg->dir, "task_0", 0, &child));
	CHECK_OK(cohort_cgevent_open(NULL, cg->dir, 0, &ev));
	pid = hog_start(&child, 256 << 20, 0);
	deadline = now_ms() + COME_MS;
	while (kills == 0) {
		int left = (int)(deadline > now_ms() ? deadline - now_ms() : 0);

		CHECK_MSG(wait_readable(ev, left) == 1, "no notification within %d ms", COME_MS);
		CHECK_OK(cohort_cgevent_read(ev, &info));
		kills += info.oom_kill_new;
	}
	CHECK_EQ_U64(kills, 1);
	st = helper_wait(pid, COME_MS);
	CHECK_MSG(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the child ended with status 0x%x", st);
	cohort_cgevent_close(ev);
}

TEST_TIMEOUT(cgevent_v1_oom_kill_in_a_cgroup_below, 60)
{
	with_v1_cgroup("below", 32 << 20, body_v1_oom_kill_below);
}

static void body_v1_threshold(void *arg)
{
	const struct cohort_workcg *cg = arg;
	const uint64_t threshold = 16 << 20;
	struct cohort_cgevent *ev = NULL;
	struct cohort_cgevent_info info;
	pid_t pid;
	int st, r;

	CHECK_OK(cohort_cgevent_open(NULL, cg->dir, threshold, &ev));
	CHECK_EQ(wait_readable(ev, QUIET_MS), 0);

	/* 48 MiB, held: past the 16 MiB threshold, well below the 128 MiB limit. */
	pid = hog_start(cg, 48 << 20, 1);
	CHECK_MSG(wait_readable(ev, COME_MS) == 1, "no notification within %d ms", COME_MS);
	r = cohort_cgevent_read(ev, &info);
	CHECK_EQ(r, 1);
	CHECK_EQ(info.threshold_crossed, 1);
	CHECK_EQ_U64(info.oom_kill_new, 0);
	CHECK_EQ_U64(info.oom_new, 0);
	CHECK_MSG(info.peak >= threshold, "peak %" PRIu64 " below the threshold", info.peak);

	/* Once it is gone, usage falls back: a crossing downward, which is not "crossed". */
	kill(pid, SIGKILL);
	st = helper_wait(pid, COME_MS);
	CHECK(st != -1 && WIFSIGNALED(st));
	for (uint64_t deadline = now_ms() + COME_MS;;) {
		int left = (int)(deadline > now_ms() ? deadline - now_ms() : 0);

		CHECK_MSG(wait_readable(ev, left) == 1, "no notification of the fall within %d ms", COME_MS);
		r = cohort_cgevent_read(ev, &info);
		CHECK_OK(r);
		CHECK_EQ(info.threshold_crossed, 0);
		if (r == 1)
			break;
	}
	CHECK_MSG(info.usage < threshold, "usage %" PRIu64 " after the child died", info.usage);
	CHECK_EQ_U64(info.oom_kill_new, 0);
	/* And then quiet again. */
	CHECK_EQ(wait_readable(ev, QUIET_MS), 0);
	cohort_cgevent_close(ev);
}

TEST_TIMEOUT(cgevent_v1_threshold_crossed, 60)
{
	with_v1_cgroup("thr", 128 << 20, body_v1_threshold);
}

static void body_v1_quiet(void *arg)
{
	const struct cohort_workcg *cg = arg;
	struct cohort_cgevent *ev = NULL, *ev2 = NULL;
	struct cohort_cgevent_info info;
	pid_t pid;
	int st;

	CHECK_OK(cohort_cgevent_open(NULL, cg->dir, 64 << 20, &ev));
	/* Two watchers of one cgroup, each with its own descriptor. */
	CHECK_OK(cohort_cgevent_open(NULL, cg->dir, 0, &ev2));
	CHECK(cohort_cgevent_fd(ev) != cohort_cgevent_fd(ev2));
	CHECK(fcntl(cohort_cgevent_fd(ev), F_GETFD) & FD_CLOEXEC);
	/* A process that stays below the threshold and the limit wakes nobody. */
	pid = hog_start(cg, 8 << 20, 0);
	st = helper_wait(pid, COME_MS);
	CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status 0x%x", st);
	CHECK_EQ(wait_readable(ev, QUIET_MS), 0);
	CHECK_EQ(wait_readable(ev2, 0), 0);
	CHECK_EQ(cohort_cgevent_read(ev, &info), 0);
	CHECK_EQ(info.threshold_crossed, 0);
	CHECK_EQ_U64(info.oom_kill_new, 0);
	CHECK_EQ_U64(info.oom_new, 0);
	CHECK_MSG(info.peak >= (8 << 20) && info.peak < (64 << 20), "peak %" PRIu64, info.peak);
	cohort_cgevent_close(ev2);
	cohort_cgevent_close(ev);
}

TEST_TIMEOUT(cgevent_v1_nothing_happens, 60)
{
	with_v1_cgroup("quiet", 128 << 20, body_v1_quiet);
}

/* ---- v2, from a copy of a captured tree ---- */

#define JOB43 "system.slice/slurmstepd.scope/job_43"

/* A copy of tests/fixtures/cgroup-v2 in the test's directory, as the probe's cgroup root. */
static struct cohort_probe v2_copy(char *root, size_t size)
{
	struct cohort_probe p = { 0 };
	struct cmd_result r;

	snprintf(root, size, "%s/cgroup-v2", test_tmpdir());
	cmd_run(&r, "cp -r %s/tests/fixtures/cgroup-v2 %s", test_src_dir(), root);
	CHECK_MSG(r.status == 0, "cp: %s", r.err);
	cmd_free(&r);
	p.cgroup_root = root;
	return p;
}

static void write_events(const char *root, const char *text)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/" JOB43 "/memory.events", root);
	write_file(path, "%s", text);
}

TEST(cgevent_v2_fixture_oom_kill)
{
	char root[512], dir[1024];
	struct cohort_probe p = v2_copy(root, sizeof(root));
	struct cohort_cgevent *ev = NULL;
	struct cohort_cgevent_info info;

	snprintf(dir, sizeof(dir), "%s/" JOB43, root);
	CHECK_OK(cohort_cgevent_open(&p, dir, 0, &ev));
	CHECK_EQ(wait_readable(ev, QUIET_MS), 0);
	CHECK_EQ(cohort_cgevent_read(ev, &info), 0);
	CHECK_EQ(info.version, 2);
	CHECK_EQ_U64(info.oom_kill, 2);
	CHECK_EQ_U64(info.oom_kill_new, 0);
	CHECK_EQ_U64(info.usage, 325058560);
	CHECK_EQ_U64(info.peak, 1575903232);

	write_events(root, "low 0\nhigh 3\nmax 40\noom 5\noom_kill 5\noom_group_kill 0\n");
	CHECK_EQ(wait_readable(ev, COME_MS), 1);
	CHECK_EQ(cohort_cgevent_read(ev, &info), 1);
	CHECK_EQ_U64(info.oom_kill, 5);
	CHECK_EQ_U64(info.oom_kill_new, 3);
	CHECK_EQ_U64(info.oom_new, 2);
	CHECK_EQ_U64(info.max_events_new, 9);
	CHECK_EQ_U64(info.high_events_new, 3);
	CHECK_EQ(info.threshold_crossed, 0);
	/* Consumed: quiet again, and the next read counts from here. */
	CHECK_EQ(wait_readable(ev, QUIET_MS), 0);
	CHECK_EQ(cohort_cgevent_read(ev, &info), 0);
	CHECK_EQ_U64(info.oom_kill_new, 0);
	CHECK_EQ_U64(info.max_events_new, 0);

	/* Only 'max' rose: readable, no kill. */
	write_events(root, "low 0\nhigh 3\nmax 41\noom 5\noom_kill 5\noom_group_kill 0\n");
	CHECK_EQ(wait_readable(ev, COME_MS), 1);
	CHECK_EQ(cohort_cgevent_read(ev, &info), 1);
	CHECK_EQ_U64(info.oom_kill_new, 0);
	CHECK_EQ_U64(info.max_events_new, 1);
	cohort_cgevent_close(ev);

	/* Given as a path inside the hierarchy, as /proc/PID/cgroup names it. */
	CHECK_OK(cohort_cgevent_open(&p, "/" JOB43, 0, &ev));
	CHECK_EQ(cohort_cgevent_read(ev, &info), 0);
	CHECK_EQ_U64(info.oom_kill, 5);
	cohort_cgevent_close(ev);
}

TEST(cgevent_v2_fixture_threshold)
{
	char root[512], dir[1024], path[1200];
	struct cohort_probe p = v2_copy(root, sizeof(root));
	struct cohort_cgevent *ev = NULL;
	struct cohort_cgevent_info info;

	snprintf(dir, sizeof(dir), "%s/" JOB43, root);
	/* No peak file (a kernel before 5.19): peak 0; judged from memory.current alone. */
	snprintf(path, sizeof(path), "%s/memory.peak", dir);
	CHECK(unlink(path) == 0);
	CHECK_OK(cohort_cgevent_open(&p, dir, 400 << 20, &ev));
	CHECK_EQ(cohort_cgevent_read(ev, &info), 0);
	CHECK_EQ_U64(info.peak, 0);
	CHECK_EQ(info.threshold_crossed, 0);

	/* v2 has no usage thresholds: usage rising alone notifies nothing... */
	snprintf(path, sizeof(path), "%s/memory.current", dir);
	write_file(path, "%d\n", 500 << 20);
	CHECK_EQ(wait_readable(ev, QUIET_MS), 0);
	/* ...the next memory.events change (here 'high') is when it is judged. */
	write_events(root, "low 0\nhigh 1\nmax 31\noom 3\noom_kill 2\noom_group_kill 0\n");
	CHECK_EQ(wait_readable(ev, COME_MS), 1);
	CHECK_EQ(cohort_cgevent_read(ev, &info), 1);
	CHECK_EQ(info.threshold_crossed, 1);
	CHECK_EQ_U64(info.high_events_new, 1);
	CHECK_EQ_U64(info.usage, 500 << 20);
	/* Still above: no new crossing. */
	write_events(root, "low 0\nhigh 2\nmax 31\noom 3\noom_kill 2\noom_group_kill 0\n");
	CHECK_EQ(wait_readable(ev, COME_MS), 1);
	CHECK_EQ(cohort_cgevent_read(ev, &info), 1);
	CHECK_EQ(info.threshold_crossed, 0);
	cohort_cgevent_close(ev);

	/* With memory.peak: a peak past the threshold is a crossing even when usage came down. */
	snprintf(path, sizeof(path), "%s/memory.peak", dir);
	write_file(path, "%d\n", 300 << 20);
	snprintf(path, sizeof(path), "%s/memory.current", dir);
	write_file(path, "%d\n", 200 << 20);
	CHECK_OK(cohort_cgevent_open(&p, dir, 400 << 20, &ev));
	snprintf(path, sizeof(path), "%s/memory.peak", dir);
	write_file(path, "%d\n", 450 << 20);
	write_events(root, "low 0\nhigh 3\nmax 31\noom 3\noom_kill 2\noom_group_kill 0\n");
	CHECK_EQ(wait_readable(ev, COME_MS), 1);
	CHECK_EQ(cohort_cgevent_read(ev, &info), 1);
	CHECK_EQ(info.threshold_crossed, 1);
	CHECK_EQ_U64(info.usage, 200 << 20);
	CHECK_EQ_U64(info.peak, 450 << 20);
	cohort_cgevent_close(ev);
}

/* ---- bad input ---- */

TEST(cgevent_bad_input)
{
	char root[512], dir[1024], v1[1024];
	struct cohort_probe p = v2_copy(root, sizeof(root));
	struct cohort_probe q = { 0 };
	struct cohort_cgevent *ev = (struct cohort_cgevent *)&p;   /* must stay as it is on failure */
	struct cohort_cgevent_info info;

	CHECK_EQ(cohort_cgevent_open(&p, NULL, 0, &ev), -EINVAL);
	CHECK_EQ(cohort_cgevent_open(&p, "", 0, &ev), -EINVAL);
	CHECK_EQ(cohort_cgevent_open(&p, "/" JOB43, 0, NULL), -EINVAL);
	CHECK_EQ(cohort_cgevent_open(&p, "/system.slice/../" JOB43, 0, &ev), -EINVAL);
	CHECK_EQ(cohort_cgevent_open(&p, "/no/such/cgroup", 0, &ev), -ENOENT);
	snprintf(dir, sizeof(dir), "%s/nowhere", root);
	CHECK_EQ(cohort_cgevent_open(&p, dir, 0, &ev), -ENOENT);
	/* A file, not a directory. */
	snprintf(dir, sizeof(dir), "%s/" JOB43 "/memory.events", root);
	CHECK_EQ(cohort_cgevent_open(&p, dir, 0, &ev), -ENOTDIR);
	/* Directories without memory files: a cgroup without the controller, the v2 root, a plain one. */
	CHECK_EQ(cohort_cgevent_open(&p, "/user.slice", 0, &ev), -EOPNOTSUPP);
	CHECK_EQ(cohort_cgevent_open(&p, root, 0, &ev), -EOPNOTSUPP);
	snprintf(dir, sizeof(dir), "%s/plain", test_tmpdir());
	CHECK(mkdir(dir, 0755) == 0);
	q.cgroup_root = test_tmpdir();
	CHECK_EQ(cohort_cgevent_open(&q, dir, 0, &ev), -EOPNOTSUPP);
	/* A v2 cgroup without memory.events (step_0 of the fixture has memory.current only). */
	CHECK_EQ(cohort_cgevent_open(&p, "/" JOB43 "/step_0", 0, &ev), -EOPNOTSUPP);
	/* A v1 tree that is a copy, not the kernel's: it could never notify. */
	snprintf(v1, sizeof(v1), "%s/tests/fixtures/cgroup-v1", test_src_dir());
	q.cgroup_root = v1;
	CHECK_EQ(cohort_cgevent_open(&q, "/slurm_node1/uid_1000/job_42", 0, &ev), -EOPNOTSUPP);
	CHECK(ev == (struct cohort_cgevent *)&p);

	/* memory.events with garbage, at open and later. */
	write_events(root, "this is not\na memory.events file\n");
	CHECK_EQ(cohort_cgevent_open(&p, "/" JOB43, 0, &ev), COHORT_EPARSE);
	write_events(root, "low 0\nhigh 0\nmax 31\noom 3\noom_kill 2\n");
	CHECK_OK(cohort_cgevent_open(&p, "/" JOB43, 0, &ev));
	write_events(root, "low 0\nhigh 0\nmax 31\noom 3\noom_kill lots\n");
	CHECK_EQ(wait_readable(ev, COME_MS), 1);
	memset(&info, 0xa5, sizeof(info));
	CHECK_EQ(cohort_cgevent_read(ev, &info), COHORT_EPARSE);
	CHECK_EQ_U64(info.oom_kill, 0xa5a5a5a5a5a5a5a5ULL);   /* untouched on error */
	/* Huge, and a number too big for 64 bits. */
	write_events(root, "low 0\nhigh 0\nmax 31\noom 3\noom_kill 99999999999999999999999\n");
	CHECK_EQ(cohort_cgevent_read(ev, &info), COHORT_EPARSE);
	/* Still usable once the file is sane again; the notification consumed by the failed read is reported. */
	write_events(root, "low 0\nhigh 0\nmax 31\noom 4\noom_kill 3\n");
	CHECK_EQ(wait_readable(ev, COME_MS), 1);
	CHECK_EQ(cohort_cgevent_read(ev, &info), 1);
	CHECK_EQ_U64(info.oom_kill, 3);
	CHECK_EQ_U64(info.oom_kill_new, 1);
	/* memory.current with garbage. */
	snprintf(dir, sizeof(dir), "%s/" JOB43 "/memory.current", root);
	write_file(dir, "12 34\n");
	CHECK_EQ(cohort_cgevent_read(ev, &info), COHORT_EPARSE);
	/* The cgroup removed: its files are gone. */
	CHECK(unlink(dir) == 0);
	CHECK_EQ(cohort_cgevent_read(ev, &info), -ENOENT);
	cohort_cgevent_close(ev);

	/* NULL everywhere else. */
	CHECK_EQ(cohort_cgevent_fd(NULL), -EINVAL);
	CHECK_EQ(cohort_cgevent_read(NULL, &info), -EINVAL);
	cohort_cgevent_close(NULL);
}

/* Many open and close cycles leave no descriptor behind. */
TEST(cgevent_no_descriptor_leak)
{
	char root[512];
	struct cohort_probe p = v2_copy(root, sizeof(root));
	struct cohort_cgevent *ev = NULL;
	int before = open("/dev/null", O_RDONLY | O_CLOEXEC), after;

	CHECK(before >= 0);
	close(before);
	for (int i = 0; i < 50; i++) {
		CHECK_OK(cohort_cgevent_open(&p, "/" JOB43, 0, &ev));
		cohort_cgevent_close(ev);
		CHECK_EQ(cohort_cgevent_open(&p, "/user.slice", 0, &ev), -EOPNOTSUPP);
	}
	after = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK_EQ(after, before);
	close(after);
}
