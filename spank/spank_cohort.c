/*
 * spank_cohort.c - a SLURM SPANK plugin that watches every task of every
 * job step with cohort, with no change to the job (docs/admin.md).
 *
 * plugstack.conf:
 *   optional /usr/local/lib/slurm/spank_cohort.so mode=record spool=/var/spool/cohort interval=1
 *   (and metrics=DIR: Prometheus textfiles for node_exporter, docs/admin.md)
 *
 * Users choose per job with --cohort=off|record|enforce (sbatch, srun,
 * salloc) or SLURM_SPANK_COHORT in the environment of those commands.
 *
 * Design: in slurmstepd (remote context) the plugin forks one helper per
 * step, `cohort spank-watch`, writes it one line per task it forks and
 * reaps, and closes the socket pair at the step's end; the helper does all
 * the watching, recording, diagnosis, enforcement (mode=enforce) and
 * AdminComment (admin_comment=yes). No
 * thread of cohort runs inside slurmstepd: a helper that crashes, stalls
 * or grows costs its own process only, the plugin waits for it a bounded
 * time at the step's end, and every failure is a line in slurmd's log,
 * never a failed step. Every hook returns success.
 *
 * The verdict of an interactive srun: in task_init, in the task's own
 * process where fd 2 is already the stderr slurmstepd forwards to srun,
 * local task 0 passes that descriptor to the helper (SCM_RIGHTS, never
 * blocking). The helper writes the step's verdict into it once the node's
 * tasks have ended and closes it: since it holds the stderr until then,
 * slurmstepd's I/O has not ended and srun prints the verdict before it
 * exits. The hold is bounded by the helper's diagnosis (and at worst by
 * wait=, when the plugin kills the helper). Batch scripts' steps do not
 * do this: their stderr is the script's output, where the batch verdict
 * goes.
 *
 * The job's end (job_epilog, in slurmd as root): the /dev/shm segments
 * cohort named for the job, cohort.<uid>.<job>.<name>, regular files of
 * the job's user, are removed and logged; nothing else is touched.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

SPANK_PLUGIN(cohort, 1);

#ifndef COHORT_BINDIR
#define COHORT_BINDIR "/usr/local/bin"
#endif

enum mode { MODE_UNSET = -1, MODE_OFF = 0, MODE_RECORD, MODE_ENFORCE };

static enum mode site_mode = MODE_RECORD;
static enum mode user_mode = MODE_UNSET;
static char spool[512] = "/var/spool/cohort";
static char cohort_bin[512] = COHORT_BINDIR "/cohort";
static char interval[32] = "1";
static char metrics_dir[512] = "";      /* "": no metrics */
static double wait_s = 10;
static int admin_comment;               /* admin_comment=yes: the summary into AdminComment */
static char scontrol_bin[512] = "scontrol";
static char cpu_budget[32];             /* cpu_budget=PERCENT for the helper, "" default */

static pid_t helper = -1;
static int helper_fd = -1;

static int parse_mode(const char *s, enum mode *ret)
{
	if (!strcmp(s, "off"))
		*ret = MODE_OFF;
	else if (!strcmp(s, "record"))
		*ret = MODE_RECORD;
	else if (!strcmp(s, "enforce"))
		*ret = MODE_ENFORCE;
	else
		return -1;
	return 0;
}

static int opt_cb(int val, const char *optarg, int remote)
{
	enum mode m;

	if (!optarg || parse_mode(optarg, &m) < 0) {
		slurm_error("cohort: --cohort=%s: expected off, record or enforce", optarg ? optarg : "");
		return -1;     /* on the submitting side: the user's typo is said there */
	}
	user_mode = m;
	return 0;
}

static char opt_name[] = "cohort", opt_arg[] = "off|record|enforce",
            opt_usage[] = "cohort watches this job's tasks: off, record (the site's default), enforce";
static struct spank_option opt = { opt_name, opt_arg, opt_usage, 2, 0, opt_cb };

/* A literal as an argv word (execv wants char *). */
#define ARG(lit) do { static char a_[] = lit; argv[k++] = a_; } while (0)

static void copy_arg(char *dst, size_t size, const char *val, const char *name)
{
	if (strlen(val) >= size) {
		slurm_error("cohort: plugstack option %s is too long, kept %s", name, dst);
		return;
	}
	snprintf(dst, size, "%s", val);
}

/*
 * The options of the verdict's AdminComment and of the sampler's CPU.
 * Returns 1 when a was one of them (said in slurmd's log when bad), else 0.
 */
static int parse_more(const char *a)
{
	if (!strncmp(a, "admin_comment=", 14)) {
		if (!strcmp(a + 14, "yes"))
			admin_comment = 1;
		else if (!strcmp(a + 14, "no"))
			admin_comment = 0;
		else
			slurm_error("cohort: plugstack option %s: expected yes or no; kept %s", a,
			            admin_comment ? "yes" : "no");
	} else if (!strncmp(a, "scontrol=", 9)) {
		copy_arg(scontrol_bin, sizeof(scontrol_bin), a + 9, "scontrol");
	} else if (!strncmp(a, "cpu_budget=", 11)) {
		char *end;
		double v = strtod(a + 11, &end);

		/* The range of cohort run --pss-budget: a share of one core, in percent. */
		if (end == a + 11 || *end || !(v >= 0.1 && v <= 100))
			slurm_error("cohort: plugstack option %s: a percentage of one core from 0.1 to 100 "
			            "(default 0.6); the default is kept", a);
		else
			copy_arg(cpu_budget, sizeof(cpu_budget), a + 11, "cpu_budget");
	} else {
		return 0;
	}
	return 1;
}

static void parse_args(int ac, char **av)
{
	for (int i = 0; i < ac; i++) {
		const char *a = av[i];

		if (!strncmp(a, "mode=", 5)) {
			if (parse_mode(a + 5, &site_mode) < 0)
				slurm_error("cohort: plugstack option %s: expected off, record or enforce", a);
		} else if (!strncmp(a, "spool=", 6)) {
			copy_arg(spool, sizeof(spool), a + 6, "spool");
		} else if (!strncmp(a, "cohort=", 7)) {
			copy_arg(cohort_bin, sizeof(cohort_bin), a + 7, "cohort");
		} else if (!strncmp(a, "interval=", 9)) {
			char *end;
			double v = strtod(a + 9, &end);

			if (*end || !(v >= 0.05 && v <= 3600))
				slurm_error("cohort: plugstack option %s: seconds from 0.05 to 3600", a);
			else
				copy_arg(interval, sizeof(interval), a + 9, "interval");
		} else if (!strncmp(a, "metrics=", 8)) {
			copy_arg(metrics_dir, sizeof(metrics_dir), a + 8, "metrics");
		} else if (!strncmp(a, "wait=", 5)) {
			char *end;
			double v = strtod(a + 5, &end);

			/* Below half a second the helper's last sample and verdict
			 * rarely make it; wait=0 or wait=abc would kill it at once. */
			if (end == a + 5 || *end || !(v >= 0.5 && v <= 600))
				slurm_error("cohort: plugstack option %s: seconds from 0.5 to 600 "
				            "(default 10); the default is kept", a);
			else
				wait_s = v;
		} else if (parse_more(a)) {
			/* admin_comment=, scontrol=, cpu_budget= */
		} else {
			slurm_error("cohort: unknown plugstack option '%s' ignored", a);
		}
	}
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	parse_args(ac, av);
	if (spank_option_register(sp, &opt) != ESPANK_SUCCESS)
		slurm_error("cohort: cannot register --cohort");
	return 0;
}

static void step_name(uint32_t step, char *buf, size_t size)
{
	if (step == SLURM_BATCH_SCRIPT)
		snprintf(buf, size, "batch");
	else if (step == SLURM_INTERACTIVE_STEP)
		snprintf(buf, size, "interactive");
	else
		snprintf(buf, size, "%u", step);
}

/*
 * The step runs `cohort run` itself, or was launched by a worker of one
 * (cohort run sets COHORT_RANK in its workers): it is recorded already.
 */
static int under_cohort_run(spank_t sp)
{
	char **argv = NULL;
	int argc = 0;
	char buf[64];
	const char *base;

	if (spank_getenv(sp, "COHORT_SUPERVISOR", buf, sizeof(buf)) == ESPANK_SUCCESS ||
	    spank_getenv(sp, "COHORT_RANK", buf, sizeof(buf)) == ESPANK_SUCCESS)
		return 1;
	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 2 || !argv[0])
		return 0;
	base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	return strcmp(base, "cohort") == 0 && strcmp(argv[1], "run") == 0;
}

static enum mode chosen_mode(spank_t sp)
{
	char buf[32];
	enum mode m;

	if (user_mode != MODE_UNSET)
		return user_mode;
	if (spank_getenv(sp, "SLURM_SPANK_COHORT", buf, sizeof(buf)) == ESPANK_SUCCESS &&
	    parse_mode(buf, &m) == 0)
		return m;
	return site_mode;
}

/* <spool>/<job>, owned by the job's user, 0700. Returns 0 or -errno. */
static int job_dir(const char *job, uid_t uid, gid_t gid, char *ret, size_t size)
{
	struct stat st;

	if (snprintf(ret, size, "%s/%s", spool, job) >= (int)size)
		return -ENAMETOOLONG;
	if (mkdir(spool, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(ret, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(ret, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != uid && chown(ret, uid, gid) < 0)
		return -errno;
	/* root writes into it: a check that it is really writable, now. */
	if (access(ret, W_OK | X_OK) < 0)
		return -errno;
	return 0;
}

/*
 * Does the step's stderr reach a person? An srun run directly (or under
 * salloc): yes. A step of a batch script (ENVIRONMENT=BATCH, which
 * slurmstepd sets for the script and srun passes on) writes into the
 * script's output, where the batch step's verdict goes already.
 */
static int step_says_on_stderr(spank_t sp, uint32_t step)
{
	char buf[16];

	if (step == SLURM_BATCH_SCRIPT)
		return 0;
	return !(spank_getenv(sp, "ENVIRONMENT", buf, sizeof(buf)) == ESPANK_SUCCESS &&
	         strcmp(buf, "BATCH") == 0);
}

static int stderr_verdict;              /* this step's tasks pass their stderr to the helper */
static uint32_t local_tasks;            /* the step's tasks on this node */
static uint32_t tasks_reaped;

/*
 * The helper's options past the ids: the tasks on this node, enforce, the
 * CPU budget, AdminComment, the verdict on the tasks' stderr. Returns the
 * new argument count (argv holds 40).
 */
static int more_args(spank_t sp, enum mode m, uint32_t step, char **argv, int k)
{
	static char local[32];
	uint32_t n = 0;

	if (spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &n) == ESPANK_SUCCESS && n > 0) {
		local_tasks = step == SLURM_BATCH_SCRIPT ? 1 : n;
		snprintf(local, sizeof(local), "%u", local_tasks);
		ARG("--local-tasks");
		argv[k++] = local;
	}
	if (m == MODE_ENFORCE)
		ARG("--enforce");
	if (cpu_budget[0]) {
		ARG("--cpu-budget");
		argv[k++] = cpu_budget;
	}
	if (admin_comment) {
		ARG("--admin-comment");
		ARG("--scontrol");
		argv[k++] = scontrol_bin;
	}
	stderr_verdict = step_says_on_stderr(sp, step);
	if (stderr_verdict)
		ARG("--stderr-verdict");
	return k;
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	uint32_t job = 0, step = 0, ntasks = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	char jobs[32], steps[32], nts[32], uids[32], gids[32], dir[600], logp[700];
	char *argv[40];
	int p[2], k = 0, r;
	enum mode m;

	if (spank_remote(sp) != 1)
		return 0;
	m = chosen_mode(sp);
	if (m == MODE_OFF)
		return 0;
	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &gid) != ESPANK_SUCCESS) {
		slurm_error("cohort: cannot read the step's ids: the step runs unwatched");
		return 0;
	}
	if (step == SLURM_EXTERN_CONT)
		return 0;       /* no tasks of the user's */
	if (under_cohort_run(sp)) {
		slurm_info("cohort: job %u step %u runs cohort run itself: not watched twice", job, step);
		return 0;
	}
	if (spank_get_item(sp, S_JOB_TOTAL_TASK_COUNT, &ntasks) != ESPANK_SUCCESS)
		ntasks = 0;
	snprintf(jobs, sizeof(jobs), "%u", job);
	step_name(step, steps, sizeof(steps));
	snprintf(nts, sizeof(nts), "%u", step == SLURM_BATCH_SCRIPT ? 1 : ntasks);
	snprintf(uids, sizeof(uids), "%ld", (long)uid);
	snprintf(gids, sizeof(gids), "%ld", (long)gid);
	r = job_dir(jobs, uid, gid, dir, sizeof(dir));
	if (r < 0) {
		slurm_error("cohort: spool %s/%s: %s: job %u step %s runs unwatched", spool, jobs,
		            strerror(-r), job, steps);
		return 0;
	}
	if (access(cohort_bin, X_OK) < 0) {
		slurm_error("cohort: %s: %s: job %u step %s runs unwatched (plugstack option cohort=)",
		            cohort_bin, strerror(errno), job, steps);
		return 0;
	}
	snprintf(logp, sizeof(logp), "%s/%s.log", dir, steps);
	argv[k++] = cohort_bin;
	ARG("spank-watch");
	ARG("--dir");
	argv[k++] = dir;
	ARG("--job");
	argv[k++] = jobs;
	ARG("--step");
	argv[k++] = steps;
	ARG("--ntasks");
	argv[k++] = nts;
	ARG("--uid");
	argv[k++] = uids;
	ARG("--gid");
	argv[k++] = gids;
	ARG("--interval");
	argv[k++] = interval;
	if (metrics_dir[0]) {
		ARG("--metrics");
		argv[k++] = metrics_dir;
	}
	k = more_args(sp, m, step, argv, k);
	argv[k] = NULL;
	/*
	 * A socket pair, not a pipe: one message per line that nothing
	 * interleaves, written by slurmstepd and by a task before its exec,
	 * and a task's stderr passed to the helper (SCM_RIGHTS).
	 */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) < 0) {
		slurm_error("cohort: socketpair: %s: job %u step %s runs unwatched", strerror(errno), job, steps);
		return 0;
	}
	helper = fork();
	if (helper < 0) {
		slurm_error("cohort: fork: %s: job %u step %s runs unwatched", strerror(errno), job, steps);
		close(p[0]);
		close(p[1]);
		return 0;
	}
	if (helper == 0) {
		/* slurmstepd has threads: only async-signal-safe calls until execve. */
		sigset_t all;
		int lfd;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		setsid();
		dup2(p[0], 0);
		lfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (lfd >= 0) {
			dup2(lfd, 1);
			dup2(lfd, 2);
		}
		execv(cohort_bin, argv);
		_exit(127);
	}
	close(p[0]);
	helper_fd = p[1];
	/* Shared with the tasks forked later: none of them blocks on a stalled helper either. */
	fcntl(helper_fd, F_SETFL, O_NONBLOCK);
	slurm_info("cohort: job %u step %s watched by pid %d into %s", job, steps, (int)helper, dir);
	return 0;
}

int slurm_spank_task_post_fork(spank_t sp, int ac, char **av)
{
	uint32_t gid = 0;
	int lid = 0;
	pid_t pid = 0;
	char line[96];
	int n;

	if (helper_fd < 0)
		return 0;
	if (spank_get_item(sp, S_TASK_GLOBAL_ID, &gid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_TASK_ID, &lid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_TASK_PID, &pid) != ESPANK_SUCCESS) {
		slurm_error("cohort: cannot read a task's ids: it is not watched");
		return 0;
	}
	n = snprintf(line, sizeof(line), "task %u %d %d\n", gid, lid, (int)pid);
	/*
	 * A datagram is whole or not at all; a stalled helper never blocks us,
	 * a dead one never raises SIGPIPE in slurmstepd.
	 */
	if (send(helper_fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n)
		slurm_error("cohort: the helper (pid %d) did not take task %u: %s", (int)helper, gid,
		            strerror(errno));
	return 0;
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	struct timespec d = { 0, 20 * 1000 * 1000 };
	double waited = 0;
	int st = 0;
	pid_t r;

	if (helper <= 0)
		return 0;
	close(helper_fd);       /* the helper's end of the step */
	helper_fd = -1;
	while ((r = waitpid(helper, &st, WNOHANG)) == 0 && waited < wait_s) {
		nanosleep(&d, NULL);
		waited += 0.02;
	}
	if (r == 0) {
		slurm_error("cohort: the helper (pid %d) did not end %.0f s after the step: killed",
		            (int)helper, wait_s);
		kill(helper, SIGKILL);
		waitpid(helper, &st, 0);
	} else if (r > 0 && WIFSIGNALED(st)) {
		slurm_error("cohort: the helper (pid %d) died of signal %d: the step's recording may be cut",
		            (int)helper, WTERMSIG(st));
	} else if (r > 0 && WIFEXITED(st) && WEXITSTATUS(st) != 0) {
		slurm_error("cohort: the helper (pid %d) exited %d (its log is in the spool)", (int)helper,
		            WEXITSTATUS(st));
	}
	helper = -1;
	return 0;
}

/* ---- the verdict on an interactive step's stderr ------------------------ */

/*
 * In the task's own process, after slurmstepd made its stdio and before
 * exec: local task 0 passes its stderr (where srun prints the task's
 * stderr) to the helper, which writes the step's verdict into it once the
 * step's tasks have ended. One descriptor per node, so one verdict per
 * node. The helper holds it only until it has said the verdict (or, at
 * the latest, until the tasks' ends are known), so slurmstepd's I/O sees
 * the end of the task's stderr a moment after the task's. MSG_DONTWAIT on
 * a non-blocking socket: a helper that does not read costs the task
 * nothing but the verdict.
 */
int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	uint32_t gid = 0;
	int lid = -1;
	char line[48], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr mh;
	struct cmsghdr *cm;
	int n, fd = 2;

	if (helper_fd < 0 || !stderr_verdict)
		return 0;
	if (spank_get_item(sp, S_TASK_ID, &lid) != ESPANK_SUCCESS || lid != 0 ||
	    spank_get_item(sp, S_TASK_GLOBAL_ID, &gid) != ESPANK_SUCCESS)
		return 0;
	n = snprintf(line, sizeof(line), "stderr %u\n", gid);
	memset(&mh, 0, sizeof(mh));
	memset(cbuf, 0, sizeof(cbuf));
	iov.iov_base = line;
	iov.iov_len = (size_t)n;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	/* No slurm_error here: this is the task's process, its log is the user's stderr. */
	(void)sendmsg(helper_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	return 0;
}

/*
 * After the node's last task was reaped: the helper says "done" once it
 * wrote the verdict into task 0's stderr and closed it, and set
 * AdminComment (admin_comment=yes) while the job still runs. slurmstepd's I/O
 * cannot end while the helper holds that stderr, so a helper that does
 * not answer within wait= seconds (stopped, stuck on a disk) is killed
 * here, which releases it: the step is delayed wait= seconds at most, as
 * at its end.
 */
static void wait_for_verdict(void)
{
	struct timespec t0, now;
	char buf[64];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pf = { .fd = helper_fd, .events = POLLIN };
		double left;
		ssize_t got;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = wait_s - ((double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9);
		if (left <= 0)
			break;
		if (poll(&pf, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		got = recv(helper_fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
			return;         /* the helper is gone: nothing of it is held */
		if (got >= 4 && memcmp(buf, "done", 4) == 0)
			return;
	}
	slurm_error("cohort: the helper (pid %d) did not say the verdict %.0f s after the step's tasks "
	            "ended: killed", (int)helper, wait_s);
	kill(helper, SIGKILL);
}

/*
 * In slurmstepd, as each task is reaped: its wait status to the helper,
 * which knows then, without waiting for its next sample, that the task
 * ended and how.
 */
int slurm_spank_task_exit(spank_t sp, int ac, char **av)
{
	uint32_t gid = 0;
	int st = 0, n;
	char line[64];

	if (helper_fd < 0)
		return 0;
	if (spank_get_item(sp, S_TASK_GLOBAL_ID, &gid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_TASK_EXIT_STATUS, &st) != ESPANK_SUCCESS)
		return 0;
	n = snprintf(line, sizeof(line), "exit %u %d\n", gid, st);
	(void)send(helper_fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	/*
	 * Before the step ends (srun returns, and with it maybe the job): the
	 * verdict on srun's stderr, and AdminComment, which the controller
	 * takes only while the job runs.
	 */
	if ((stderr_verdict || admin_comment) && ++tasks_reaped == local_tasks)
		wait_for_verdict();
	return 0;
}

/* ---- the job's leftover segments ---------------------------------------- */

/*
 * At the job's end on each node (slurmd's epilog, as root): the segments
 * that cohort named for this job, /dev/shm/cohort.<uid>.<job>.<name>
 * (src/seg.c), with uid the job's user, name of [A-Za-z0-9_-] only, a
 * regular file owned by that user. Nothing else is touched: no symlink is
 * followed (unlinkat removes a name, and fstatat does not follow), a file
 * of another owner under that name is left and said.
 */
static int seg_name_ok(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (n >= 64 || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		                 (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return 0;
	return n > 0;
}

static void clean_segments(uint32_t job, uid_t uid)
{
	char prefix[64];
	struct dirent *de;
	struct stat st;
	unsigned removed = 0;
	size_t n;
	DIR *d;

	n = (size_t)snprintf(prefix, sizeof(prefix), "cohort.%u.%u.", (unsigned)uid, job);
	d = opendir("/dev/shm");
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, n) != 0 || !seg_name_ok(de->d_name + n))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISREG(st.st_mode) || st.st_uid != uid) {
			slurm_info("cohort: job %u: /dev/shm/%s is not a file of uid %u: left", job, de->d_name,
			           (unsigned)uid);
			continue;
		}
		if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
			slurm_info("cohort: job %u: removed its leftover segment /dev/shm/%s (%lld bytes)", job,
			           de->d_name, (long long)st.st_size);
			removed++;
		} else {
			slurm_error("cohort: job %u: cannot remove /dev/shm/%s: %s", job, de->d_name, strerror(errno));
		}
	}
	closedir(d);
	if (removed)
		slurm_info("cohort: job %u: %u leftover segment(s) removed", job, removed);
}

int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	uint32_t job = 0;
	uid_t uid = 0;

	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS) {
		slurm_error("cohort: job epilog: cannot read the job's id or user: its segments are left");
		return 0;
	}
	if (site_mode != MODE_OFF)      /* a site that turned cohort off: nothing of it runs */
		clean_segments(job, uid);
	return 0;
}
