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
 * step, `cohort spank-watch`, writes it one line per task it forks, and
 * closes the pipe at the step's end; the helper does all the watching. No
 * thread of cohort runs inside slurmstepd: a helper that crashes, stalls
 * or grows costs its own process only, the plugin waits for it a bounded
 * time at the step's end, and every failure is a line in slurmd's log,
 * never a failed step. Every hook returns success.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
			double v = strtod(a + 5, NULL);

			if (v >= 0 && v <= 120)
				wait_s = v;
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

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	uint32_t job = 0, step = 0, ntasks = 0;
	uid_t uid = 0;
	gid_t gid = 0;
	char jobs[32], steps[32], nts[32], uids[32], gids[32], dir[600], logp[700];
	char *argv[20];
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
	argv[k] = NULL;
	if (pipe2(p, O_CLOEXEC) < 0) {
		slurm_error("cohort: pipe: %s: job %u step %s runs unwatched", strerror(errno), job, steps);
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
	/* A pipe write under PIPE_BUF is whole or not at all; a stalled helper never blocks us. */
	if (write(helper_fd, line, (size_t)n) != n)
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
