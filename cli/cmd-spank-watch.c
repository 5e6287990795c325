/*
 * cmd-spank-watch.c - `cohort spank-watch`, the helper that spank_cohort.so
 * starts for each job step on each node (not listed in `cohort --help`).
 *
 * The plugin forks and execs this program from slurmstepd with one end of
 * a SOCK_SEQPACKET socket pair on stdin; it sends "task GLOBAL_ID LOCAL_ID
 * PID\n" for each task it forked, "exit GLOBAL_ID STATUS\n" for each it
 * reaped, local task 0 sends "stderr GLOBAL_ID\n" with its stderr
 * attached (SCM_RIGHTS, --stderr-verdict), and the plugin closes its end
 * at the step's end. The helper watches each task's cgroup with the
 * library watcher, writes one recording per task into
 * DIR/<step>.<task>.<host>.ndjson (owned by the job's user); when the
 * node's tasks have ended it says this node's verdict of the step into
 * that stderr (srun's, for an interactive step) and appends a summary to
 * the job's AdminComment (--admin-comment); at the end, the verdict into
 * the batch script's output file. With --enforce it stops a task whose
 * processes go over its share of the job's memory (SIGTERM, then SIGKILL),
 * as cohort run --enforce watch stops a worker.
 *
 * It is a process of its own, not a thread of slurmstepd: a crash or a
 * stall here cannot take the step with it, and the plugin waits for it a
 * bounded time only.
 */
#include "cli.h"
#include "spank-metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MAX_TASKS 256

struct task {
	long id, local_id;
	pid_t pid;
	int started;                    /* the watcher follows its cgroup */
	double seen;                    /* when the plugin named it (watcher clock of task 0: wall) */
	int exited;                     /* the plugin reaped it ("exit ID STATUS") */
	int stop_stage;                 /* --enforce: 0, 1 SIGTERM sent, 2 SIGKILL sent */
	double stop_deadline;           /* wall time of the SIGKILL */
	char cg[COHORT_PATH_MAX];       /* its cgroup, whose processes a stop signals */
	struct cohort_watch *watch;
	struct cohort_recorder *rec;
	char path[COHORT_PATH_MAX];
};

struct helper {
	const char *dir, *job, *step, *host;
	long ntasks;
	uid_t uid;
	gid_t gid;
	double interval;
	char job_cg[COHORT_PATH_MAX];
	struct task t[MAX_TASKS];
	size_t n;
	int out_fd;                     /* the batch script's output file, -1 */
	/* The plugin's options past the ids (docs/admin.md). */
	long local_tasks;               /* the step's tasks on this node, -1: not known */
	int enforce;                    /* --enforce: a task over its share is stopped */
	uint64_t share;                 /* --enforce: each task's budget, 0: none found */
	double cpu_budget;              /* --cpu-budget as a fraction of a core, 0: the default */
	int admin_comment;              /* --admin-comment: the summary into the job's AdminComment */
	const char *scontrol;
	int stderr_verdict;             /* --stderr-verdict: local task 0 passes its stderr */
	int err_fd;                     /* that stderr, held until the verdict is said, -1 */
	int ended;                      /* the recordings are ended */
	int commented;                  /* AdminComment was done (or tried) */
	long exits;                     /* "exit" lines received */
};

/* From SIGTERM to SIGKILL for a task stopped over its share: the task grows meanwhile. */
#define STOP_GRACE 3.0

static void help(FILE *out)
{
	fprintf(out,
	        "Usage: cohort spank-watch --dir DIR --job ID --step S --ntasks N [--host H]\n"
	        "                          [--uid U --gid G] [--interval SECONDS]\n"
	        "                          [--local-tasks N] [--enforce] [--cpu-budget PERCENT]\n"
	        "                          [--admin-comment [--scontrol PATH]] [--stderr-verdict]\n"
	        "                          [--metrics MDIR]\n"
	        "\n"
	        "The helper of the SLURM plugin spank_cohort.so (docs/admin.md): reads\n"
	        "\"task ID LOCAL_ID PID\" lines on standard input, watches each task's cgroup,\n"
	        "records each task into DIR/S.ID.H.ndjson and ends when standard input closes.\n"
	        "With --metrics, the step's figures are also kept as Prometheus metrics in\n"
	        "MDIR/cohort_ID_S_H.prom for node_exporter's textfile collector.\n");
}

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void stop_task(struct task *t, int sig);

static void drain(struct task *t)
{
	struct cohort_event ev;

	while (cohort_watch_next_event(t->watch, &ev) == 1) {
		cohort_recorder_event(t->rec, &ev);
		spank_metrics_event(t->watch, &ev);
		if (ev.action == COHORT_ACTION_STOP && ev.rank == 0 && t->stop_stage == 0)
			stop_task(t, SIGTERM);
	}
}

/*
 * --enforce: the watcher decided that the task is over its share. Every
 * process of its cgroup gets sig (SIGTERM, SIGKILL after STOP_GRACE), as
 * cohort run --enforce watch does to a worker's group.
 */
static void stop_task(struct task *t, int sig)
{
	pid_t *pids = NULL;
	size_t n = 0;

	if (!t->cg[0] || cohort_pids_cgroup(NULL, t->cg, &pids, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		kill(pids[i], sig);
	cohort_pids_free(pids);
	cohort_watch_stopping(t->watch, 0, sig == SIGKILL);
	t->stop_stage = sig == SIGKILL ? 2 : 1;
	t->stop_deadline = wall() + STOP_GRACE;
	fprintf(stderr, "cohort spank-watch: task %ld over its share: %s sent to %zu process(es)\n",
	        t->id, sig == SIGKILL ? "SIGKILL" : "SIGTERM", n);
}

/* The task's cgroup, once SLURM moved it into its task_N (3 s at most). */
static int try_start(struct helper *h, struct task *t)
{
	char dir[COHORT_PATH_MAX];
	const char *base;
	int r;

	r = cohort_cgroup_of_pid(NULL, t->pid, dir, sizeof(dir), NULL);
	if (r < 0)
		return r;
	base = strrchr(dir, '/');
	if ((!base || strncmp(base + 1, "task_", 5) != 0) && wall() - t->seen < 3)
		return 0;
	r = cohort_watch_start_cgroup(t->watch, 0, dir);
	if (r < 0)
		return r;
	snprintf(t->cg, sizeof(t->cg), "%s", dir);
	t->started = 1;
	drain(t);
	return 1;
}

/*
 * The page-walk budget (--cpu-budget, else cohort run's 0.6 % of a core) is
 * the whole step's on this node, shared by its tasks' watchers: a budget
 * per task would grow the helper's cost with the tasks of the node.
 */
static double task_budget(const struct helper *h)
{
	double total = h->cpu_budget ? h->cpu_budget : 0.006;
	long tasks = h->local_tasks > 0 ? h->local_tasks : 1;

	return total / (double)tasks;
}

static int add_task(struct helper *h, long id, long local_id, pid_t pid)
{
	struct cohort_watch_opts wo = {
		.workers = 1, .interval = h->interval, .enforce = COHORT_ENFORCE_NONE,
		.slurm_sums_rss = -1, .job_cgroup = h->job_cg[0] ? h->job_cg : NULL,
		.pss_budget = task_budget(h),
	};
	struct cohort_task task = {
		.known = 1, .source = "slurm", .id = id, .ntasks = h->ntasks, .node_id = -1,
		.tasks_on_node = -1, .local_id = local_id, .rank_offset = id,
	};
	static char what[] = "(SLURM task)";
	char *argv[] = { what, NULL };
	struct cohort_rec_header_info hi = {
		.host = h->host, .start = wall(), .supervisor_pid = getpid(), .job = h->job,
		.argv = argv, .workers = 1, .enforce = h->enforce && h->share ? "watch" : "none",
		.interval = h->interval, .pss_budget = task_budget(h),
		.job_cgroup = h->job_cg[0] ? h->job_cg : NULL, .task = &task,
	};
	struct task *t;
	int r;

	if (h->n == MAX_TASKS) {
		fprintf(stderr, "cohort spank-watch: more than %d tasks on this node: task %ld not watched\n",
		        MAX_TASKS, id);
		return -ENOSPC;
	}
	t = &h->t[h->n];
	memset(t, 0, sizeof(*t));
	t->id = id;
	t->local_id = local_id;
	t->pid = pid;
	t->seen = wall();
	if (h->enforce && h->share) {
		/* cohort run --enforce watch, at the task's share: cohort stops it, not the kernel. */
		wo.enforce = COHORT_ENFORCE_WATCH;
		wo.mem_per_worker = h->share;
		wo.budget = h->share;
		wo.grace = STOP_GRACE;
		hi.budget = hi.mem_per_worker = h->share;
		hi.budget_source = "the task's share of the job's memory limit, less a margin (mode=enforce)";
		hi.grace = STOP_GRACE;
	}
	snprintf(task.job, sizeof(task.job), "%s", h->job);
	snprintf(task.step, sizeof(task.step), "%s", h->step);
	snprintf(task.node, sizeof(task.node), "%s", h->host);
	snprintf(t->path, sizeof(t->path), "%s/%s.%ld.%s.ndjson", h->dir, h->step, id, h->host);
	r = cohort_recorder_open_flags(t->path, COHORT_RECORDER_EXCL, &t->rec);
	if (r < 0) {
		fprintf(stderr, "cohort spank-watch: cannot create %s: %s\n", t->path, strerror(-r));
		return r;
	}
	/* Root writes it; the job's user reads it (and only they). */
	if (fchown(cohort_recorder_fd(t->rec), h->uid, h->gid) < 0 ||
	    fchmod(cohort_recorder_fd(t->rec), 0600) < 0)
		fprintf(stderr, "cohort spank-watch: cannot give %s to uid %ld: %s\n", t->path, (long)h->uid,
		        strerror(errno));
	r = cohort_watch_create(&wo, &t->watch);
	if (r < 0) {
		fprintf(stderr, "cohort spank-watch: watcher of task %ld: %s\n", id, cohort_strerror(r));
		cohort_recorder_close(t->rec);
		unlink(t->path);
		return r;
	}
	cohort_recorder_header(t->rec, &hi);
	spank_metrics_watch(id, t->watch);
	h->n++;
	/* The batch script's output: its stdout, opened again while the task lives. */
	if (h->out_fd < 0 && strcmp(h->step, "batch") == 0) {
		char p[64];
		struct stat st;
		int fd;

		snprintf(p, sizeof(p), "/proc/%d/fd/1", (int)pid);
		fd = open(p, O_WRONLY | O_APPEND | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			h->out_fd = fd;
		else if (fd >= 0)
			close(fd);
	}
	r = try_start(h, t);
	if (r < 0)
		fprintf(stderr, "cohort spank-watch: task %ld (pid %d): %s\n", id, (int)pid, cohort_strerror(r));
	return 0;
}

/*
 * "exit ID STATUS": slurmstepd reaped the task (wait status STATUS). The
 * watcher is not told the status: it follows the task's cgroup, whose
 * root is slurmstepd's child, not a worker of its own, and finds how its
 * processes ended (OOM kills by the kernel's count and log) at its last
 * sample. What it gives is the moment: the step's tasks on this node have
 * all ended without waiting for the watcher's next sample.
 */
static void task_exited(struct helper *h, long id, int status)
{
	(void)status;
	h->exits++;
	for (size_t i = 0; i < h->n; i++)
		if (h->t[i].id == id)
			h->t[i].exited = 1;
}

/* Every task of the step on this node has ended (as the plugin or the watcher saw). */
static int all_ended(const struct helper *h)
{
	/* slurmstepd reaped them all, whether or not each could be watched. */
	if (h->local_tasks > 0 && h->exits >= h->local_tasks)
		return 1;
	if (h->n == 0 || (h->local_tasks > 0 && (long)h->n < h->local_tasks))
		return 0;
	for (size_t i = 0; i < h->n; i++) {
		const struct task *t = &h->t[i];

		if (!t->exited && !(t->started && !cohort_watch_running(t->watch)))
			return 0;
	}
	return 1;
}

/*
 * One message of the plugin into buf + have: a datagram of the socket
 * pair, or bytes of a pipe (a helper started by hand). A descriptor that
 * comes with "stderr ID" is local task 0's stderr; any other is closed.
 * Returns what read(2) returns.
 */
static ssize_t read_message(struct helper *h, char *buf, size_t size)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
	                     .msg_controllen = sizeof(cbuf) };
	ssize_t got = recvmsg(0, &mh, MSG_CMSG_CLOEXEC);

	if (got < 0 && errno == ENOTSOCK)
		return read(0, buf, size);
	if (got < 0)
		return got;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t nfd;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (h->stderr_verdict && h->err_fd < 0 && !h->ended && got >= 7 &&
			    memcmp(buf, "stderr ", 7) == 0)
				h->err_fd = fd;
			else
				close(fd);
		}
	}
	return got;
}

static void line(struct helper *h, const char *s)
{
	long id, local_id;
	int pid;

	if (sscanf(s, "task %ld %ld %d", &id, &local_id, &pid) == 3 && id >= 0 && pid > 0 && h->ended)
		fprintf(stderr, "cohort spank-watch: task %ld came after the step's tasks ended: not watched\n", id);
	else if (sscanf(s, "task %ld %ld %d", &id, &local_id, &pid) == 3 && id >= 0 && pid > 0)
		add_task(h, id, local_id, (pid_t)pid);
	else if (sscanf(s, "exit %ld %d", &id, &pid) == 2)
		task_exited(h, id, pid);
	else if (strncmp(s, "stderr ", 7) == 0)
		;       /* its descriptor was taken by read_message() */
	else
		fprintf(stderr, "cohort spank-watch: ignoring the line '%.60s'\n", s);
}

static void tick(struct helper *h)
{
	if (h->ended)
		return;         /* the watchers are gone */
	for (size_t i = 0; i < h->n; i++) {
		struct task *t = &h->t[i];

		if (!t->started && try_start(h, t) == 0)
			continue;
		if (!t->started)
			continue;
		if (t->stop_stage == 1 && wall() >= t->stop_deadline && cohort_watch_running(t->watch))
			stop_task(t, SIGKILL);
		if (cohort_watch_now(t->watch) >= cohort_watch_next_tick(t->watch) ||
		    !cohort_watch_running(t->watch)) {
			cohort_watch_tick(t->watch);
			cohort_recorder_sample(t->rec, t->watch);
			drain(t);
		}
	}
	spank_metrics_tick();
}

static double next_due(const struct helper *h)
{
	double d = h->interval;

	if (h->ended)
		return d;
	for (size_t i = 0; i < h->n; i++) {
		const struct task *t = &h->t[i];
		double left;

		if (!t->started) {
			d = d < 0.05 ? d : 0.05;
			continue;
		}
		left = cohort_watch_next_tick(t->watch) - cohort_watch_now(t->watch);
		if (left < d)
			d = left;
	}
	return d < 0.01 ? 0.01 : d;
}

/*
 * The findings of step's recordings in the job's directory d (every
 * node's, or host's only when host is not NULL), in cohort report's form
 * under a "cohort: job J step S on H:" line, into out (NULL: said
 * nowhere), and a one-line summary for AdminComment into sum (may be
 * NULL). Returns the number of findings: 0 when the step ended well.
 */
static size_t say_step(const struct helper *h, DIR *d, const char *step, const char *host, FILE *out,
                       char *sum, size_t sum_size)
{
	struct cohort_recording *recs[64];
	struct cohort_finding *f = NULL;
	struct cohort_job *job = NULL;
	size_t n = 0, nf = 0, sl = strlen(step);
	char err[COHORT_MSG_MAX];
	struct dirent *de;

	rewinddir(d);
	while ((de = readdir(d)) != NULL && n < 64) {
		char p[COHORT_PATH_MAX];
		size_t len = strlen(de->d_name), hl = host ? strlen(host) : 0;
		struct stat st;

		if (strncmp(de->d_name, step, sl) != 0 || de->d_name[sl] != '.' || len < 7 ||
		    strcmp(de->d_name + len - 7, ".ndjson") != 0)
			continue;
		/* <step>.<task>.<host>.ndjson */
		if (host && (len < hl + 8 || strncmp(de->d_name + len - 7 - hl, host, hl) != 0 ||
		             de->d_name[len - 8 - hl] != '.'))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		snprintf(p, sizeof(p), "%s/%s", h->dir, de->d_name);
		if (cohort_recording_load(p, &recs[n], err, sizeof(err)) == 0)
			n++;
	}
	if (n && cohort_job_merge(recs, n, COHORT_MERGE_FORCE, &job, err, sizeof(err)) == 0 &&
	    cohort_diagnose(job->recs, job->nrecs, &f, &nf) == 0 && nf > 0) {
		/* Nothing at all when the step ended well: no finding, no word. */
		if (out) {
			fprintf(out, "\ncohort: job %s step %s on %s:\n", h->job, step, host ? host : h->host);
			cli_print_findings(out, f, nf, false, job->nrecs > 1);
		}
		if (sum) {
			/* The first finding's kind, its worker and the start of its message. */
			int k = snprintf(sum, sum_size, "cohort: step %s: %s", step, cohort_finding_name(f[0].kind));

			if (f[0].global_rank >= 0 && k > 0 && (size_t)k < sum_size)
				k += snprintf(sum + k, sum_size - (size_t)k, " rank %d", f[0].global_rank);
			if (k > 0 && (size_t)k < sum_size) {
				/* The message's start, cut at a word: AdminComment is short. */
				int m = (int)strlen(f[0].message);

				if (m > 100) {
					m = 100;
					while (m > 40 && f[0].message[m] != ' ')
						m--;
				}
				k += snprintf(sum + k, sum_size - (size_t)k, " (%.*s%s)", m, f[0].message,
				              f[0].message[m] ? "..." : "");
			}
			if (nf > 1 && k > 0 && (size_t)k < sum_size)
				snprintf(sum + k, sum_size - (size_t)k, ", %zu findings", nf);
			for (char *c = sum; *c; c++)
				if (*c == '\n' || *c == '\t')
					*c = ' ';
		}
	} else {
		nf = 0;
	}
	cohort_findings_free(f);
	cohort_job_free(job);
	for (size_t i = 0; i < n; i++)
		cohort_recording_free(recs[i]);
	return nf;
}

/*
 * The verdict of the job so far on this node's spool: every recording of
 * the job's steps, one step at a time, findings in cohort report's form.
 */
static void verdict(struct helper *h)
{
	char steps[16][COHORT_ID_MAX];
	size_t nsteps = 0, said = 0;
	struct dirent *de;
	DIR *d;
	FILE *out;
	int fd;

	if (h->out_fd < 0 || !(d = opendir(h->dir)))
		return;
	while ((de = readdir(d)) != NULL && nsteps < 16) {
		char *dot = strchr(de->d_name, '.');
		size_t len = strlen(de->d_name), k;

		if (!dot || dot == de->d_name || len < 7 || strcmp(de->d_name + len - 7, ".ndjson") != 0)
			continue;
		for (k = 0; k < nsteps; k++)
			if (strncmp(steps[k], de->d_name, (size_t)(dot - de->d_name)) == 0 &&
			    steps[k][dot - de->d_name] == '\0')
				break;
		if (k == nsteps && (size_t)(dot - de->d_name) < COHORT_ID_MAX) {
			memcpy(steps[nsteps], de->d_name, (size_t)(dot - de->d_name));
			steps[nsteps++][dot - de->d_name] = '\0';
		}
	}
	if ((fd = dup(h->out_fd)) < 0 || !(out = fdopen(fd, "a"))) {
		if (fd >= 0)
			close(fd);
		closedir(d);
		return;
	}
	for (size_t k = 0; k < nsteps; k++)
		said += say_step(h, d, steps[k], NULL, out, NULL, 0) > 0;
	if (said)
		fprintf(out, "(cohort report --job %s for the whole report)\n", h->job);
	fclose(out);
	closedir(d);
}

/* ---- an interactive step's verdict, on srun's stderr ----------------- */

/*
 * Write all of buf into fd within 2 s, never blocking longer: the task's
 * stderr is a pipe slurmstepd reads and forwards to srun. A descriptor of
 * our own onto it (/proc/self/fd/N opened again) is made non-blocking;
 * the task's own (shared with what the task left running) stays as it was.
 */
static void write_bounded(int fd, const char *buf, size_t len)
{
	char p[64];
	double until = wall() + 2;
	int own;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	own = open(p, O_WRONLY | O_APPEND | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (own < 0)
		return;
	while (len > 0 && wall() < until) {
		struct pollfd pf = { .fd = own, .events = POLLOUT };
		ssize_t w;

		if (poll(&pf, 1, 100) <= 0)
			continue;
		w = write(own, buf, len);
		if (w > 0) {
			buf += w;
			len -= (size_t)w;
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			break;
		}
	}
	close(own);
}

/*
 * This node's verdict on the step into the stderr local task 0 passed
 * (--stderr-verdict), nothing when the step ended well, then the
 * descriptor closed: slurmstepd's I/O ends with it.
 */
static void add_admin_comment(struct helper *h);

static void say_on_stderr(struct helper *h)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out;
	DIR *d;

	if (h->err_fd < 0) {
		add_admin_comment(h);
		return;
	}
	if ((d = opendir(h->dir)) != NULL && (out = open_memstream(&buf, &len)) != NULL) {
		if (say_step(h, d, h->step, h->host, out, NULL, 0) > 0)
			fprintf(out, "(cohort report --job %s for the whole report)\n", h->job);
		fclose(out);
		if (len)
			write_bounded(h->err_fd, buf + 1, len - 1);   /* no blank line first on a terminal */
		free(buf);
	}
	if (d)
		closedir(d);
	/*
	 * While we hold the task's stderr the step cannot end, nor a job that
	 * is this one step: the controller takes AdminComment only until the
	 * job has ended.
	 */
	add_admin_comment(h);
	close(h->err_fd);
	h->err_fd = -1;
}

/* ---- AdminComment ---------------------------------------------------- */

#define SCONTROL_WAIT_S 5
#define ADMIN_COMMENT_MAX 1000          /* what cohort lets it grow to */

/*
 * Run the scontrol of --scontrol with args, stdout into out (size bytes,
 * NUL-terminated, may be NULL), stderr into the helper's log, in its own
 * process group, killed after SCONTROL_WAIT_S. Returns its wait status,
 * or -errno when it could not be started or did not end in time.
 */
static int scontrol(const struct helper *h, char **args, char *out, size_t size)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	double until = wall() + SCONTROL_WAIT_S;
	size_t have = 0;
	int p[2], st = 0, r;
	pid_t pid;
	static char cmd[COHORT_PATH_MAX];
	char *argv[8];
	size_t k = 0;

	snprintf(cmd, sizeof(cmd), "%s", h->scontrol);
	argv[k++] = cmd;
	for (; *args && k < 7; args++)
		argv[k++] = *args;
	argv[k] = NULL;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	r = -posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		return r;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		char tmp[1024];
		ssize_t got;

		if (wall() >= until) {
			r = -ETIMEDOUT;
			break;
		}
		if (poll(&pf, 1, 100) <= 0)
			continue;
		got = read(p[0], tmp, sizeof(tmp));
		if (got == 0)
			break;
		if (got < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		if (out && have + 1 < size) {
			size_t c = (size_t)got < size - 1 - have ? (size_t)got : size - 1 - have;

			memcpy(out + have, tmp, c);
			have += c;
		}
	}
	close(p[0]);
	if (out && size)
		out[have] = '\0';
	while (r == 0) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			return st;
		if (w < 0 && errno != EINTR)
			return -errno;
		if (wall() >= until)
			r = -ETIMEDOUT;
		else
			poll(NULL, 0, 20);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, &st, 0);
	return r;
}

/*
 * The job's AdminComment as `scontrol show job` prints it: the line
 * "   AdminComment=VALUE". Copies VALUE (trailing blanks dropped) into
 * ret, "" when the job has none. Returns 0 or -errno.
 */
static int admin_comment_read(const struct helper *h, char *ret, size_t size)
{
	static char buf[64 * 1024];
	static char show[] = "show", jobw[] = "job";
	char id[64];
	char *args[] = { show, jobw, id, NULL };
	const char *a, *e;
	int st;

	snprintf(id, sizeof(id), "%s", h->job);
	st = scontrol(h, args, buf, sizeof(buf));
	if (st < 0)
		return st;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -EIO;
	ret[0] = '\0';
	a = strstr(buf, "AdminComment=");
	if (!a)
		return 0;
	a += 13;
	e = a + strcspn(a, "\n");
	while (e > a && (e[-1] == ' ' || e[-1] == '\r'))
		e--;
	if (e - a == 6 && memcmp(a, "(null)", 6) == 0)
		e = a;
	snprintf(ret, size, "%.*s", (int)(e - a), a);
	return 0;
}

/*
 * --admin-comment: the step's one-line summary appended to the job's
 * AdminComment (never replacing what is there), when the step has a
 * finding and the whole stays under ADMIN_COMMENT_MAX. Said in the log.
 */
static void add_admin_comment(struct helper *h)
{
	char sum[300], old[ADMIN_COMMENT_MAX + 1], val[ADMIN_COMMENT_MAX + 64], arg[ADMIN_COMMENT_MAX + 80];
	static char update[] = "update";
	char jobid[64];
	char *args[] = { update, jobid, arg, NULL };
	DIR *d;
	int r;

	if (!h->admin_comment || h->commented || !(d = opendir(h->dir)))
		return;
	h->commented = 1;
	sum[0] = '\0';
	r = (int)say_step(h, d, h->step, NULL, NULL, sum, sizeof(sum));
	closedir(d);
	if (r == 0)
		return;
	r = admin_comment_read(h, old, sizeof(old));
	if (r < 0) {
		fprintf(stderr, "cohort spank-watch: %s show job %s: %s: AdminComment left as it is\n",
		        h->scontrol, h->job, r == -ETIMEDOUT ? "no answer in 5 s" : strerror(-r));
		return;
	}
	if (strstr(old, sum))
		return;                 /* said already (a step's helper run again) */
	snprintf(val, sizeof(val), "%s%s%s", old, old[0] ? "; " : "", sum);
	if (strlen(val) > ADMIN_COMMENT_MAX) {
		fprintf(stderr, "cohort spank-watch: job %s's AdminComment would pass %d bytes: '%s' not added\n",
		        h->job, ADMIN_COMMENT_MAX, sum);
		return;
	}
	snprintf(jobid, sizeof(jobid), "jobid=%s", h->job);
	snprintf(arg, sizeof(arg), "AdminComment=%s", val);
	r = scontrol(h, args, NULL, 0);
	if (r < 0 || !WIFEXITED(r) || WEXITSTATUS(r) != 0)
		fprintf(stderr, "cohort spank-watch: %s update jobid=%s AdminComment=...: %s\n", h->scontrol,
		        h->job, r == -ETIMEDOUT ? "no answer in 5 s" : r < 0 ? strerror(-r) : "failed");
}

static void finish(struct helper *h)
{
	if (h->ended)
		return;
	h->ended = 1;
	for (size_t i = 0; i < h->n; i++) {
		struct task *t = &h->t[i];

		if (t->started) {
			cohort_watch_tick(t->watch);
			cohort_recorder_sample(t->rec, t->watch);
		}
		cohort_watch_finish(t->watch);
		drain(t);
		cohort_recorder_end(t->rec, t->watch, 0);
		cohort_recorder_close(t->rec);
		t->rec = NULL;
	}
	spank_metrics_close();   /* the final figures: before the watchers go */
	for (size_t i = 0; i < h->n; i++) {
		cohort_watch_free(h->t[i].watch);
		h->t[i].watch = NULL;
	}
}

/*
 * --enforce: each task's budget, as cohort run's: the job's memory limit
 * (its cgroup's, where SLURM puts it) split among the step's tasks on this
 * node, less a margin (a twentieth, 64 MiB to 1 GiB, at most a quarter)
 * for the page cache and the rest of the job, so that cohort acts before
 * the kernel does. Without a limit it says so and only records.
 */
static void enforce_share(struct helper *h)
{
	struct cohort_cgmem cg;
	uint64_t share, margin;
	long tasks = h->local_tasks > 0 ? h->local_tasks : 1;

	if (!h->job_cg[0] || cohort_cgroup_read(NULL, h->job_cg, &cg) < 0 || cg.limit == UINT64_MAX ||
	    cg.limit == COHORT_MEM_UNKNOWN || cg.limit >= (1ULL << 62)) {
		fprintf(stderr, "cohort spank-watch: job %s has no memory limit in its cgroup (%s): "
		        "mode=enforce records only\n", h->job, h->job_cg[0] ? h->job_cg : "not found");
		return;
	}
	share = cg.limit / (uint64_t)tasks;
	margin = share / 20;
	if (margin < (64ULL << 20))
		margin = 64ULL << 20;
	if (margin > (1ULL << 30))
		margin = 1ULL << 30;
	if (margin * 4 > share)
		margin = share / 4;
	h->share = share - margin;
}

static int cmd_spank_watch_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "job", required_argument, NULL, 'j' },
		{ "step", required_argument, NULL, 's' },
		{ "ntasks", required_argument, NULL, 'n' },
		{ "host", required_argument, NULL, 'H' },
		{ "uid", required_argument, NULL, 'u' },
		{ "gid", required_argument, NULL, 'g' },
		{ "interval", required_argument, NULL, 'i' },
		{ "local-tasks", required_argument, NULL, 'L' },
		{ "enforce", no_argument, NULL, 'E' },
		{ "cpu-budget", required_argument, NULL, 'C' },
		{ "admin-comment", no_argument, NULL, 'A' },
		{ "scontrol", required_argument, NULL, 'S' },
		{ "stderr-verdict", no_argument, NULL, 'V' },
		{ "metrics", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	static struct helper h;
	struct utsname u;
	const char *metrics = NULL;
	char buf[512];
	size_t have = 0;
	int c;

	memset(&h, 0, sizeof(h));
	h.interval = 1;
	h.out_fd = -1;
	h.ntasks = -1;
	h.local_tasks = -1;
	h.err_fd = -1;
	h.scontrol = "scontrol";
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': h.dir = optarg; break;
		case 'j': h.job = optarg; break;
		case 's': h.step = optarg; break;
		case 'n': h.ntasks = strtol(optarg, NULL, 10); break;
		case 'H': h.host = optarg; break;
		case 'u': h.uid = (uid_t)strtoul(optarg, NULL, 10); break;
		case 'g': h.gid = (gid_t)strtoul(optarg, NULL, 10); break;
		case 'i':
			h.interval = strtod(optarg, NULL);
			if (!(h.interval >= 0.05 && h.interval <= 3600))
				return cli_usage_error(&cli_cmd_spank_watch, "invalid --interval '%s'", optarg);
			break;
		case 'L': h.local_tasks = strtol(optarg, NULL, 10); break;
		case 'E': h.enforce = 1; break;
		case 'C': {
			char *end;

			h.cpu_budget = strtod(optarg, &end);
			if (end == optarg || *end || !(h.cpu_budget >= 0.1 && h.cpu_budget <= 100))
				return cli_usage_error(&cli_cmd_spank_watch,
				                       "invalid --cpu-budget '%s': a percentage of one core, 0.1 to 100",
				                       optarg);
			h.cpu_budget /= 100;
			break;
		}
		case 'A': h.admin_comment = 1; break;
		case 'S': h.scontrol = optarg; break;
		case 'V': h.stderr_verdict = 1; break;
		case 'M': metrics = optarg; break;
		case 'h': help(stdout); return CLI_OK;
		case ':':
			return cli_usage_error(&cli_cmd_spank_watch, "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error(&cli_cmd_spank_watch, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (!h.dir || !h.job || !h.step || strchr(h.job, '/') || strchr(h.step, '/') || h.step[0] == '.')
		return cli_usage_error(&cli_cmd_spank_watch, "--dir, --job and --step are needed");
	if (!h.host) {
		uname(&u);
		u.nodename[strcspn(u.nodename, ".")] = '\0';
		h.host = u.nodename;
	}
	if (metrics)
		spank_metrics_open(metrics, h.job, h.step, h.host, h.interval);
	if (cohort_cgroup_find_job(NULL, h.job, h.job_cg, sizeof(h.job_cg)) < 0)
		h.job_cg[0] = '\0';
	if (h.enforce)
		enforce_share(&h);
	for (;;) {
		struct pollfd p = { .fd = 0, .events = POLLIN };
		int r = poll(&p, 1, (int)(next_due(&h) * 1000));

		if (r < 0 && errno != EINTR)
			break;
		if (r > 0) {
			ssize_t got = read_message(&h, buf + have, sizeof(buf) - 1 - have);
			char *nl;

			if (got <= 0 && !(got < 0 && errno == EINTR))
				break;
			if (got > 0)
				have += (size_t)got;
			buf[have] = '\0';
			while ((nl = strchr(buf, '\n')) != NULL) {
				*nl = '\0';
				line(&h, buf);
				have -= (size_t)(nl + 1 - buf);
				memmove(buf, nl + 1, have + 1);
			}
			if (have == sizeof(buf) - 1)
				have = 0;   /* a line too long to be ours */
		}
		tick(&h);
		/*
		 * The step's tasks ended here: the recordings are ended and the
		 * verdict said on srun's stderr now, while slurmstepd still
		 * forwards it (it waits for the end of that stderr, which we hold).
		 */
		if (!h.ended && all_ended(&h)) {
			finish(&h);
			say_on_stderr(&h);
			/*
			 * The plugin waits for this (wait= s at most) before the
			 * step may end, so the verdict is said and AdminComment
			 * set while the job still runs: the controller refuses
			 * AdminComment to a job that ended.
			 */
			if (h.stderr_verdict || h.admin_comment)
				(void)send(0, "done\n", 5, MSG_DONTWAIT | MSG_NOSIGNAL);
		}
	}
	finish(&h);
	say_on_stderr(&h);
	verdict(&h);
	if (h.out_fd >= 0)
		close(h.out_fd);
	return CLI_OK;
}

const struct cli_cmd cli_cmd_spank_watch = {
	.name = "spank-watch",
	.usage = "--dir DIR --job ID --step S [--ntasks N] [--host H] [--uid U --gid G] [--interval S] "
	         "[--local-tasks N] [--enforce] [--cpu-budget PERCENT] [--admin-comment] [--scontrol PATH] "
	         "[--stderr-verdict] [--metrics MDIR]",
	.summary = NULL,   /* not listed: spank_cohort.so runs it */
	.exec = cmd_spank_watch_exec,
	.help = help,
};
