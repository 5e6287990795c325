/*
 * supervise.c - the shell of `cohort run`: it spawns, polls and prints;
 * the watcher in libcohort (src/watch.c) measures and decides.
 *
 * One thread, one poll loop: a signalfd (SIGCHLD, SIGINT, SIGTERM, SIGHUP),
 * the workers' output pipes when lines are labelled, the watcher's kernel
 * notification descriptors, and a deadline for the next sample or the next
 * escalation. Each worker runs in its own process group (and, under
 * --enforce cgroup, its own memory cgroup), with a parent-death signal;
 * the supervisor is a child subreaper, so orphaned grandchildren come back
 * to it and die with the worker's group.
 *
 * Between fork() and exec the child calls only async-signal-safe
 * functions: its environment, the command's path and the cgroup's
 * descriptor are made before fork(), as cohort may one day run inside a
 * threaded host.
 */
#include "supervise.h"
#include "outbuf.h"
#include "reap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


const char *enforce_name(enum enforce e)
{
	switch (e) {
	case ENFORCE_CGROUP: return "cgroup";
	case ENFORCE_RLIMIT: return "rlimit";
	case ENFORCE_WATCH:  return "watch";
	case ENFORCE_NONE:   return "none";
	case ENFORCE_AUTO:   break;
	}
	return "auto";
}

/* Output of a labelled stream: whole lines go out with "RANK: " in front. */
struct linebuf {
	int fd;                    /* read end, -1 when closed */
	int out;                   /* 1 or 2 */
	size_t len;
	char buf[4096];
};

/* A process of a worker's tree, held by a pidfd: signalled as itself, never as a reused pid. */
struct held {
	pid_t pid;
	int fd;
};

struct worker {
	unsigned rank;
	pid_t pid;
	bool running;
	int status;                /* wait status once exited */
	bool has_cg;
	struct cohort_workcg cg;
	struct linebuf lines[2];
	char **envp;               /* made before fork */
	/* Stopping: 0 no, 1 SIGTERM sent, 2 SIGKILL sent. */
	int stop_stage;
	bool stopped_for_limit;    /* by a watcher decision (over its limit or the budget) */
	double stop_deadline;
	/*
	 * A stopped worker is stopped when nothing of it is left: its cgroup
	 * empty, or without one every process of its tree cohort saw (held
	 * by pidfds, so a reused pid is never signalled). 0 none left or not
	 * stopping, 1 waiting for them after the SIGKILL, until gone_deadline.
	 */
	struct held *held;
	size_t nheld;
	bool remnants;
	double gone_deadline;
	bool said_tree;            /* the note that it is stopped by its tree was queued */
};

struct sup {
	const struct run_opts *o;
	enum enforce enforce;      /* o->enforce, AUTO resolved */
	struct worker *w;
	unsigned nw, running;
	struct cohort_watch *watch;
	struct cohort_recorder *rec;
	bool rec_said;             /* a stopped recording was reported */
	int sigfd;
	double wall0;              /* CLOCK_REALTIME at start */
	struct cohort_workcg parent_cg;
	bool has_parent_cg;
	char catch_dir[64];        /* where the preload shim writes crash.<pid>, "" when off */
	char job_cg[COHORT_PATH_MAX]; /* the cgroup that holds the limit, for its counters */
	char exe[4096];            /* the command's path, resolved before fork */
	int stopping;              /* 0, 1 after a signal (graceful), 2 after a second */
	double stop_all_deadline;
	int first_fail;            /* exit status of the first worker to fail, -1 none */
	uint64_t ticks_written;
	struct outbuf out[2];      /* stdout, stderr: never waited on */
	int cg_hold;               /* the hold on parent_cg (an flock), -1 */
	struct run_metrics metrics; /* --metrics FILE */
};

static double rel(const struct sup *s)
{
	return cohort_watch_now(s->watch);
}

static const char *fmt_size(uint64_t v, char *buf, size_t size)
{
	return cohort_size_format(v, buf, size);
}

/* ---- recording and output ------------------------------------------ */

/* "cohort: <message>" on stderr, queued: a stalled reader of stderr stops nothing. */
static void __attribute__((format(printf, 2, 3))) say(struct sup *s, const char *fmt, ...)
{
	char msg[COHORT_MSG_MAX + 256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = (int)sizeof(msg) - 1;
	outbuf_line(&s->out[1], "cohort: ", msg, (size_t)n, false);
}

static void said_stop(struct sup *s, int r)
{
	if (r < 0 && !s->rec_said && !s->o->quiet && !cohort_recorder_in_memory(s->rec)) {
		say(s, "the recording %s stopped: %s; supervision goes on without it",
		    cohort_recorder_path(s->rec), strerror(-r));
		s->rec_said = true;
	}
}

static void stop_worker(struct sup *s, struct worker *w);

/* Write, say and act on what the watcher queued. */
static void drain_events(struct sup *s)
{
	struct cohort_event ev;

	while (cohort_watch_next_event(s->watch, &ev) == 1) {
		run_metrics_count(&s->metrics, &ev);
		if (ev.kind == COHORT_EVENT_CRASH_INFO && ev.backtrace[0]) {
			char out[sizeof(ev.backtrace)], frame[1024], sym[1024];
			size_t len = 0;
			const char *p = ev.backtrace;

			out[0] = '\0';
			while (*p) {
				size_t n = strcspn(p, "\n");
				int k;

				snprintf(frame, sizeof(frame), "%.*s", (int)n, p);
				cli_symbolize(frame, sym, sizeof(sym));
				k = snprintf(out + len, sizeof(out) - len, "%s%s", len ? "\n" : "", sym);
				if (k > 0 && (size_t)k < sizeof(out) - len)
					len += (size_t)k;
				p += n;
				if (*p == '\n')
					p++;
			}
			memcpy(ev.backtrace, out, len + 1);
		}
		said_stop(s, cohort_recorder_event(s->rec, &ev));
		if (ev.notice && !s->o->quiet)
			say(s, "%s", ev.message);
		if (ev.action == COHORT_ACTION_STOP && ev.rank >= 0 && (unsigned)ev.rank < s->nw) {
			s->w[ev.rank].stopped_for_limit = true;
			stop_worker(s, &s->w[ev.rank]);
		}
	}
}

/* The --metrics file, when due (or final); a failure said once. */
static void write_metrics(struct sup *s, bool final)
{
	if (run_metrics_write(&s->metrics, s->watch, final) == 1)
		say(s, "the metrics file stopped: %s; supervision goes on without it", s->metrics.error);
}

static void sample(struct sup *s)
{
	struct cohort_watch_totals t;

	cohort_watch_tick(s->watch);
	cohort_watch_totals(s->watch, &t);
	if (t.ticks != s->ticks_written) {
		s->ticks_written = t.ticks;
		said_stop(s, cohort_recorder_sample(s->rec, s->watch));
	}
	drain_events(s);
	write_metrics(s, false);
}

static void record_header(struct sup *s)
{
	const struct run_opts *o = s->o;
	struct utsname u;
	struct cohort_rec_header_info h = {
		.start = s->wall0, .supervisor_pid = getpid(), .job = o->job, .argv = o->argv,
		.workers = o->workers, .alloc = &o->alloc, .budget = o->budget,
		.budget_source = o->budget_source, .mem_per_worker = o->mem_per_worker,
		.enforce = enforce_name(s->enforce), .soft = o->soft, .interval = o->interval,
		.pss_budget = o->pss_budget, .grace = o->grace, .jobacct_type = o->jobacct,
		.jobacct_params = o->jobacct_params, .job_cgroup = s->job_cg,
		.catch_on = s->catch_dir[0] != '\0', .catch_off = o->catch_off,
		.task = &o->task,
	};

	uname(&u);
	h.host = u.nodename;
	said_stop(s, cohort_recorder_header(s->rec, &h));
}

/* ---- output labelling ------------------------------------------------ */

/* The line's bytes as they are (a NUL is a byte like another), "RANK: " in front. */
static void flush_line(struct sup *s, struct worker *w, struct linebuf *lb, size_t n)
{
	char prefix[16];

	snprintf(prefix, sizeof(prefix), "%u: ", w->rank);
	outbuf_line(&s->out[lb->out == 1 ? 0 : 1], prefix, lb->buf, n, false);
}

/*
 * Read what a worker wrote (the read end is non-blocking: a process that
 * holds the write end open never stops the supervisor). Returns true
 * when it read something, false on EAGAIN and at the end (then closed).
 */
static bool drain(struct sup *s, struct worker *w, struct linebuf *lb)
{
	ssize_t n;

	n = read(lb->fd, lb->buf + lb->len, sizeof(lb->buf) - lb->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return false;
	if (n <= 0) {
		if (lb->len)
			flush_line(s, w, lb, lb->len);
		lb->len = 0;
		close(lb->fd);
		lb->fd = -1;
		return false;
	}
	lb->len += (size_t)n;
	for (;;) {
		char *nl = memchr(lb->buf, '\n', lb->len);
		size_t take;

		if (!nl) {
			if (lb->len == sizeof(lb->buf)) {
				/* A line longer than the buffer goes out in pieces. */
				flush_line(s, w, lb, lb->len);
				lb->len = 0;
			}
			return true;
		}
		take = (size_t)(nl - lb->buf);
		flush_line(s, w, lb, take);
		memmove(lb->buf, nl + 1, lb->len - take - 1);
		lb->len -= take + 1;
	}
}

/* ---- spawning -------------------------------------------------------- */

/*
 * The command's path, as execvp would find it: argv0 itself when it holds
 * a slash, else the first executable file of that name on PATH. Returns 0
 * or -errno (ENOENT, EACCES) as execvp would fail.
 */
static int resolve_command(const char *argv0, char *out, size_t size)
{
	const char *path = getenv("PATH"), *p;
	int e = -ENOENT;

	if (!*argv0)
		return -ENOENT;
	if (strchr(argv0, '/')) {
		snprintf(out, size, "%s", argv0);
		return 0;
	}
	for (p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin"; ; p++) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);

		if ((size_t)snprintf(out, size, "%.*s%s%s", (int)n, p, n ? "/" : "", argv0) < size) {
			if (access(out, X_OK) == 0)
				return 0;
			if (errno == EACCES)
				e = -EACCES;
		}
		if (!colon)
			break;
		p = colon;
	}
	return e;
}

static char *env_entry(const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 2;
	char *e = malloc(n);

	if (e)
		snprintf(e, n, "%s=%s", name, value);
	return e;
}

/* The worker's environment: the supervisor's, with cohort's variables set. Made before fork. */
static char **make_env(const struct sup *s, const struct worker *w)
{
	const struct run_opts *o = s->o;
	static const char *const ours[] = { "COHORT_RANK", "COHORT_SIZE", "COHORT_JOB",
	                                    "COHORT_MEM_PER_WORKER", "LD_PRELOAD", "COHORT_CATCH_DIR",
	                                    "COHORT_SUPERVISOR" };
	size_t n = 0, k = 0;
	char **env, value[64];

	while (environ[n])
		n++;
	env = calloc(n + 9, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool replaced = false;

		for (size_t j = 0; j < sizeof(ours) / sizeof(ours[0]); j++) {
			size_t len = strlen(ours[j]);

			if (strncmp(environ[i], ours[j], len) == 0 && environ[i][len] == '=' &&
			    (j != 4 || s->catch_dir[0]))
				replaced = true;
		}
		if (!replaced && !(env[k++] = strdup(environ[i])))
			goto fail;
	}
	snprintf(value, sizeof(value), "%u", w->rank);
	if (!(env[k++] = env_entry("COHORT_RANK", value)))
		goto fail;
	/* The supervisor's pid: a SLURM plugin does not watch a step twice. */
	snprintf(value, sizeof(value), "%d", (int)getpid());
	if (!(env[k++] = env_entry("COHORT_SUPERVISOR", value)))
		goto fail;
	snprintf(value, sizeof(value), "%u", o->workers);
	if (!(env[k++] = env_entry("COHORT_SIZE", value)) || !(env[k++] = env_entry("COHORT_JOB", o->job)))
		goto fail;
	snprintf(value, sizeof(value), "%llu", (unsigned long long)o->mem_per_worker);
	if (!(env[k++] = env_entry("COHORT_MEM_PER_WORKER", value)))
		goto fail;
	if (s->catch_dir[0]) {
		const char *old = getenv("LD_PRELOAD");
		char pre[2048];

		snprintf(pre, sizeof(pre), "%s%s%s", o->catch_lib, old && *old ? " " : "", old ? old : "");
		if (!(env[k++] = env_entry("LD_PRELOAD", pre)) ||
		    !(env[k++] = env_entry("COHORT_CATCH_DIR", s->catch_dir)))
			goto fail;
	}
	env[k] = NULL;
	return env;
fail:
	for (size_t i = 0; i < k; i++)
		free(env[i]);
	free(env);
	return NULL;
}

static void free_env(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child_exec(const struct sup *s, const struct worker *w, pid_t supervisor, int errfd,
                       int cgfd, int outp[2], int errp[2], const sigset_t *oldmask)
{
	const struct run_opts *o = s->o;
	struct sigaction dfl;
	int e;

	setpgid(0, 0);
	/*
	 * The parent-death signal first, then the check: a supervisor that
	 * dies after the check sends the signal; one that died before it
	 * shows as another parent. Not as pid 1: under a child subreaper
	 * (systemd --user, tini, a batch system's shepherd) the orphan goes
	 * to it, so the parent is compared with the supervisor's own pid.
	 */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != supervisor)
		_exit(127);   /* the supervisor is already gone */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL);
	sigprocmask(SIG_SETMASK, oldmask, NULL);

	/* "0" moves the writer itself, on v1 and v2. */
	if (cgfd >= 0 && write(cgfd, "0", 1) != 1) {
		e = -errno;
		goto fail_errno;
	}
	if (s->enforce == ENFORCE_RLIMIT) {
		struct rlimit rl = { o->mem_per_worker, o->mem_per_worker };

		if (setrlimit(RLIMIT_DATA, &rl) < 0) {
			e = -errno;
			goto fail_errno;
		}
	}
	if (o->label) {
		dup2(outp[1], 1);
		dup2(errp[1], 2);
	}
	if (w->rank != 0) {
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (nul >= 0) {
			dup2(nul, 0);
			close(nul);
		}
	}
	execve(s->exe, o->argv, w->envp);
	e = -errno;
fail_errno:
	if (write(errfd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

/* Start one worker. Returns 0, or -errno of the failed exec (the worker is reaped). */
static int spawn(struct sup *s, struct worker *w, const sigset_t *oldmask)
{
	int errpipe[2], outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, cgfd = -1, e = 0;
	char path[COHORT_PATH_MAX + 16];
	ssize_t n;
	pid_t pid, self = getpid();

	errpipe[0] = errpipe[1] = -1;
	w->envp = make_env(s, w);
	if (!w->envp)
		return -ENOMEM;
	if (w->has_cg) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", w->cg.dir);
		cgfd = open(path, O_WRONLY | O_CLOEXEC);
		if (cgfd < 0) {
			e = -errno;
			goto out;
		}
	}
	if (pipe2(errpipe, O_CLOEXEC) < 0) {
		e = -errno;
		goto out;
	}
	if (s->o->label && (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)) {
		e = -errno;
		goto out;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		e = -errno;
		goto out;
	}
	if (pid == 0) {
		close(errpipe[0]);
		child_exec(s, w, self, errpipe[1], cgfd, outp, errp, oldmask);
	}
	setpgid(pid, pid);   /* also here: no race with a signal to the group */
	close(errpipe[1]);
	errpipe[1] = -1;
	do
		n = read(errpipe[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	w->pid = pid;
	if (n == (ssize_t)sizeof(e)) {
		int st;

		waitpid(pid, &st, 0);
		goto out;
	}
	e = 0;
	w->running = true;
	s->running++;
	if (s->o->label) {
		w->lines[0] = (struct linebuf){ .fd = outp[0], .out = 1 };
		w->lines[1] = (struct linebuf){ .fd = errp[0], .out = 2 };
		/* Only the supervisor's end: the worker's stays blocking as a program expects. */
		fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);
		fcntl(errp[0], F_SETFL, fcntl(errp[0], F_GETFL) | O_NONBLOCK);
		close(outp[1]);
		close(errp[1]);
		outp[0] = outp[1] = errp[0] = errp[1] = -1;
	}
out:
	if (cgfd >= 0)
		close(cgfd);
	if (errpipe[0] >= 0)
		close(errpipe[0]);
	if (errpipe[1] >= 0)
		close(errpipe[1]);
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	free_env(w->envp);
	w->envp = NULL;
	return e;
}

/* ---- stopping -------------------------------------------------------- */

#define GONE_WAIT_S 5.0   /* after SIGKILL, how long a stopped worker's processes may take to go */

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* A pidfd turns readable when its process has exited (a zombie included). */
static bool pidfd_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/* Hold every process of the tree below pid (pid included) not held yet. */
static void hold_tree(struct sup *s, struct worker *w, pid_t pid)
{
	pid_t *pids = NULL;
	size_t n = 0;

	if (cohort_pids_tree(&s->o->probe, pid, COHORT_TREE_ALL_THREADS, &pids, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct held *h = NULL, *p;
		int fd;

		for (size_t j = 0; j < w->nheld && !h; j++)
			if (w->held[j].pid == pids[i])
				h = &w->held[j];
		if (h && !pidfd_gone(h->fd))
			continue;
		fd = pidfd_open_(pids[i]);
		if (fd < 0)
			continue;
		if (h) {
			close(h->fd);   /* that pid was reused: the new process is in the tree now */
			h->fd = fd;
			continue;
		}
		p = realloc(w->held, (w->nheld + 1) * sizeof(*p));
		if (!p) {
			close(fd);
			break;
		}
		w->held = p;
		w->held[w->nheld++] = (struct held){ .pid = pids[i], .fd = fd };
	}
	cohort_pids_free(pids);
}

/* The worker's tree as it is now: from its root while it runs, and from each held process. */
static void hold_members(struct sup *s, struct worker *w)
{
	size_t n;

	if (w->running && w->pid > 0)
		hold_tree(s, w, w->pid);
	n = w->nheld;
	for (size_t i = 0; i < n; i++)
		if (!pidfd_gone(w->held[i].fd))
			hold_tree(s, w, w->held[i].pid);
}

static void release_members(struct worker *w)
{
	for (size_t i = 0; i < w->nheld; i++)
		close(w->held[i].fd);
	free(w->held);
	w->held = NULL;
	w->nheld = 0;
}

/*
 * Signal every process of a worker: its process group, and every process
 * in its cgroup (setsid escapees included), or without a cgroup every
 * process of its tree cohort can see. Returns how many processes outside
 * the group were signalled.
 */
static unsigned signal_members(struct sup *s, struct worker *w, int sig)
{
	unsigned outside = 0;

	/* The tree first: once the group has the signal, its root may be gone, and its tree with it. */
	if (!w->has_cg)
		hold_members(s, w);
	if (w->running && w->pid > 0)
		kill(-w->pid, sig);
	if (w->has_cg) {
		pid_t *pids = NULL;
		size_t n = 0;

		if (cohort_pids_cgroup(&s->o->probe, w->cg.dir, &pids, &n) == 0)
			for (size_t i = 0; i < n; i++)
				if ((!w->running || getpgid(pids[i]) != w->pid) && kill(pids[i], sig) == 0)
					outside++;
		cohort_pids_free(pids);
		return outside;
	}
	for (size_t i = 0; i < w->nheld; i++) {
		if (pidfd_gone(w->held[i].fd))
			continue;
		if (w->running && getpgid(w->held[i].pid) == w->pid)
			continue;   /* had it with the group */
		if (syscall(SYS_pidfd_send_signal, w->held[i].fd, sig, NULL, 0) == 0)
			outside++;
	}
	return outside;
}

/* Processes of a worker still there: in its cgroup, or of its tree; the root included. */
static unsigned members_left(struct sup *s, struct worker *w)
{
	unsigned left = 0;

	if (w->has_cg) {
		pid_t *pids = NULL;
		size_t n = 0;

		if (cohort_pids_cgroup(&s->o->probe, w->cg.dir, &pids, &n) == 0)
			left = (unsigned)n;
		cohort_pids_free(pids);
		return left;
	}
	hold_members(s, w);
	for (size_t i = 0; i < w->nheld; i++)
		left += !pidfd_gone(w->held[i].fd);
	return left;
}

static void signal_worker(struct sup *s, struct worker *w, int sig)
{
	signal_members(s, w, sig);
}

static void stop_worker(struct sup *s, struct worker *w)
{
	unsigned outside;

	if (!w->running || w->stop_stage)
		return;
	outside = signal_members(s, w, SIGTERM);
	w->stop_stage = 1;
	w->stop_deadline = rel(s) + s->o->grace;
	w->remnants = true;
	cohort_watch_stopping(s->watch, w->rank, 0);
	if (!w->has_cg && outside && !w->said_tree) {
		char msg[COHORT_MSG_MAX];

		/* Without a cgroup, the tree is all cohort knows of a worker: it says so. */
		snprintf(msg, sizeof(msg), "rank %u has no cgroup of its own: cohort stops the processes of "
		         "its tree it has seen, %u of them outside its process group (setsid, a daemon); "
		         "a process that left the tree unseen is only killed at the end of the run",
		         w->rank, outside);
		cohort_watch_note(s->watch, COHORT_EVENT_WARNING, (int)w->rank, 1, msg);
		w->said_tree = true;
		drain_events(s);
	}
}

static void stop_all(struct sup *s, int sig)
{
	for (unsigned i = 0; i < s->nw; i++)
		if (s->w[i].running) {
			signal_worker(s, &s->w[i], sig);
			cohort_watch_stopping(s->watch, i, sig == SIGKILL);
		}
	s->stop_all_deadline = rel(s) + s->o->grace;
}

/* A stopped worker whose root has ended but whose other processes may not have. */
static bool stopping(const struct worker *w)
{
	return w->stop_stage && w->remnants;
}

static double next_deadline(const struct sup *s)
{
	double d = cohort_watch_next_tick(s->watch);

	for (unsigned k = 0; k < s->nw; k++) {
		const struct worker *w = &s->w[k];

		if (stopping(w) && w->stop_stage == 1 && w->stop_deadline < d)
			d = w->stop_deadline;
		/* Waiting for the last processes to go: look again soon. */
		if (stopping(w) && w->stop_stage == 2 && rel(s) + 0.05 < d)
			d = rel(s) + 0.05;
	}
	if (s->stopping == 1 && s->stop_all_deadline < d)
		d = s->stop_all_deadline;
	return d;
}

/*
 * A stopped worker's end: SIGKILL to whatever of it is left at the grace
 * deadline, then its cgroup (or its tree) must empty; if it does not
 * within GONE_WAIT_S, the recording says so instead of letting "stopped"
 * stand alone.
 */
static void escalate(struct sup *s)
{
	double t = rel(s);

	for (unsigned k = 0; k < s->nw; k++) {
		struct worker *w = &s->w[k];
		unsigned left;

		if (!stopping(w))
			continue;
		if (w->stop_stage == 1 && t >= w->stop_deadline) {
			signal_members(s, w, SIGKILL);
			w->stop_stage = 2;
			w->gone_deadline = t + GONE_WAIT_S;
			if (w->running)
				cohort_watch_stopping(s->watch, k, 1);
		}
		if (w->stop_stage == 1 && w->running)
			continue;
		left = members_left(s, w);
		if (left == 0) {
			w->remnants = false;
			release_members(w);
		} else if (w->stop_stage == 2 && t >= w->gone_deadline) {
			char msg[COHORT_MSG_MAX];

			snprintf(msg, sizeof(msg), "rank %u: %u process%s of it still ran %.0f s after SIGKILL",
			         w->rank, left, left == 1 ? "" : "es", GONE_WAIT_S);
			cohort_watch_note(s->watch, COHORT_EVENT_WARNING, (int)w->rank, 1, msg);
			drain_events(s);
			w->remnants = false;
			release_members(w);
		}
	}
	if (s->stopping == 1 && t >= s->stop_all_deadline) {
		stop_all(s, SIGKILL);
		s->stopping = 2;
	}
}

/* The loop goes on while a root runs or a stopped worker's other processes are not gone. */
static bool busy(const struct sup *s)
{
	if (s->running > 0)
		return true;
	for (unsigned k = 0; k < s->nw; k++)
		if (stopping(&s->w[k]))
			return true;
	return false;
}

static void reap(struct sup *s);

/*
 * Processes that left their worker's process group (setsid, a daemon) but
 * not the supervisor: orphans handed to it as subreaper, and whatever is
 * still in a worker's cgroup. Killed until none is left (a few rounds: a
 * process may fork while it is being killed).
 */
static void kill_leftovers(struct sup *s)
{
	const struct cohort_probe *probe = &s->o->probe;

	for (int round = 0; round < 5; round++) {
		unsigned killed = 0;
		pid_t *pids = NULL;
		size_t n = 0;

		if (cohort_pids_tree(probe, getpid(), COHORT_TREE_ALL_THREADS, &pids, &n) == 0) {
			for (size_t i = 0; i < n; i++)
				if (pids[i] != getpid() && kill(pids[i], SIGKILL) == 0)
					killed++;
			cohort_pids_free(pids);
		}
		for (unsigned k = 0; k < s->nw; k++) {
			if (!s->w[k].has_cg || cohort_pids_cgroup(probe, s->w[k].cg.dir, &pids, &n) < 0)
				continue;
			for (size_t i = 0; i < n; i++)
				if (kill(pids[i], SIGKILL) == 0)
					killed++;
			cohort_pids_free(pids);
		}
		if (!killed)
			return;
		usleep(10000);
		reap(s);
	}
}

/* ---- exits ----------------------------------------------------------- */

static int status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}


static void worker_exited(struct sup *s, struct worker *w, int st)
{
	const struct run_opts *o = s->o;
	char how[96], msg[COHORT_MSG_MAX];

	w->running = false;
	w->status = st;
	s->running--;
	cohort_watch_exited(s->watch, w->rank, st);
	drain_events(s);
	/*
	 * The first failure in time, also after a signal: srun's rule, and the
	 * story's order. A worker cohort stopped for its limit failed with 143
	 * whatever it returned (mpirun exits 1 on the SIGTERM), one whose tree
	 * lost a process to the OOM killer with 137.
	 */
	if (s->first_fail < 0) {
		struct cohort_worker_state ws;

		if (w->stopped_for_limit)
			s->first_fail = 128 + SIGTERM;
		else if (cohort_watch_worker(s->watch, w->rank, &ws) == 0 && ws.oom_kills_below)
			s->first_fail = 128 + SIGKILL;
		else if (status_code(st) != 0)
			s->first_fail = status_code(st);
	}
	if (status_code(st) != 0 && o->kill_on_bad_exit && !s->stopping && s->running) {
		cohort_status_describe(st, how, sizeof(how));
		snprintf(msg, sizeof(msg), "rank %u failed (%s): stopping the other workers "
		         "(--kill-on-bad-exit)", w->rank, how);
		cohort_watch_note(s->watch, COHORT_EVENT_WARNING, (int)w->rank, 1, msg);
		drain_events(s);
		s->stopping = 1;
		stop_all(s, SIGTERM);
	}
}

static void reap(struct sup *s)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);

		if (pid <= 0)
			return;
		for (unsigned k = 0; k < s->nw; k++)
			if (s->w[k].pid == pid && s->w[k].running) {
				worker_exited(s, &s->w[k], st);
				break;
			}
		/* Anything else is an orphaned grandchild handed to us as subreaper. */
	}
}

static void on_signal(struct sup *s, const struct signalfd_siginfo *si)
{
	int sig = (int)si->ssi_signo;
	char what[160];

	if (sig == SIGCHLD) {
		reap(s);
		return;
	}
	if (sig == SIGUSR1 || sig == SIGUSR2) {
		/* A notice, not a stop (sbatch --signal=B:USR1@60 before the time limit): passed on. */
		cohort_watch_signal(s->watch, sig, (pid_t)si->ssi_pid, si->ssi_pid ? (long)si->ssi_uid : -1,
		                    "passing it to the workers");
		drain_events(s);
		for (unsigned k = 0; k < s->nw; k++)
			if (s->w[k].running)
				signal_worker(s, &s->w[k], sig);
		return;
	}
	/* The figures of this moment go into the recording before anything is stopped. */
	sample(s);
	if (s->stopping == 0) {
		snprintf(what, sizeof(what), "passing it to the workers, SIGKILL in %.0f s (again to kill now)",
		         s->o->grace);
		s->stopping = 1;
	} else {
		snprintf(what, sizeof(what), "a second time: killing the workers now");
		s->stopping = 2;
	}
	cohort_watch_signal(s->watch, sig, (pid_t)si->ssi_pid, si->ssi_pid ? (long)si->ssi_uid : -1, what);
	drain_events(s);
	stop_all(s, s->stopping == 1 ? sig : SIGKILL);
}

/* ---- the end --------------------------------------------------------- */

/*
 * The findings, from the recording read back through the library: exactly
 * what `cohort report` says of the same file.
 */
static void findings(struct sup *s, FILE *out)
{
	struct cohort_recording *rec;
	struct cohort_finding *f;
	char path[64], err[COHORT_MSG_MAX];
	size_t n;

	if (cohort_recorder_error(s->rec))
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", cohort_recorder_fd(s->rec));
	if (cohort_recording_load(path, &rec, err, sizeof(err)) < 0) {
		fprintf(out, "cohort: cannot read back the recording: %s\n", err);
		return;
	}
	snprintf(rec->path, sizeof(rec->path), "%s", cohort_recorder_path(s->rec));
	if (cohort_diagnose(&rec, 1, &f, &n) == 0) {
		cli_print_findings(out, f, n, false, s->o->task.known && s->o->task.ntasks > 1);
		cohort_findings_free(f);
	}
	cohort_recording_free(rec);
}

static void summary(struct sup *s, FILE *out)
{
	char how[96], a[32], b[32], c[32];
	unsigned ok = 0;
	bool exact = false;

	for (unsigned k = 0; k < s->nw; k++) {
		struct cohort_worker_state st;

		ok += s->w[k].pid > 0 && !s->w[k].running && status_code(s->w[k].status) == 0;
		if (cohort_watch_worker(s->watch, k, &st) == 0 && st.peak_cgroup)
			exact = true;
	}
	fprintf(out, "cohort: %u worker%s, %u exited 0", s->nw, s->nw == 1 ? "" : "s", ok);
	if (!cohort_recorder_in_memory(s->rec))
		fprintf(out, "; recording in %s%s", cohort_recorder_path(s->rec),
		        cohort_recorder_error(s->rec) ? " (stopped early)" : "");
	/* The exact peak: the worker cgroup's own counter, which no sampling phase can miss. */
	fprintf(out, "\n  %-5s %-8s %-30s %-11s %-11s%s\n", "rank", "pid", "end", "peak PSS", "peak USS",
	        exact ? " peak (cgroup)" : "");
	for (unsigned k = 0; k < s->nw; k++) {
		struct worker *w = &s->w[k];
		struct cohort_worker_state st;

		cohort_watch_worker(s->watch, k, &st);
		if (w->pid <= 0)
			snprintf(how, sizeof(how), "not started");
		else
			cohort_status_describe(w->status, how, sizeof(how));
		/* "-": no page walk of it ever landed (it ended first), not zero bytes. */
		char pid[16] = "-";

		if (w->pid > 0)
			snprintf(pid, sizeof(pid), "%d", (int)w->pid);
		/* A worker never started has no pid: "-", not 0. */
		fprintf(out, "  %-5u %-8s %-30s %-11s %-11s%s%s\n", w->rank, pid, how,
		        st.peak_pss || st.peak_uss ? fmt_size(st.peak_pss, a, sizeof(a)) : "-",
		        st.peak_pss || st.peak_uss ? fmt_size(st.peak_uss, b, sizeof(b)) : "-",
		        exact ? " " : "", exact ? (st.peak_cgroup ? fmt_size(st.peak_cgroup, c, sizeof(c)) : "-") : "");
	}
	findings(s, out);
}

/* No segment outlives a job that is this supervisor's alone (local-<pid>). */
static void remove_segments(struct sup *s)
{
	const struct run_opts *o = s->o;
	struct cohort_seg_options segopt = { .job = o->job, .probe = &o->probe };
	struct cohort_event ev;
	unsigned failed = 0;
	int n;

	/* A SLURM job's segments may serve its other steps and tasks: `cohort shm gc` takes those. */
	if (strncmp(o->job, "local-", 6) != 0)
		return;
	n = cohort_seg_unlink_job(&segopt, &failed);
	if (n <= 0 && failed == 0)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = COHORT_EVENT_SEGMENTS_REMOVED;
	ev.t = rel(s);
	ev.rank = -1;
	ev.nfields = 2;
	ev.fields[0] = (struct cohort_event_field){ .name = "removed", .type = COHORT_FIELD_U64,
	                                            .v.u = n > 0 ? (uint64_t)n : 0 };
	ev.fields[1] = (struct cohort_event_field){ .name = "failed", .type = COHORT_FIELD_U64,
	                                            .v.u = failed };
	snprintf(ev.message, sizeof(ev.message), "removed %d shared segment%s that job %s left in "
	         "/dev/shm%s", n > 0 ? n : 0, n == 1 ? "" : "s", o->job,
	         failed ? "; some could not be removed" : "");
	said_stop(s, cohort_recorder_event(s->rec, &ev));
}

/* ---- worker cgroups -------------------------------------------------- */

static void teardown_cgroups(struct sup *s);

/*
 * What supervisors killed with SIGKILL left in this cgroup: their worker
 * cgroups, the processes still in them, their local jobs' segments. Done
 * at every start, whatever this run enforces: the killed one may have
 * made cgroups where this one does not.
 */
static void reap_dead(struct sup *s)
{
	struct reaped *x;
	size_t n;

	if (reap_dead_supervisors(&s->o->probe, false, true, &x, &n) < 0)
		return;
	for (size_t i = 0; i < n && !s->o->quiet; i++) {
		if (!x[i].killed && !x[i].cgroups && !x[i].segments)
			continue;   /* not ours to remove (another user's), nothing done */
		char procs[96] = "no process";

		if (!x[i].killed && x[i].left)
			snprintf(procs, sizeof(procs), "processes it could not kill");
		else if (x[i].killed)
			snprintf(procs, sizeof(procs), "%u process%s (killed%s)", x[i].killed,
			         x[i].killed == 1 ? "" : "es", x[i].left ? "; some are still there" : "");
		say(s, "supervisor %d is gone and left %s in %s: removed %u cgroup%s and %u segment%s of "
		    "job local-%d", (int)x[i].supervisor, procs, x[i].cgroup, x[i].cgroups,
		    x[i].cgroups == 1 ? "" : "s", x[i].segments, x[i].segments == 1 ? "" : "s",
		    (int)x[i].supervisor);
		outbuf_flush(&s->out[1]);
	}
	free(x);
}

/*
 * Worker cgroups: cohort-<pid>-<start> holding the budget, rank-K below it
 * holding each worker's share, held (an flock) while this supervisor
 * lives. Under AUTO a failure falls back to watching.
 */
static int setup_cgroups(struct sup *s)
{
	const struct run_opts *o = s->o;
	char name[64];
	int r;

	r = cohort_workcg_supervisor_name(&o->probe, name, sizeof(name));
	if (r >= 0)
		r = cohort_workcg_create(&o->probe, NULL, name, o->budget, &s->parent_cg);
	if (r < 0) {
		if (s->enforce == ENFORCE_AUTO) {
			s->enforce = ENFORCE_WATCH;
			return 0;
		}
		cli_error("--enforce cgroup: cannot create a memory cgroup for the workers: %s "
		          "(it needs root, or a delegated cgroup v2 subtree; --enforce watch works anywhere)",
		          cohort_strerror(r));
		return r;
	}
	s->has_parent_cg = true;
	s->cg_hold = cohort_workcg_hold(&s->parent_cg);
	for (unsigned k = 0; k < s->nw; k++) {
		snprintf(name, sizeof(name), "rank-%u", k);
		r = cohort_workcg_create(&o->probe, s->parent_cg.dir, name, o->mem_per_worker, &s->w[k].cg);
		if (r < 0 && s->enforce == ENFORCE_AUTO) {
			for (unsigned j = 0; j < k; j++)
				s->w[j].has_cg = false;
			teardown_cgroups(s);
			s->has_parent_cg = false;
			s->enforce = ENFORCE_WATCH;
			return 0;
		}
		if (r < 0) {
			cli_error("--enforce cgroup: cannot create %s/%s: %s", s->parent_cg.dir, name,
			          cohort_strerror(r));
			return r;
		}
		s->w[k].has_cg = true;
	}
	s->enforce = ENFORCE_CGROUP;
	return 0;
}

static void teardown_cgroups(struct sup *s)
{
	if (!s->has_parent_cg)
		return;
	/* Processes leave a cgroup a moment after they are reaped. */
	for (int i = 0; i < 100; i++) {
		if (cohort_workcg_remove(&s->parent_cg) != -EBUSY)
			break;
		usleep(20000);
	}
	if (s->cg_hold >= 0)
		close(s->cg_hold);
	s->cg_hold = -1;
}

/* The cgroup whose limit binds the job: its counters tell of OOM kills. */
static void find_job_cgroup(struct sup *s)
{
	const struct run_opts *o = s->o;

	if (o->alloc.mem_limit_source == COHORT_SRC_CGROUP) {
		char *slash;

		snprintf(s->job_cg, sizeof(s->job_cg), "%s", o->alloc.mem_limit_where);
		slash = strrchr(s->job_cg, '/');
		if (slash)
			*slash = '\0';
	} else if (cohort_cgroup_of_pid(&o->probe, 0, s->job_cg, sizeof(s->job_cg), NULL) < 0) {
		s->job_cg[0] = '\0';
	}
}

static enum cohort_enforce watch_enforce(enum enforce e)
{
	switch (e) {
	case ENFORCE_CGROUP: return COHORT_ENFORCE_CGROUP;
	case ENFORCE_RLIMIT: return COHORT_ENFORCE_RLIMIT;
	case ENFORCE_WATCH:  return COHORT_ENFORCE_WATCH;
	case ENFORCE_NONE:
	case ENFORCE_AUTO:   break;
	}
	return COHORT_ENFORCE_NONE;
}

static int start_watch(struct sup *s)
{
	const struct run_opts *o = s->o;
	int sums = -1;
	struct cohort_watch_opts wo = {
		.probe = &o->probe, .workers = o->workers, .budget = o->budget,
		.mem_per_worker = o->mem_per_worker, .enforce = watch_enforce(s->enforce), .soft = o->soft,
		.interval = o->interval, .pss_budget = o->pss_budget, .alloc = &o->alloc,
		.job_cgroup = s->job_cg[0] ? s->job_cg : NULL,
		.crash_dir = s->catch_dir[0] ? s->catch_dir : NULL, .grace = o->grace,
	};

	/* Unknown when the controller could not be asked: the warning then says "if". */
	if (o->have_slurm_config)
		sums = cohort_slurm_sums_rss(&o->slurm_config);
	wo.slurm_sums_rss = sums;
	return cohort_watch_create(&wo, &s->watch);
}

/* ---- the loop -------------------------------------------------------- */

static void loop(struct sup *s)
{
	size_t cap = 1 + 2 * (size_t)s->nw + 16 + 2;
	struct pollfd *pfd = calloc(cap, sizeof(*pfd));
	struct worker **owner = calloc(cap, sizeof(*owner));
	struct linebuf **lbs = calloc(cap, sizeof(*lbs));

	if (!pfd || !owner || !lbs) {
		cli_error("out of memory for %u workers", s->nw);
		s->stopping = 2;
		stop_all(s, SIGKILL);
	}
	while (busy(s) && pfd && owner && lbs) {
		nfds_t n = 0, nwatch, first_watch, first_out;
		int fds[16];
		double wait;
		int timeout_ms;

		if (rel(s) >= cohort_watch_next_tick(s->watch))
			sample(s);
		escalate(s);
		pfd[n++] = (struct pollfd){ .fd = s->sigfd, .events = POLLIN };
		first_watch = n;
		nwatch = cohort_watch_fds(s->watch, fds, 16);
		if (nwatch > 16)
			nwatch = 16;
		for (nfds_t i = 0; i < nwatch; i++)
			pfd[n++] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		/* Our own output, when a reader is behind: written as it drains, never waited on. */
		first_out = n;
		for (int i = 0; i < 2; i++)
			if (outbuf_pending(&s->out[i])) {
				owner[n] = NULL;
				lbs[n] = NULL;
				pfd[n++] = (struct pollfd){ .fd = outbuf_pollfd(&s->out[i]), .events = POLLOUT };
			}
		for (unsigned k = 0; k < s->nw; k++)
			for (int i = 0; i < 2; i++)
				if (s->w[k].lines[i].fd >= 0) {
					owner[n] = &s->w[k];
					lbs[n] = &s->w[k].lines[i];
					pfd[n++] = (struct pollfd){ .fd = s->w[k].lines[i].fd, .events = POLLIN };
				}
		wait = next_deadline(s) - rel(s);
		timeout_ms = wait <= 0 ? 0 : (int)ceil(wait * 1000);
		if (poll(pfd, n, timeout_ms) < 0 && errno != EINTR)
			break;
		for (nfds_t i = first_watch; i < first_watch + nwatch; i++)
			if (pfd[i].revents) {
				cohort_watch_ready(s->watch, pfd[i].fd);
				drain_events(s);
			}
		for (nfds_t i = first_out; i < n; i++)
			if (pfd[i].revents && !lbs[i])
				outbuf_flush(&s->out[pfd[i].fd == outbuf_pollfd(&s->out[0]) ? 0 : 1]);
		for (nfds_t i = first_out; i < n; i++)
			if (pfd[i].revents && lbs[i])
				drain(s, owner[i], lbs[i]);
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				on_signal(s, &si);
		}
	}
	free(pfd);
	free(owner);
	free(lbs);
}

static int spawn_all(struct sup *s, const sigset_t *oldmask)
{
	const struct run_opts *o = s->o;

	for (unsigned k = 0; k < s->nw; k++) {
		int r = spawn(s, &s->w[k], oldmask);

		if (r < 0) {
			cli_error("cannot run '%s': %s", o->argv[0], strerror(-r));
			cohort_watch_spawn_failed(s->watch, k, s->w[k].pid, o->argv[0], -r);
			drain_events(s);
			s->w[k].pid = 0;
			s->stopping = 2;
			stop_all(s, SIGKILL);
			return 127;
		}
		cohort_watch_start(s->watch, k, s->w[k].pid, s->w[k].has_cg ? s->w[k].cg.dir : NULL,
		                   COHORT_WATCH_CHILD);
	}
	drain_events(s);
	return 0;
}

/*
 * What `cohort run` returns: the first failing worker's code (128+signal
 * for a signal); when every worker's root exited 0 but the run went wrong
 * anyway, 128+SIGKILL (137) when the kernel OOM-killed a process in a
 * worker's cgroup, 128+SIGTERM (143) when cohort stopped a worker over its
 * limit: a batch script's `|| exit 1` must fire whatever the program did
 * with the signal.
 */
static int exit_status(const struct sup *s, int rc)
{
	if (rc != 0)
		return rc;
	rc = s->first_fail >= 0 ? s->first_fail : 0;
	/*
	 * Each worker's code tells its story: 143 when cohort stopped it for
	 * its limit, whatever the program then returned (mpirun exits 1 on
	 * the SIGTERM, a Python program 0); else 137 when the kernel's OOM
	 * killer killed a process of its tree; else its own status. The
	 * first worker's with a story to tell, in rank order.
	 */
	for (unsigned k = 0; rc == 0 && k < s->nw; k++) {
		struct cohort_worker_state st;

		if (s->w[k].stopped_for_limit)
			rc = 128 + SIGTERM;
		else if (cohort_watch_worker(s->watch, k, &st) == 0 && st.oom_kills_below)
			rc = 128 + SIGKILL;
		else
			rc = status_code(s->w[k].status);
	}
	return rc;
}

/*
 * Touch the stack the supervisor will need now. Its deepest calls come at
 * the end (exits, crash files, the findings); if the system refuses memory
 * by then (RLIMIT_AS, a full node), growing the stack would be a SIGSEGV
 * instead of an error cohort can report.
 */
static void __attribute__((noinline)) reserve_stack(void)
{
	volatile char pad[256 * 1024];

	for (size_t i = 0; i < sizeof(pad); i += 4096)
		pad[i] = 0;
	pad[sizeof(pad) - 1] = 0;
}

#define FINAL_STALL_S 5.0   /* at the end, how long a reader may make no progress */

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What the workers wrote last, without waiting on a process that keeps a pipe open. */
static void drain_all(struct sup *s, bool close_all)
{
	for (unsigned k = 0; k < s->nw; k++)
		for (int i = 0; i < 2; i++) {
			struct linebuf *lb = &s->w[k].lines[i];

			while (lb->fd >= 0 && drain(s, &s->w[k], lb))
				;
			if (close_all && lb->fd >= 0) {
				if (lb->len)
					flush_line(s, &s->w[k], lb, lb->len);
				close(lb->fd);
				lb->fd = -1;
			}
		}
}

/* Say where output was dropped: in the stream itself, and on stderr for stdout's drops. */
static void note_drops(struct sup *s)
{
	struct outbuf *o = &s->out[0];

	if (o->total_dropped_lines && !s->o->quiet)
		say(s, "%llu line%s (%llu bytes) of the workers' stdout were dropped: its reader did not "
		    "keep up, and cohort never waits on output", (unsigned long long)o->total_dropped_lines,
		    o->total_dropped_lines == 1 ? "" : "s", (unsigned long long)o->total_dropped_bytes);
	outbuf_note_drops(&s->out[0]);
	outbuf_note_drops(&s->out[1]);
}

/*
 * What is still queued for a reader that is behind: written as it drains,
 * for as long as it makes progress (FINAL_STALL_S without any ends it),
 * and never past a SIGINT, SIGTERM or SIGHUP.
 */
static void flush_output(struct sup *s)
{
	double last = mono();

	for (;;) {
		struct pollfd p[3];
		size_t before = s->out[0].len + s->out[1].len, after;
		nfds_t n = 0;

		outbuf_flush(&s->out[0]);
		outbuf_flush(&s->out[1]);
		/* After SIGINT/TERM/HUP, what cannot go out now is not waited for. */
		if (s->stopping || (!outbuf_pending(&s->out[0]) && !outbuf_pending(&s->out[1])))
			return;
		after = s->out[0].len + s->out[1].len;
		if (after < before)
			last = mono();
		else if (mono() - last > FINAL_STALL_S)
			return;
		if (s->sigfd >= 0)
			p[n++] = (struct pollfd){ .fd = s->sigfd, .events = POLLIN };
		for (int i = 0; i < 2; i++)
			if (outbuf_pending(&s->out[i]))
				p[n++] = (struct pollfd){ .fd = outbuf_pollfd(&s->out[i]), .events = POLLOUT };
		if (poll(p, n, 100) < 0 && errno != EINTR)
			return;
		if (s->sigfd >= 0 && (p[0].revents & POLLIN)) {
			struct signalfd_siginfo si;

			while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP)
					return;
		}
	}
}

int supervise(const struct run_opts *o)
{
	struct sup s;
	sigset_t mask, oldmask;
	struct timespec ts;
	struct sigaction ign = { .sa_handler = SIG_IGN }, oldpipe;
	int rc = 0, r;

	reserve_stack();
	memset(&s, 0, sizeof(s));
	s.o = o;
	s.nw = o->workers;
	s.first_fail = -1;
	s.sigfd = -1;
	s.cg_hold = -1;
	/* A reader that went away is an EPIPE to note, not a signal that ends supervision. */
	sigaction(SIGPIPE, &ign, &oldpipe);
	fflush(stdout);
	fflush(stderr);
	outbuf_init(&s.out[0], 1);
	outbuf_init(&s.out[1], 2);
	clock_gettime(CLOCK_REALTIME, &ts);
	s.wall0 = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	s.w = calloc(s.nw, sizeof(*s.w));
	if (!s.w) {
		cli_error("out of memory for %u workers", s.nw);
		return CLI_ERROR;
	}
	for (unsigned k = 0; k < s.nw; k++) {
		s.w[k].rank = k;
		s.w[k].lines[0].fd = s.w[k].lines[1].fd = -1;
	}
	r = resolve_command(o->argv[0], s.exe, sizeof(s.exe));
	if (r < 0)
		snprintf(s.exe, sizeof(s.exe), "%s", o->argv[0]);   /* execve reports the error */
	find_job_cgroup(&s);
	s.rec = o->rec;   /* opened by cmd-run.c, once, so that the name is this supervisor's alone */
	if (!s.rec && (r = cohort_recorder_open(o->record, &s.rec)) < 0) {
		cli_error("cannot write the recording %s: %s (use --record FILE elsewhere, or --no-record)",
		          o->record ? o->record : "in memory", strerror(-r));
		rc = CLI_ERROR;
		goto out;
	}
	if (o->catch_lib) {
		snprintf(s.catch_dir, sizeof(s.catch_dir), "/tmp/cohort-catch-XXXXXX");
		if (!mkdtemp(s.catch_dir))
			s.catch_dir[0] = '\0';
	}
	reap_dead(&s);
	s.enforce = o->enforce;
	if ((s.enforce == ENFORCE_CGROUP || s.enforce == ENFORCE_AUTO) && setup_cgroups(&s) < 0) {
		rc = CLI_ERROR;
		goto out;
	}
	if ((r = start_watch(&s)) < 0) {
		cli_error("cannot start watching: %s", cohort_strerror(r));
		rc = CLI_ERROR;
		goto out;
	}
	record_header(&s);
	run_metrics_init(&s.metrics, o);   /* first written at the first sample, after the spawns */

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);
	s.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s.sigfd < 0) {
		cli_error("signalfd: %s", strerror(errno));
		rc = CLI_ERROR;
		goto out_mask;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	rc = spawn_all(&s, &oldmask);
	loop(&s);
	drain_all(&s, false);
	/* Nothing of a worker outlives the supervisor. */
	for (unsigned k = 0; k < s.nw; k++)
		if (s.w[k].pid > 0)
			kill(-s.w[k].pid, SIGKILL);
	kill_leftovers(&s);
	reap(&s);
	drain_all(&s, true);
	cohort_watch_finish(s.watch);   /* crashes of grandchildren that died after their worker */
	drain_events(&s);
	remove_segments(&s);
	rc = exit_status(&s, rc);
	said_stop(&s, cohort_recorder_end(s.rec, s.watch, rc));
	write_metrics(&s, true);
	note_drops(&s);
	if (!o->quiet) {
		char *text = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&text, &len);

		if (m) {
			summary(&s, m);
			fclose(m);
			if (len && text[len - 1] == '\n')
				len--;
			outbuf_line(&s.out[1], NULL, text, len, true);
		} else {
			/*
			 * Out of memory: what is queued goes first, then the
			 * summary straight to stderr, which has no buffer to
			 * allocate (it may then wait on a slow reader, once).
			 */
			flush_output(&s);
			summary(&s, stderr);
		}
		free(text);
	}
	flush_output(&s);
	close(s.sigfd);
out_mask:
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
out:
	if (s.catch_dir[0]) {
		if (s.watch) {
			cohort_watch_finish(s.watch);   /* empties it, recording what is left */
			drain_events(&s);
		}
		rmdir(s.catch_dir);
	}
	teardown_cgroups(&s);
	cohort_recorder_close(s.rec);
	cohort_watch_free(s.watch);
	for (unsigned k = 0; k < s.nw; k++)
		release_members(&s.w[k]);
	free(s.w);
	/* Setup errors above went to stderr directly: nothing of ours was queued then. */
	outbuf_flush(&s.out[0]);
	outbuf_flush(&s.out[1]);
	outbuf_release(&s.out[0]);
	outbuf_release(&s.out[1]);
	sigaction(SIGPIPE, &oldpipe, NULL);
	return rc;
}
