/*
 * cmd-spank-watch.c - `cohort spank-watch`, the helper that spank_cohort.so
 * starts for each job step on each node (not listed in `cohort --help`).
 *
 * The plugin forks and execs this program from slurmstepd with a pipe on
 * stdin; it writes "task GLOBAL_ID LOCAL_ID PID\n" for each task it forked
 * and closes the pipe at the step's end. The helper watches each task's
 * cgroup with the library watcher, writes one recording per task into
 * DIR/<step>.<task>.<host>.ndjson (owned by the job's user), and at the end
 * says the verdict, when there is one, into the batch script's output file.
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
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MAX_TASKS 256

struct task {
	long id, local_id;
	pid_t pid;
	int started;                    /* the watcher follows its cgroup */
	double seen;                    /* when the plugin named it (watcher clock of task 0: wall) */
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
};

static void help(FILE *out)
{
	fprintf(out,
	        "Usage: cohort spank-watch --dir DIR --job ID --step S --ntasks N [--host H]\n"
	        "                          [--uid U --gid G] [--interval SECONDS] [--metrics MDIR]\n"
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

static void drain(struct task *t)
{
	struct cohort_event ev;

	while (cohort_watch_next_event(t->watch, &ev) == 1) {
		cohort_recorder_event(t->rec, &ev);
		spank_metrics_event(t->watch, &ev);
	}
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
	t->started = 1;
	drain(t);
	return 1;
}

static int add_task(struct helper *h, long id, long local_id, pid_t pid)
{
	struct cohort_watch_opts wo = {
		.workers = 1, .interval = h->interval, .enforce = COHORT_ENFORCE_NONE,
		.slurm_sums_rss = -1, .job_cgroup = h->job_cg[0] ? h->job_cg : NULL,
	};
	struct cohort_task task = {
		.known = 1, .source = "slurm", .id = id, .ntasks = h->ntasks, .node_id = -1,
		.tasks_on_node = -1, .local_id = local_id, .rank_offset = id,
	};
	static char what[] = "(SLURM task)";
	char *argv[] = { what, NULL };
	struct cohort_rec_header_info hi = {
		.host = h->host, .start = wall(), .supervisor_pid = getpid(), .job = h->job,
		.argv = argv, .workers = 1, .enforce = "none", .interval = h->interval,
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

static void line(struct helper *h, const char *s)
{
	long id, local_id;
	int pid;

	if (sscanf(s, "task %ld %ld %d", &id, &local_id, &pid) == 3 && id >= 0 && pid > 0)
		add_task(h, id, local_id, (pid_t)pid);
	else
		fprintf(stderr, "cohort spank-watch: ignoring the line '%.60s'\n", s);
}

static void tick(struct helper *h)
{
	for (size_t i = 0; i < h->n; i++) {
		struct task *t = &h->t[i];

		if (!t->started && try_start(h, t) == 0)
			continue;
		if (!t->started)
			continue;
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
 * The verdict of the job so far on this node's spool: every recording of
 * the job's steps, one step at a time, findings in cohort report's form.
 */
static void verdict(struct helper *h)
{
	struct cohort_recording *recs[64];
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
	for (size_t k = 0; k < nsteps; k++) {
		struct cohort_finding *f = NULL;
		struct cohort_job *job = NULL;
		size_t n = 0, nf = 0;
		char err[COHORT_MSG_MAX];

		rewinddir(d);
		while ((de = readdir(d)) != NULL && n < 64) {
			char p[COHORT_PATH_MAX];
			size_t sl = strlen(steps[k]), len = strlen(de->d_name);
			struct stat st;

			if (strncmp(de->d_name, steps[k], sl) != 0 || de->d_name[sl] != '.' || len < 7 ||
			    strcmp(de->d_name + len - 7, ".ndjson") != 0)
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
			fprintf(out, "\ncohort: job %s step %s on %s:\n", h->job, steps[k], h->host);
			cli_print_findings(out, f, nf, false, job->nrecs > 1);
			said++;
		}
		cohort_findings_free(f);
		cohort_job_free(job);
		for (size_t i = 0; i < n; i++)
			cohort_recording_free(recs[i]);
	}
	if (said)
		fprintf(out, "(cohort report --job %s for the whole report)\n", h->job);
	fclose(out);
	closedir(d);
}

static void finish(struct helper *h)
{
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
	}
	spank_metrics_close();   /* the final figures: before the watchers go */
	for (size_t i = 0; i < h->n; i++)
		cohort_watch_free(h->t[i].watch);
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
	for (;;) {
		struct pollfd p = { .fd = 0, .events = POLLIN };
		int r = poll(&p, 1, (int)(next_due(&h) * 1000));

		if (r < 0 && errno != EINTR)
			break;
		if (r > 0) {
			ssize_t got = read(0, buf + have, sizeof(buf) - 1 - have);
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
	}
	finish(&h);
	verdict(&h);
	if (h.out_fd >= 0)
		close(h.out_fd);
	return CLI_OK;
}

const struct cli_cmd cli_cmd_spank_watch = {
	.name = "spank-watch",
	.usage = "--dir DIR --job ID --step S [--ntasks N] [--host H] [--uid U --gid G] [--interval S] [--metrics MDIR]",
	.summary = NULL,   /* not listed: spank_cohort.so runs it */
	.exec = cmd_spank_watch_exec,
	.help = help,
};
