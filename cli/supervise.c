/*
 * supervise.c - the supervisor of `cohort run`.
 *
 * One thread, one poll loop: a signalfd (SIGCHLD, SIGINT, SIGTERM, SIGHUP),
 * the workers' output pipes when lines are labelled, and a deadline for the
 * next sample or the next escalation. Each worker runs in its own process
 * group (and, under --enforce cgroup, its own memory cgroup), with a
 * parent-death signal; the supervisor is a child subreaper, so orphaned
 * grandchildren come back to it and die with the worker's group.
 *
 * Every tick: each live worker's process tree (children files), statm of
 * every member and smaps_rollup within the sampler's CPU budget, the
 * job's cgroup counters and memory pressure; then per worker a PSS estimate
 * (last PSS + RSS moved since), the leak trend on RSS, copy-on-write on
 * USS vs shared, the soft and hard thresholds; then one sample line in the
 * recording.
 */
#include "supervise.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MiB (1ULL << 20)

const char *enforce_name(enum enforce e)
{
	switch (e) {
	case ENFORCE_CGROUP: return "cgroup";
	case ENFORCE_RLIMIT: return "rlimit";
	case ENFORCE_WATCH:  return "watch";
	case ENFORCE_AUTO:   break;
	}
	return "auto";
}

/* A process of a worker's tree, with the figures of its first smaps read. */
struct member {
	pid_t pid;
	unsigned rank;
	bool seen;                 /* found in this tick's tree walk */
	bool have_base;
	uint64_t uss0, shared0;    /* first smaps read */
	uint64_t rss0;             /* statm RSS at that read */
	uint64_t copied;           /* copy-on-write since */
};

/* Output of a labelled stream: whole lines go out with "RANK: " in front. */
struct linebuf {
	int fd;                    /* read end, -1 when closed */
	int out;                   /* 1 or 2 */
	size_t len;
	char buf[4096];
};

struct worker {
	unsigned rank;
	pid_t pid;
	bool running;
	int status;                /* wait status once exited */
	double start, end;
	bool has_cg;
	struct cohort_workcg cg;
	struct linebuf lines[2];

	/* The last tick, summed over the tree. */
	unsigned nprocs;
	uint64_t rss, pss, uss, swap, shmem, shared, est;
	double pss_age;
	uint64_t peak_rss, peak_pss, peak_uss, peak_est;

	struct cohort_trend trend;
	bool soft_warned, leak_reported, cow_reported;
	uint64_t cow_copied;       /* by its live processes and, cow_gone, by those that exited */
	uint64_t cow_gone;

	/* Stopping: 0 no, 1 SIGTERM sent, 2 SIGKILL sent. */
	int stop_stage;
	double stop_deadline;
	char stop_reason[COHORT_MSG_MAX];
	bool oom_killed;
};

struct sup {
	const struct run_opts *o;
	enum enforce enforce;      /* o->enforce, AUTO resolved */
	struct worker *w;
	unsigned nw, running;
	struct member *m;
	size_t nm, cap_m;
	struct cohort_sampler *sampler;
	struct recorder rec;
	int sigfd;
	double t0;                 /* CLOCK_MONOTONIC at start */
	double wall0;              /* CLOCK_REALTIME at start */
	struct cohort_workcg parent_cg;
	bool has_parent_cg;
	char catch_dir[64];        /* where the preload shim writes crash.<pid>, "" when off */
	char job_cg[COHORT_PATH_MAX]; /* the cgroup that holds the limit, for its counters */
	/*
	 * The cgroups from the supervisor's own up to job_cg: on cgroup v1 an
	 * OOM kill is counted (oom_control's oom_kill) only in the cgroup whose
	 * limit was hit, which may be the step's rather than the job's.
	 */
	char oom_levels[16][COHORT_PATH_MAX];
	int noom_levels;
	uint64_t oom_kill_seen;    /* their summed oom_kill counters, as last accounted */
	bool total_warned, slurm_risk_warned;
	int stopping;              /* 0, 1 after a signal (graceful), 2 after a second */
	double stop_all_deadline;
	int first_fail;            /* exit status of the first worker to fail, -1 none */
	unsigned nevents;
	unsigned long ticks;
	char last_problem[COHORT_MSG_MAX];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double rel(const struct sup *s)
{
	return now() - s->t0;
}

static const char *fmt_size(uint64_t v, char *buf, size_t size)
{
	return cohort_size_format(v, buf, size);
}

/* ---- recording ------------------------------------------------------- */

static void record(struct sup *s, json_t *obj)
{
	int r = recorder_write(&s->rec, obj);

	if (r < 0 && !s->o->quiet && !s->rec.anon)
		cli_error("the recording %s stopped: %s; supervision goes on without it",
		          s->rec.path, strerror(-r));
}

/*
 * An event: recorded, and said on stderr when it is a warning or worse.
 * extra (may be NULL) is merged into the event object.
 */
static void event(struct sup *s, const char *kind, const struct worker *w, bool say,
                  json_t *extra, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void event(struct sup *s, const char *kind, const struct worker *w, bool say,
                  json_t *extra, const char *fmt, ...)
{
	char msg[COHORT_MSG_MAX];
	json_t *e = json_object();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_set_new(e, "type", json_string("event"));
	json_object_set_new(e, "t", json_real(rel(s)));
	json_object_set_new(e, "kind", json_string(kind));
	json_object_set_new(e, "rank", w ? json_integer(w->rank) : json_null());
	json_object_set_new(e, "pid", w ? json_integer(w->pid) : json_null());
	json_object_set_new(e, "message", json_string(msg));
	if (extra) {
		json_object_update(e, extra);
		json_decref(extra);
	}
	record(s, e);
	s->nevents++;
	if (say && !s->o->quiet)
		cli_error("%s", msg);
	if (say)
		snprintf(s->last_problem, sizeof(s->last_problem), "%s", msg);
}

static void record_header(struct sup *s)
{
	const struct run_opts *o = s->o;
	json_t *h = json_object(), *cmd = json_array(), *slurm = json_null();
	struct utsname u;

	for (char **a = o->argv; *a; a++)
		json_array_append_new(cmd, json_string(*a));
	uname(&u);
	json_object_set_new(h, "type", json_string("header"));
	json_object_set_new(h, "format", json_integer(1));
	json_object_set_new(h, "tool", json_string("cohort " COHORT_VERSION));
	json_object_set_new(h, "host", json_string(u.nodename));
	json_object_set_new(h, "start", json_real(s->wall0));
	json_object_set_new(h, "supervisor_pid", json_integer(getpid()));
	json_object_set_new(h, "job", json_string(o->job));
	json_object_set_new(h, "command", cmd);
	json_object_set_new(h, "workers", json_integer(o->workers));
	json_object_set_new(h, "allocation", cli_json_alloc(&o->alloc));
	json_object_set_new(h, "budget_bytes", cli_json_size(o->budget));
	json_object_set_new(h, "budget_source", json_string(o->budget_source));
	json_object_set_new(h, "mem_per_worker_bytes", cli_json_size(o->mem_per_worker));
	json_object_set_new(h, "enforce", json_string(enforce_name(s->enforce)));
	json_object_set_new(h, "soft_fraction", json_real(o->soft));
	json_object_set_new(h, "interval_s", json_real(o->interval));
	json_object_set_new(h, "pss_budget", json_real(o->pss_budget));
	json_object_set_new(h, "grace_s", json_real(o->grace));
	if (o->jobacct) {
		slurm = json_object();
		json_object_set_new(slurm, "jobacct_gather_type", json_string(o->jobacct));
		json_object_set_new(slurm, "jobacct_gather_params",
		                    o->jobacct_params ? json_string(o->jobacct_params) : json_null());
	}
	json_object_set_new(h, "slurm_config", slurm);
	json_object_set_new(h, "job_cgroup", s->job_cg[0] ? json_string(s->job_cg) : json_null());
	json_object_set_new(h, "catch", s->catch_dir[0] ? json_true() : json_false());
	if (!s->catch_dir[0])
		json_object_set_new(h, "catch_off", json_string(o->catch_off ? o->catch_off : "not available"));
	record(s, h);
}

/* ---- output labelling ------------------------------------------------ */

static void flush_line(struct worker *w, struct linebuf *lb, size_t n)
{
	FILE *f = lb->out == 1 ? stdout : stderr;

	fprintf(f, "%u: %.*s\n", w->rank, (int)n, lb->buf);
	fflush(f);
}

static void drain(struct worker *w, struct linebuf *lb)
{
	ssize_t n;

	n = read(lb->fd, lb->buf + lb->len, sizeof(lb->buf) - lb->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (lb->len)
			flush_line(w, lb, lb->len);
		lb->len = 0;
		close(lb->fd);
		lb->fd = -1;
		return;
	}
	lb->len += (size_t)n;
	for (;;) {
		char *nl = memchr(lb->buf, '\n', lb->len);
		size_t take;

		if (!nl) {
			if (lb->len == sizeof(lb->buf)) {
				/* A line longer than the buffer goes out in pieces. */
				flush_line(w, lb, lb->len);
				lb->len = 0;
			}
			return;
		}
		take = (size_t)(nl - lb->buf);
		flush_line(w, lb, take);
		memmove(lb->buf, nl + 1, lb->len - take - 1);
		lb->len -= take + 1;
	}
}

/* ---- spawning -------------------------------------------------------- */

static void child_exec(const struct sup *s, struct worker *w, int errfd, int outp[2], int errp[2],
                       const sigset_t *oldmask)
{
	const struct run_opts *o = s->o;
	char value[64];
	int e;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(127);   /* the supervisor is already gone */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, oldmask, NULL);

	if (w->has_cg && (e = cohort_workcg_attach(&w->cg, 0)) < 0)
		goto fail_errno;
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
	snprintf(value, sizeof(value), "%u", w->rank);
	setenv("COHORT_RANK", value, 1);
	snprintf(value, sizeof(value), "%u", o->workers);
	setenv("COHORT_SIZE", value, 1);
	setenv("COHORT_JOB", o->job, 1);
	snprintf(value, sizeof(value), "%llu", (unsigned long long)o->mem_per_worker);
	setenv("COHORT_MEM_PER_WORKER", value, 1);
	if (s->catch_dir[0]) {
		const char *old = getenv("LD_PRELOAD");
		char pre[2048];

		snprintf(pre, sizeof(pre), "%s%s%s", o->catch_lib, old && *old ? " " : "", old ? old : "");
		setenv("LD_PRELOAD", pre, 1);
		setenv("COHORT_CATCH_DIR", s->catch_dir, 1);
	}
	execvp(o->argv[0], o->argv);
	e = -errno;
fail_errno:
	if (write(errfd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

/* Start one worker. Returns 0, or -errno of the failed exec (the worker is reaped). */
static int spawn(struct sup *s, struct worker *w, const sigset_t *oldmask)
{
	int errpipe[2], outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, e = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(errpipe, O_CLOEXEC) < 0)
		return -errno;
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
		child_exec(s, w, errpipe[1], outp, errp, oldmask);
	}
	setpgid(pid, pid);   /* also here: no race with a signal to the group */
	close(errpipe[1]);
	errpipe[1] = -1;
	do
		n = read(errpipe[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	w->pid = pid;
	w->start = rel(s);
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
		close(outp[1]);
		close(errp[1]);
		outp[0] = outp[1] = errp[0] = errp[1] = -1;
	}
out:
	close(errpipe[0]);
	if (errpipe[1] >= 0)
		close(errpipe[1]);
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return e;
}

/* ---- stopping -------------------------------------------------------- */

static void signal_worker(struct worker *w, int sig)
{
	if (w->pid > 0)
		kill(-w->pid, sig);
}

static void stop_worker(struct sup *s, struct worker *w, const char *why)
{
	if (!w->running || w->stop_stage)
		return;
	snprintf(w->stop_reason, sizeof(w->stop_reason), "%s", why);
	signal_worker(w, SIGTERM);
	w->stop_stage = 1;
	w->stop_deadline = rel(s) + s->o->grace;
}

static void stop_all(struct sup *s, int sig)
{
	for (unsigned i = 0; i < s->nw; i++)
		if (s->w[i].running)
			signal_worker(&s->w[i], sig);
	s->stop_all_deadline = rel(s) + s->o->grace;
}

/* ---- sampling -------------------------------------------------------- */

static struct member *member_find(struct sup *s, pid_t pid)
{
	for (size_t i = 0; i < s->nm; i++)
		if (s->m[i].pid == pid)
			return &s->m[i];
	return NULL;
}

/*
 * What a worker's processes copied by copy-on-write: those that left its
 * tree, and those still in it (a zombie's last figure included).
 */
static uint64_t cow_total(const struct sup *s, const struct worker *w)
{
	uint64_t n = w->cow_gone;

	for (size_t i = 0; i < s->nm; i++)
		if (s->m[i].rank == w->rank)
			n += s->m[i].copied;
	return n;
}

static void track_trees(struct sup *s)
{
	for (size_t i = 0; i < s->nm; i++)
		s->m[i].seen = false;
	for (unsigned k = 0; k < s->nw; k++) {
		struct worker *w = &s->w[k];
		pid_t *pids = NULL;
		size_t n = 0;

		/* Children forked by a worker's other threads: looked for every tenth tick. */
		if (!w->running || cohort_pids_tree(&s->o->probe, w->pid,
		                                    s->ticks % 10 == 0 ? COHORT_TREE_ALL_THREADS : 0,
		                                    &pids, &n) < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			struct member *m = member_find(s, pids[i]);

			if (!m) {
				if (s->nm == s->cap_m) {
					size_t cap = s->cap_m ? s->cap_m * 2 : 64;
					struct member *nm = realloc(s->m, cap * sizeof(*nm));

					if (!nm)
						break;
					s->m = nm;
					s->cap_m = cap;
				}
				m = &s->m[s->nm++];
				memset(m, 0, sizeof(*m));
				m->pid = pids[i];
				cohort_sampler_add(s->sampler, pids[i]);
			}
			m->rank = w->rank;
			m->seen = true;
		}
		free(pids);
	}
	/* Forget processes that left every tree. */
	for (size_t i = 0; i < s->nm; ) {
		if (s->m[i].seen) {
			i++;
			continue;
		}
		/* What a process copied stays counted after it exits. */
		s->w[s->m[i].rank].cow_gone += s->m[i].copied;
		cohort_sampler_remove(s->sampler, s->m[i].pid);
		s->m[i] = s->m[--s->nm];
	}
}

static void check_worker(struct sup *s, struct worker *w, double t)
{
	const struct run_opts *o = s->o;
	char a[32], b[32], c[32], d[32];
	struct cohort_leak leak;

	/* Leak: the floor of the tree's RSS rises (copy-on-write does not move RSS). */
	cohort_trend_add(&w->trend, t, w->rss);
	if (!w->leak_reported && cohort_trend_leak(&w->trend, NULL, &leak)) {
		json_t *x = json_object();
		double eta = w->est < o->mem_per_worker ?
		             (double)(o->mem_per_worker - w->est) / leak.rate : 0;

		w->leak_reported = true;
		json_object_set_new(x, "rate_bytes_per_s", json_real(leak.rate));
		json_object_set_new(x, "window_s", json_real(leak.window));
		json_object_set_new(x, "floor_first_bytes", cli_json_size(leak.floor_first));
		json_object_set_new(x, "floor_last_bytes", cli_json_size(leak.floor_last));
		json_object_set_new(x, "current_bytes", cli_json_size(w->est));
		json_object_set_new(x, "budget_bytes", cli_json_size(o->mem_per_worker));
		json_object_set_new(x, "eta_s", json_real(eta));
		event(s, "leak", w, true, x,
		      "rank %u (pid %d) is leaking: its memory floor rose from %s to %s in %.0f s "
		      "(%s/s); at this rate it reaches its %s budget in %.0f s",
		      w->rank, (int)w->pid, fmt_size(leak.floor_first, a, sizeof(a)),
		      fmt_size(leak.floor_last, b, sizeof(b)), leak.window,
		      fmt_size((uint64_t)leak.rate, c, sizeof(c)),
		      fmt_size(o->mem_per_worker, d, sizeof(d)), eta);
	}

	/* Copy-on-write: report once it is worth a mention. */
	uint64_t cow_min = w->est / 10 > 16 * MiB ? w->est / 10 : 16 * MiB;
	if (!w->cow_reported && w->cow_copied >= cow_min) {
		json_t *x = json_object();

		w->cow_reported = true;
		json_object_set_new(x, "copied_bytes", cli_json_size(w->cow_copied));
		json_object_set_new(x, "nprocs", json_integer(w->nprocs));
		event(s, "cow_unshare", w, true, x,
		      "rank %u (pid %d): %s of pages shared after fork have been copied by writes "
		      "(copy-on-write); its processes' private memory grows while their RSS does not. "
		      "Not a leak: share the data through a segment or arrays rather than objects, "
		      "load it after forking, or start workers with spawn",
		      w->rank, (int)w->pid, fmt_size(w->cow_copied, a, sizeof(a)));
	}

	/* Thresholds on the worker's share. */
	if (o->mem_per_worker && w->est > o->mem_per_worker && s->enforce == ENFORCE_WATCH &&
	    !w->stop_stage) {
		json_t *x = json_object();
		char why[COHORT_MSG_MAX];

		json_object_set_new(x, "action", json_string("stop"));
		json_object_set_new(x, "est_bytes", cli_json_size(w->est));
		json_object_set_new(x, "limit_bytes", cli_json_size(o->mem_per_worker));
		snprintf(why, sizeof(why), "rank %u (pid %d) uses %s, above its %s budget: stopped by "
		         "cohort (SIGTERM, then SIGKILL after %.0f s) before the kernel's OOM killer picks "
		         "a victim", w->rank, (int)w->pid, fmt_size(w->est, a, sizeof(a)),
		         fmt_size(o->mem_per_worker, b, sizeof(b)), o->grace);
		event(s, "limit", w, true, x, "%s", why);
		stop_worker(s, w, why);
	} else if (o->mem_per_worker && !w->soft_warned && w->est > o->soft * o->mem_per_worker) {
		json_t *x = json_object();

		w->soft_warned = true;
		json_object_set_new(x, "est_bytes", cli_json_size(w->est));
		json_object_set_new(x, "limit_bytes", cli_json_size(o->mem_per_worker));
		event(s, "warning", w, true, x, "rank %u (pid %d) uses %s, %.0f%% of its %s budget",
		      w->rank, (int)w->pid, fmt_size(w->est, a, sizeof(a)),
		      100.0 * (double)w->est / (double)o->mem_per_worker,
		      fmt_size(o->mem_per_worker, b, sizeof(b)));
	}
}

/*
 * A worker whose RSS reached a new peak gets fresh page walks now, over the
 * budget if need be: the figures at a peak are the ones a report quotes.
 * At most 8 walks a tick.
 */
static void refresh_peaks(struct sup *s)
{
	size_t count = cohort_sampler_count(s->sampler);
	int left = 8;

	for (unsigned k = 0; k < s->nw && left > 0; k++) {
		struct worker *w = &s->w[k];
		uint64_t rss = 0, margin;

		if (!w->running)
			continue;
		for (size_t i = 0; i < count; i++) {
			struct cohort_sample sm;
			struct member *m;

			if (cohort_sampler_get(s->sampler, i, &sm) == 0 && !sm.gone &&
			    (m = member_find(s, sm.pid)) && m->rank == k)
				rss += sm.statm.rss;
		}
		margin = w->peak_rss / 20 > 4 * MiB ? w->peak_rss / 20 : 4 * MiB;
		if (w->peak_rss == 0 || rss < w->peak_rss + margin)
			continue;
		for (size_t i = 0; i < s->nm && left > 0; i++)
			if (s->m[i].rank == k && cohort_sampler_refresh(s->sampler, s->m[i].pid) == 0)
				left--;
	}
}

static void sample(struct sup *s)
{
	const struct run_opts *o = s->o;
	double t = rel(s);
	uint64_t rss_sum = 0, pss_sum = 0, uss_sum = 0, est_sum = 0;
	json_t *rec = json_object(), *ws = json_array(), *tot = json_object();
	struct cohort_cgmem cg;
	struct cohort_psi psi;
	size_t count;
	char a[32], b[32], c[32];

	track_trees(s);
	s->ticks++;
	cohort_sampler_tick(s->sampler);
	refresh_peaks(s);
	for (unsigned k = 0; k < s->nw; k++) {
		struct worker *w = &s->w[k];

		if (!w->running)
			continue;   /* an exited worker keeps its last figures */
		w->nprocs = 0;
		w->rss = w->pss = w->uss = w->swap = w->shmem = w->shared = w->est = 0;
		w->pss_age = 0;
	}
	count = cohort_sampler_count(s->sampler);
	for (size_t i = 0; i < count; i++) {
		struct cohort_sample sm;
		struct member *m;
		struct worker *w;
		uint64_t pss_est, shared;

		if (cohort_sampler_get(s->sampler, i, &sm) < 0 || sm.gone)
			continue;
		m = member_find(s, sm.pid);
		if (!m)
			continue;
		w = &s->w[m->rank];
		w->nprocs++;
		w->rss += sm.statm.rss;
		if (!sm.have_pss) {
			/*
			 * No page walk yet. For the worker itself (a fresh exec) RSS less
			 * its file and shmem pages is its own. A descendant was forked
			 * inside the tree and shares most of its pages with its parent,
			 * which statm cannot tell: count nothing until its first walk
			 * (the sampler walks never-read processes first) rather than
			 * counting shared pages again and stopping a worker that fits.
			 */
			if (sm.pid == w->pid)
				w->est += sm.statm.rss - (sm.statm.shared < sm.statm.rss ? sm.statm.shared : 0);
			continue;
		}
		shared = sm.mem.shared_clean + sm.mem.shared_dirty;
		/* What moved since the page walk is counted as the process's own. */
		pss_est = sm.mem.pss + (sm.statm.rss > sm.mem.rss ? sm.statm.rss - sm.mem.rss : 0);
		w->pss += sm.mem.pss;
		w->uss += sm.mem.uss;
		w->est += pss_est;
		w->shared += shared;
		if (sm.mem.swap != COHORT_MEM_UNKNOWN)
			w->swap += sm.mem.swap;
		if (sm.mem.pss_shmem != COHORT_MEM_UNKNOWN)
			w->shmem += sm.mem.pss_shmem;
		if (sm.mem_age_ns / 1e9 > w->pss_age)
			w->pss_age = sm.mem_age_ns / 1e9;
		if (!m->have_base) {
			m->have_base = true;
			m->uss0 = sm.mem.uss;
			m->shared0 = shared;
			m->rss0 = sm.statm.rss;
		} else {
			m->copied = cohort_cow_copied(m->uss0, m->shared0, sm.mem.uss, shared);
		}
	}

	for (unsigned k = 0; k < s->nw; k++)
		if (s->w[k].running)
			s->w[k].cow_copied = cow_total(s, &s->w[k]);

	for (unsigned k = 0; k < s->nw; k++) {
		struct worker *w = &s->w[k];
		json_t *j;

		if (!w->running)
			continue;
		if (w->rss > w->peak_rss) w->peak_rss = w->rss;
		if (w->pss > w->peak_pss) w->peak_pss = w->pss;
		if (w->uss > w->peak_uss) w->peak_uss = w->uss;
		if (w->est > w->peak_est) w->peak_est = w->est;
		rss_sum += w->rss;
		pss_sum += w->pss;
		uss_sum += w->uss;
		est_sum += w->est;
		check_worker(s, w, t);
		j = json_object();
		json_object_set_new(j, "rank", json_integer(w->rank));
		json_object_set_new(j, "pid", json_integer(w->pid));
		json_object_set_new(j, "nprocs", json_integer(w->nprocs));
		json_object_set_new(j, "rss", cli_json_size(w->rss));
		json_object_set_new(j, "pss", cli_json_size(w->pss));
		json_object_set_new(j, "pss_est", cli_json_size(w->est));
		json_object_set_new(j, "pss_age_s", json_real(w->pss_age));
		json_object_set_new(j, "uss", cli_json_size(w->uss));
		json_object_set_new(j, "shared", cli_json_size(w->shared));
		json_object_set_new(j, "swap", cli_json_size(w->swap));
		json_object_set_new(j, "shmem", cli_json_size(w->shmem));
		json_object_set_new(j, "cow_copied", cli_json_size(w->cow_copied));
		json_array_append_new(ws, j);
	}

	/* The budget as a whole: stop the largest worker before the kernel kills one at random. */
	/* Workers already being stopped will give their memory back: count only the others. */
	uint64_t est_staying = 0;

	for (unsigned k = 0; k < s->nw; k++)
		if (s->w[k].running && !s->w[k].stop_stage)
			est_staying += s->w[k].est;
	if (s->enforce == ENFORCE_WATCH && est_staying > o->budget) {
		struct worker *big = NULL;

		for (unsigned k = 0; k < s->nw; k++)
			if (s->w[k].running && !s->w[k].stop_stage && (!big || s->w[k].est > big->est))
				big = &s->w[k];
		if (big) {
			char why[COHORT_MSG_MAX];
			json_t *x = json_object();

			json_object_set_new(x, "action", json_string("stop"));
			json_object_set_new(x, "est_bytes", cli_json_size(big->est));
			json_object_set_new(x, "total_bytes", cli_json_size(est_sum));
			json_object_set_new(x, "limit_bytes", cli_json_size(o->budget));
			snprintf(why, sizeof(why), "the workers use %s together, above the %s budget: "
			         "cohort stopped the largest, rank %u (pid %d, %s)",
			         fmt_size(est_sum, a, sizeof(a)), fmt_size(o->budget, b, sizeof(b)),
			         big->rank, (int)big->pid, fmt_size(big->est, c, sizeof(c)));
			event(s, "limit", big, true, x, "%s", why);
			stop_worker(s, big, why);
		}
	} else if (!s->total_warned && est_sum > o->soft * o->budget) {
		struct worker *big = NULL;

		for (unsigned k = 0; k < s->nw; k++)
			if (s->w[k].running && (!big || s->w[k].est > big->est))
				big = &s->w[k];
		s->total_warned = true;
		event(s, "warning", big, true, NULL,
		      "the workers use %s together, %.0f%% of the %s budget; the largest is rank %u (%s)",
		      fmt_size(est_sum, a, sizeof(a)), 100.0 * (double)est_sum / (double)o->budget,
		      fmt_size(o->budget, b, sizeof(b)), big ? big->rank : 0,
		      fmt_size(big ? big->est : 0, c, sizeof(c)));
	}

	/* SLURM's jobacct_gather/linux sums RSS: shared pages are charged once per process. */
	if (o->alloc.slurm.present && !s->slurm_risk_warned &&
	    rss_sum > o->alloc.mem_limit / 10 * 8 && pss_sum < o->alloc.mem_limit / 10 * 6 &&
	    cohort_slurm_sums_rss(o->have_slurm_config ? &o->slurm_config : NULL)) {
		json_t *x = json_object();

		s->slurm_risk_warned = true;
		json_object_set_new(x, "rss_sum_bytes", cli_json_size(rss_sum));
		json_object_set_new(x, "pss_sum_bytes", cli_json_size(pss_sum));
		json_object_set_new(x, "limit_bytes", cli_json_size(o->alloc.mem_limit));
		event(s, "slurm_rss_risk", NULL, true, x,
		      "the workers' RSS sum is %s, near the job's %s limit, while their PSS sum (what "
		      "they really use) is %s: SLURM's jobacct_gather/linux counts shared pages once per "
		      "process and may kill the job (ask for JobAcctGatherParams=UsePss, or --mem=%lluM)",
		      fmt_size(rss_sum, a, sizeof(a)), fmt_size(o->alloc.mem_limit, b, sizeof(b)),
		      fmt_size(pss_sum, c, sizeof(c)),
		      (unsigned long long)((rss_sum + rss_sum / 10) / MiB + 1));
	}

	json_object_set_new(rec, "type", json_string("sample"));
	json_object_set_new(rec, "t", json_real(t));
	json_object_set_new(rec, "workers", ws);
	json_object_set_new(tot, "rss_sum", cli_json_size(rss_sum));
	json_object_set_new(tot, "pss_sum", cli_json_size(pss_sum));
	json_object_set_new(tot, "uss_sum", cli_json_size(uss_sum));
	json_object_set_new(tot, "pss_est_sum", cli_json_size(est_sum));
	json_object_set_new(rec, "totals", tot);
	if (s->job_cg[0] && cohort_cgroup_read(&o->probe, s->job_cg, &cg) == 0) {
		json_t *j = json_object();

		json_object_set_new(j, "usage", cli_json_size(cg.usage));
		json_object_set_new(j, "peak", cli_json_size(cg.peak));
		json_object_set_new(j, "limit", cli_json_size(cg.limit));
		json_object_set_new(j, "shmem", cli_json_size(cg.shmem));
		json_object_set_new(j, "swap", cli_json_size(cg.swap));
		json_object_set_new(j, "oom_kill", json_integer((json_int_t)cg.oom_kill));
		json_object_set_new(rec, "cgroup", j);
	} else {
		json_object_set_new(rec, "cgroup", json_null());
	}
	{
		struct statvfs sv;
		struct cohort_meminfo mi;

		if (statvfs(o->probe.shm_path ? o->probe.shm_path : "/dev/shm", &sv) == 0) {
			json_t *j = json_object();

			json_object_set_new(j, "free", cli_json_size((uint64_t)sv.f_bavail * sv.f_frsize));
			json_object_set_new(j, "size", cli_json_size((uint64_t)sv.f_blocks * sv.f_frsize));
			json_object_set_new(rec, "shm", j);
		}
		if (cohort_meminfo_read(&o->probe, &mi) == 0)
			json_object_set_new(rec, "swap_used", cli_json_size(mi.swap_total > mi.swap_free ?
			                                                  mi.swap_total - mi.swap_free : 0));
	}
	if (cohort_psi_read(&o->probe, NULL, &psi) == 0) {
		json_t *j = json_object();

		json_object_set_new(j, "some_avg10", json_real(psi.some_avg10));
		json_object_set_new(j, "full_avg10", json_real(psi.full_avg10));
		json_object_set_new(rec, "psi", j);
	}
	record(s, rec);
}

/* ---- exits ----------------------------------------------------------- */

static void describe_status(int st, char *buf, size_t size)
{
	if (WIFEXITED(st))
		snprintf(buf, size, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, size, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, size, "status %d", st);
}

static int status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

/*
 * A frame as backtrace_symbols writes it, "path(+0x12f4)[0x...]" or
 * "path(func+0x2a)[0x...]", made readable with addr2line when it is there
 * and the binary has symbols or debug information: "func at file.c:42
 * (path+0x12f4)". Left as it was otherwise.
 */
/* The address of a symbol in a binary, from nm (its symbol table, then its dynamic one). */
static bool symbol_address(const char *path, const char *sym, unsigned long long *ret)
{
	static const char *const flags[] = { "--defined-only", "-D --defined-only" };
	char cmd[1200], line[512];

	if (access("/usr/bin/nm", X_OK) != 0)
		return false;
	for (size_t i = 0; i < 2; i++) {
		FILE *p;
		bool found = false;

		snprintf(cmd, sizeof(cmd), "/usr/bin/nm %s '%s' 2>/dev/null", flags[i], path);
		p = popen(cmd, "r");
		if (!p)
			return false;
		while (!found && fgets(line, sizeof(line), p)) {
			char name[256], type;
			unsigned long long a;

			if (sscanf(line, "%llx %c %255s", &a, &type, name) == 3 && strcmp(name, sym) == 0) {
				*ret = a;
				found = true;
			}
		}
		pclose(p);
		if (found)
			return true;
	}
	return false;
}

/*
 * A frame as backtrace_symbols writes it, "path(+0x12f4)[0x...]" or
 * "path(func+0x2a)[0x...]", made readable with addr2line when binutils are
 * there and the binary has symbols or debug information: "func at
 * file.c:42 (path+0x12f4)". Left as it was otherwise.
 */
static void symbolize(const char *frame, char *out, size_t size)
{
	const char *open_ = strchr(frame, '('), *close_, *plus;
	char path[512], sym[256] = "", cmd[1200], fn[256] = "", loc[512] = "";
	unsigned long long off, base = 0;
	FILE *p;

	snprintf(out, size, "%s", frame);
	if (!open_ || !(close_ = strchr(open_, ')')) || (size_t)(open_ - frame) >= sizeof(path))
		return;
	plus = memchr(open_, '+', (size_t)(close_ - open_));
	if (!plus || (size_t)(plus - open_ - 1) >= sizeof(sym) || sscanf(plus, "+0x%llx", &off) != 1)
		return;
	snprintf(path, sizeof(path), "%.*s", (int)(open_ - frame), frame);
	snprintf(sym, sizeof(sym), "%.*s", (int)(plus - open_ - 1), open_ + 1);
	if (strpbrk(path, "'\\\"$`") || access("/usr/bin/addr2line", X_OK) != 0)
		return;
	if (sym[0] && !symbol_address(path, sym, &base))
		return;
	snprintf(cmd, sizeof(cmd), "/usr/bin/addr2line -f -C -e '%s' 0x%llx 2>/dev/null", path, base + off);
	p = popen(cmd, "r");
	if (!p)
		return;
	if (fgets(fn, sizeof(fn), p) && fgets(loc, sizeof(loc), p)) {
		fn[strcspn(fn, "\n")] = '\0';
		loc[strcspn(loc, "\n")] = '\0';
		if (strcmp(fn, "??") != 0)
			snprintf(out, size, "%s at %s (%s+0x%llx)", fn,
			         strncmp(loc, "??", 2) == 0 ? "?" : loc, path, base + off);
	}
	pclose(p);
}

/* The path of a /proc/PID/maps line: what follows the fifth field, or "". */
static const char *maps_path(const char *line)
{
	const char *p = line;

	for (int field = 0; field < 5; field++) {
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
	}
	return p;
}

/*
 * Crash files the preload shim wrote (crash.<pid>): one crash_info event
 * each, attributed to the worker whose tree held the pid.
 */
static void collect_crashes(struct sup *s)
{
	struct dirent *e;
	DIR *d;

	if (!s->catch_dir[0] || !(d = opendir(s->catch_dir)))
		return;
	while ((e = readdir(d)) != NULL) {
		char path[600], line[600];
		json_t *x, *frames;
		const struct worker *w = NULL;
		struct member *m;
		FILE *f;
		pid_t pid;
		bool in_frames = false, guard = false;
		char fault[512] = "", below[512] = "", where[512] = "";

		if (strncmp(e->d_name, "crash.", 6) != 0)
			continue;
		pid = (pid_t)atoi(e->d_name + 6);
		snprintf(path, sizeof(path), "%s/%s", s->catch_dir, e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		x = json_object();
		frames = json_array();
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			if (in_frames) {
				char sym[1024];

				symbolize(line, sym, sizeof(sym));
				json_array_append_new(frames, json_string(sym));
			}
			else if (strcmp(line, "frames") == 0)
				in_frames = true;
			else if (strncmp(line, "signal ", 7) == 0)
				json_object_set_new(x, "signal", json_integer(atoi(line + 7)));
			else if (strncmp(line, "code ", 5) == 0)
				json_object_set_new(x, "code", json_integer(atoi(line + 5)));
			else if (strncmp(line, "addr ", 5) == 0)
				json_object_set_new(x, "fault_addr", json_string(line + 5));
			else if (strncmp(line, "fault ", 6) == 0)
				snprintf(fault, sizeof(fault), "%s", line + 6);
			else if (strncmp(line, "map ", 4) == 0)
				snprintf(below, sizeof(below), "%s", line + 4);
		}
		fclose(f);
		unlink(path);
		/*
		 * A maps line: "lo-hi perms offset dev inode   path", the path
		 * perhaps with spaces and " (deleted)". The address is in a
		 * segment's guard page when the mapping holding it has no access
		 * and the one just below is a /dev/shm file.
		 */
		{
			const char *fpath = maps_path(fault), *bpath = maps_path(below);
			const char *fperm = strchr(fault, ' ');

			if (fault[0] && fperm && strncmp(fperm + 1, "---p", 4) == 0 && strstr(bpath, "/dev/shm/")) {
				guard = true;
				snprintf(where, sizeof(where), "segment %s", bpath);
			} else if (fault[0]) {
				snprintf(where, sizeof(where), "%s", fpath[0] ? fpath : "an anonymous mapping");
			}
		}
		json_object_set_new(x, "in_guard", json_boolean(guard));
		json_object_set_new(x, "where", json_string(where));
		json_object_set_new(x, "backtrace", frames);
		m = member_find(s, pid);
		for (unsigned k = 0; k < s->nw && !w; k++)
			if (s->w[k].pid == pid || (m && m->rank == k))
				w = &s->w[k];
		event(s, "crash_info", w, false, x, "pid %d: fatal signal %d at %s%s%s", (int)pid,
		      (int)json_integer_value(json_object_get(x, "signal")),
		      json_string_value(json_object_get(x, "fault_addr")) ?
		      json_string_value(json_object_get(x, "fault_addr")) : "?",
		      where[0] ? " in " : "", where);
	}
	closedir(d);
}

/* The OOM kills counted in the cgroups from the supervisor's up to the job's. */
static uint64_t oom_kills(const struct sup *s)
{
	struct cohort_cgmem cg;
	uint64_t n = 0;

	for (int i = 0; i < s->noom_levels; i++)
		if (cohort_cgroup_read(&s->o->probe, s->oom_levels[i], &cg) == 0)
			n += cg.oom_kill;
	return n;
}

static void worker_exited(struct sup *s, struct worker *w, int st)
{
	const struct run_opts *o = s->o;
	char how[96], a[32], b[32];
	json_t *x = json_object();
	struct cohort_cgmem cg;
	bool oom = false;

	w->running = false;
	w->status = st;
	w->end = rel(s);
	s->running--;
	describe_status(st, how, sizeof(how));
	w->cow_copied = cow_total(s, w);
	if (WIFSIGNALED(st))
		collect_crashes(s);

	/* The kernel's OOM killer: the worker's own cgroup says so, or the job's counter rose. */
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && w->stop_stage < 2) {
		if (w->has_cg && cohort_cgroup_read(&o->probe, w->cg.dir, &cg) == 0 && cg.oom_kill > 0)
			oom = true;
		else if (s->noom_levels) {
			uint64_t now_ = oom_kills(s);

			if (now_ > s->oom_kill_seen) {
				s->oom_kill_seen = now_;
				oom = true;
			}
		}
	}
	json_object_set_new(x, "status", json_string(how));
	json_object_set_new(x, "exit_code", WIFEXITED(st) ? json_integer(WEXITSTATUS(st)) : json_null());
	json_object_set_new(x, "signal", WIFSIGNALED(st) ? json_integer(WTERMSIG(st)) : json_null());
	json_object_set_new(x, "stopped_by_cohort", json_boolean(w->stop_stage > 0));
	json_object_set_new(x, "peak_pss", cli_json_size(w->peak_pss));
	json_object_set_new(x, "peak_uss", cli_json_size(w->peak_uss));
	json_object_set_new(x, "peak_rss", cli_json_size(w->peak_rss));
	json_object_set_new(x, "last_est", cli_json_size(w->est));
	json_object_set_new(x, "cow_copied", cli_json_size(w->cow_copied));
	json_object_set_new(x, "runtime_s", json_real(w->end - w->start));
	event(s, "exit", w, false, x, "rank %u (pid %d) ended: %s", w->rank, (int)w->pid, how);

	if (oom) {
		json_t *y = json_object();
		uint64_t limit = w->has_cg ? o->mem_per_worker : o->alloc.mem_limit;

		w->oom_killed = true;
		json_object_set_new(y, "limit_bytes", cli_json_size(limit));
		json_object_set_new(y, "last_est", cli_json_size(w->est));
		json_object_set_new(y, "cgroup", json_string(w->has_cg ? w->cg.dir : s->job_cg));
		event(s, "oom_kill", w, true, y,
		      "rank %u (pid %d) was killed by the kernel's OOM killer: its %s limit is %s, it "
		      "last used %s", w->rank, (int)w->pid,
		      w->has_cg ? "cgroup" : "job's", fmt_size(limit, a, sizeof(a)),
		      fmt_size(w->est, b, sizeof(b)));
	}
	if (status_code(st) != 0 && s->first_fail < 0 && !s->stopping)
		s->first_fail = status_code(st);
	if (status_code(st) != 0 && o->kill_on_bad_exit && !s->stopping && s->running) {
		event(s, "warning", w, true, NULL, "rank %u failed (%s): stopping the other workers "
		      "(--kill-on-bad-exit)", w->rank, how);
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

/* ---- the loop -------------------------------------------------------- */

/*
 * The findings, from the recording read back through the library: exactly
 * what `cohort report` says of the same file.
 */
static void findings(struct sup *s)
{
	struct cohort_recording *rec;
	struct cohort_finding *f;
	char path[64], err[COHORT_MSG_MAX];
	size_t n;

	if (s->rec.fd < 0 || s->rec.error)
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->rec.fd);
	if (cohort_recording_load(path, &rec, err, sizeof(err)) < 0) {
		cli_error("cannot read back the recording: %s", err);
		return;
	}
	snprintf(rec->path, sizeof(rec->path), "%s", s->rec.path);
	if (cohort_diagnose(&rec, 1, &f, &n) == 0) {
		cli_print_findings(stderr, f, n, false);
		free(f);
	}
	cohort_recording_free(rec);
}

static void summary(struct sup *s)
{
	char how[96], a[32], b[32];
	unsigned ok = 0;

	for (unsigned k = 0; k < s->nw; k++)
		ok += s->w[k].pid > 0 && !s->w[k].running && status_code(s->w[k].status) == 0;
	fprintf(stderr, "cohort: %u worker%s, %u exited 0", s->nw, s->nw == 1 ? "" : "s", ok);
	if (s->rec.fd >= 0 && !s->rec.anon)
		fprintf(stderr, "; recording in %s%s", s->rec.path, s->rec.error ? " (stopped early)" : "");
	fprintf(stderr, "\n  %-5s %-8s %-26s %-11s %-11s\n", "rank", "pid", "end", "peak PSS", "peak USS");
	for (unsigned k = 0; k < s->nw; k++) {
		struct worker *w = &s->w[k];

		if (w->pid <= 0)
			snprintf(how, sizeof(how), "not started");
		else
			describe_status(w->status, how, sizeof(how));
		fprintf(stderr, "  %-5u %-8d %-26s %-11s %-11s\n", w->rank, (int)w->pid, how,
		        fmt_size(w->peak_pss, a, sizeof(a)), fmt_size(w->peak_uss, b, sizeof(b)));
	}
	findings(s);
}

static double next_deadline(const struct sup *s, double next_tick)
{
	double d = next_tick;

	for (unsigned k = 0; k < s->nw; k++)
		if (s->w[k].running && s->w[k].stop_stage == 1 && s->w[k].stop_deadline < d)
			d = s->w[k].stop_deadline;
	if (s->stopping == 1 && s->stop_all_deadline < d)
		d = s->stop_all_deadline;
	return d;
}

static void escalate(struct sup *s)
{
	double t = rel(s);

	for (unsigned k = 0; k < s->nw; k++) {
		struct worker *w = &s->w[k];

		if (w->running && w->stop_stage == 1 && t >= w->stop_deadline) {
			signal_worker(w, SIGKILL);
			w->stop_stage = 2;
		}
	}
	if (s->stopping == 1 && t >= s->stop_all_deadline) {
		stop_all(s, SIGKILL);
		s->stopping = 2;
	}
}

static void on_signal(struct sup *s, int sig)
{
	if (sig == SIGCHLD) {
		reap(s);
		return;
	}
	if (s->stopping == 0) {
		event(s, "warning", NULL, !s->o->quiet, NULL,
		      "got %s: passing it to the workers, SIGKILL in %.0f s (again to kill now)",
		      strsignal(sig), s->o->grace);
		s->stopping = 1;
		stop_all(s, sig);
	} else {
		s->stopping = 2;
		stop_all(s, SIGKILL);
	}
}

static void teardown_cgroups(struct sup *s);

/*
 * A supervisor killed with SIGKILL leaves its empty cohort-<pid> cgroups
 * behind. Remove those of supervisors that are gone: rmdir only takes
 * empty cgroups, so one still in use is never touched.
 */
static void reap_stale_cgroups(const struct cohort_probe *probe)
{
	char parent[COHORT_PATH_MAX];
	struct dirent *e;
	DIR *d;

	if (cohort_cgroup_of_pid(probe, 0, parent, sizeof(parent), NULL) < 0)
		return;
	d = opendir(parent);
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		struct cohort_workcg cg = { 0 };
		char *end;
		long pid;

		if (strncmp(e->d_name, "cohort-", 7) != 0)
			continue;
		pid = strtol(e->d_name + 7, &end, 10);
		if (*end || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (snprintf(cg.dir, sizeof(cg.dir), "%s/%s", parent, e->d_name) < (int)sizeof(cg.dir))
			cohort_workcg_destroy(&cg);
	}
	closedir(d);
}

/*
 * Worker cgroups: cohort-<pid> holding the budget, rank-K below it holding
 * each worker's share. Under AUTO a failure falls back to watching.
 */
static int setup_cgroups(struct sup *s)
{
	const struct run_opts *o = s->o;
	char name[64];
	int r;

	reap_stale_cgroups(&o->probe);
	snprintf(name, sizeof(name), "cohort-%d", (int)getpid());
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
		if (cohort_workcg_destroy(&s->parent_cg) != -EBUSY)
			return;
		usleep(20000);
	}
}

int supervise(const struct run_opts *o)
{
	struct cohort_sampler_opts so = { .cpu_budget = o->pss_budget, .probe = &o->probe };
	struct sup s;
	sigset_t mask, oldmask;
	struct timespec ts;
	double next_tick;
	int rc = 0, r;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.nw = o->workers;
	s.first_fail = -1;
	s.rec.fd = -1;
	s.t0 = now();
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
		cohort_trend_init(&s.w[k].trend, 0);
	}
	if ((r = cohort_sampler_create(&so, &s.sampler)) < 0) {
		cli_error("cannot start the sampler: %s", cohort_strerror(r));
		free(s.w);
		return CLI_ERROR;
	}
	/* The cgroup whose limit binds the job: its counters tell of OOM kills. */
	if (o->alloc.mem_limit_source == COHORT_SRC_CGROUP) {
		char *slash;

		snprintf(s.job_cg, sizeof(s.job_cg), "%s", o->alloc.mem_limit_where);
		slash = strrchr(s.job_cg, '/');
		if (slash)
			*slash = '\0';
	} else if (cohort_cgroup_of_pid(&o->probe, 0, s.job_cg, sizeof(s.job_cg), NULL) < 0) {
		s.job_cg[0] = '\0';
	}
	if (s.job_cg[0]) {
		struct cohort_cgmem cg;
		char dir[COHORT_PATH_MAX];
		size_t jlen = strlen(s.job_cg);

		if (cohort_cgroup_read(&o->probe, s.job_cg, &cg) < 0)
			s.job_cg[0] = '\0';
		/* From the supervisor's own cgroup up to the job's (or the job's alone). */
		if (s.job_cg[0] && cohort_cgroup_of_pid(&o->probe, 0, dir, sizeof(dir), NULL) == 0 &&
		    strncmp(dir, s.job_cg, jlen) == 0 && (dir[jlen] == '/' || dir[jlen] == '\0')) {
			while (s.noom_levels < 16) {
				char *slash;

				snprintf(s.oom_levels[s.noom_levels++], COHORT_PATH_MAX, "%s", dir);
				if (strlen(dir) <= jlen || !(slash = strrchr(dir, '/')))
					break;
				*slash = '\0';
			}
		} else if (s.job_cg[0]) {
			snprintf(s.oom_levels[s.noom_levels++], COHORT_PATH_MAX, "%s", s.job_cg);
		}
		s.oom_kill_seen = oom_kills(&s);
	}
	if (!o->record)
		(void)recorder_open_anon(&s.rec);   /* without it, no findings at exit; nothing else */
	if (o->record && (r = recorder_open(&s.rec, o->record)) < 0) {
		cli_error("cannot write the recording %s: %s (use --record FILE elsewhere, or --no-record)",
		          o->record, strerror(-r));
		rc = CLI_ERROR;
		goto out;
	}
	if (o->catch_lib) {
		snprintf(s.catch_dir, sizeof(s.catch_dir), "/tmp/cohort-catch-XXXXXX");
		if (!mkdtemp(s.catch_dir))
			s.catch_dir[0] = '\0';
	}
	s.enforce = o->enforce;
	if ((s.enforce == ENFORCE_CGROUP || s.enforce == ENFORCE_AUTO) && setup_cgroups(&s) < 0) {
		rc = CLI_ERROR;
		goto out;
	}
	record_header(&s);

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);
	s.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s.sigfd < 0) {
		cli_error("signalfd: %s", strerror(errno));
		rc = CLI_ERROR;
		goto out_mask;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	for (unsigned k = 0; k < s.nw; k++) {
		r = spawn(&s, &s.w[k], &oldmask);
		if (r < 0) {
			cli_error("cannot run '%s': %s", o->argv[0], strerror(-r));
			event(&s, "spawn_failed", &s.w[k], false, NULL, "cannot run '%s': %s",
			      o->argv[0], strerror(-r));
			s.w[k].pid = 0;
			rc = 127;
			s.stopping = 2;
			stop_all(&s, SIGKILL);
			break;
		}
		event(&s, "spawn", &s.w[k], false, NULL, "rank %u started as pid %d", k, (int)s.w[k].pid);
	}

	/* The signal descriptor and, with --label, two output pipes per worker. */
	struct pollfd *pfd = calloc(1 + 2 * (size_t)s.nw, sizeof(*pfd));
	struct worker **owner = calloc(1 + 2 * (size_t)s.nw, sizeof(*owner));
	struct linebuf **lbs = calloc(1 + 2 * (size_t)s.nw, sizeof(*lbs));

	if (!pfd || !owner || !lbs) {
		cli_error("out of memory for %u workers", s.nw);
		s.stopping = 2;
		stop_all(&s, SIGKILL);
		rc = CLI_ERROR;
	}
	next_tick = rel(&s);
	while (s.running > 0 && pfd && owner && lbs) {
		nfds_t n = 0;
		double t = rel(&s), wait;
		int timeout_ms;

		if (t >= next_tick) {
			sample(&s);
			next_tick += o->interval;
			if (next_tick < t)
				next_tick = t + o->interval;
		}
		escalate(&s);
		pfd[n++] = (struct pollfd){ .fd = s.sigfd, .events = POLLIN };
		for (unsigned k = 0; k < s.nw; k++)
			for (int i = 0; i < 2; i++)
				if (s.w[k].lines[i].fd >= 0) {
					owner[n] = &s.w[k];
					lbs[n] = &s.w[k].lines[i];
					pfd[n++] = (struct pollfd){ .fd = s.w[k].lines[i].fd, .events = POLLIN };
				}
		wait = next_deadline(&s, next_tick) - rel(&s);
		timeout_ms = wait <= 0 ? 0 : (int)ceil(wait * 1000);
		if (poll(pfd, n, timeout_ms) < 0 && errno != EINTR)
			break;
		for (nfds_t i = 1; i < n; i++)
			if (pfd[i].revents)
				drain(owner[i], lbs[i]);
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(s.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				on_signal(&s, (int)si.ssi_signo);
		}
	}
	free(pfd);
	free(owner);
	free(lbs);
	/* Drain what the workers wrote last. */
	for (unsigned k = 0; k < s.nw; k++)
		for (int i = 0; i < 2; i++)
			while (s.w[k].lines[i].fd >= 0)
				drain(&s.w[k], &s.w[k].lines[i]);
	/* Nothing of a worker outlives the supervisor. */
	for (unsigned k = 0; k < s.nw; k++)
		if (s.w[k].pid > 0)
			kill(-s.w[k].pid, SIGKILL);
	reap(&s);

	collect_crashes(&s);   /* of grandchildren that died after their worker */
	/*
	 * No segment outlives a job that is this supervisor's alone (local-<pid>).
	 * A SLURM job's segments may serve its other steps and tasks: those go
	 * with `cohort shm gc` once the job has ended.
	 */
	if (strncmp(o->job, "local-", 6) == 0) {
		struct cohort_seg_options segopt = { .job = o->job, .probe = &o->probe };
		unsigned failed = 0;
		int n = cohort_seg_unlink_job(&segopt, &failed);

		if (n > 0 || failed > 0) {
			json_t *x = json_object();

			json_object_set_new(x, "removed", json_integer(n > 0 ? n : 0));
			json_object_set_new(x, "failed", json_integer(failed));
			event(&s, "segments_removed", NULL, false, x, "removed %d shared segment%s that job %s "
			      "left in /dev/shm%s", n > 0 ? n : 0, n == 1 ? "" : "s", o->job,
			      failed ? "; some could not be removed" : "");
		}
	}
	if (rc == 0) {
		rc = s.first_fail >= 0 ? s.first_fail : 0;
		for (unsigned k = 0; rc == 0 && k < s.nw; k++)
			rc = status_code(s.w[k].status);
	}
	{
		json_t *e = json_object();
		struct cohort_sampler_stats st;

		cohort_sampler_stats(s.sampler, &st);
		json_object_set_new(e, "type", json_string("end"));
		json_object_set_new(e, "t", json_real(rel(&s)));
		json_object_set_new(e, "exit_status", json_integer(rc));
		json_object_set_new(e, "sampler_cpu_s", json_real(st.cpu_ns / 1e9));
		json_object_set_new(e, "sampler_ticks", json_integer((json_int_t)st.ticks));
		record(&s, e);
	}
	if (!o->quiet)
		summary(&s);
	close(s.sigfd);
out_mask:
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
out:
	if (s.catch_dir[0]) {
		collect_crashes(&s);   /* empties it, recording what is left */
		rmdir(s.catch_dir);
	}
	teardown_cgroups(&s);
	recorder_close(&s.rec);
	cohort_sampler_destroy(s.sampler);
	free(s.m);
	free(s.w);
	return rc;
}
