/*
 * cmd-top.c - `cohort top`: what each process of a job really costs (RSS,
 * PSS, USS, shared, swap, shmem), and the totals that explain the job's
 * fate side by side: the RSS sum SLURM's jobacct_gather/linux charges, the
 * PSS sum the processes really use, and the cgroup usage, peak and limit
 * the kernel enforces.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define COHORT_SPOOL_DEFAULT "/var/spool/cohort"

static void help(FILE *out)
{
	fprintf(out,
	        "Usage: cohort top [--pid PID ...] [--cgroup PATH] [--job JOBID] [--interval SEC]\n"
	        "                  [--once] [--json]\n"
	        "\n"
	        "Show what each process of a job really costs, sorted by PSS, with the totals\n"
	        "that explain its fate: the RSS sum (what SLURM's jobacct_gather/linux charges;\n"
	        "shared pages counted once per process), the PSS sum (what the processes really\n"
	        "use), and the cgroup's usage, peak and limit (what the kernel enforces).\n"
	        "\n"
	        "Which processes (the options add up):\n"
	        "  -p, --pid PID        this process and its descendants (repeatable)\n"
	        "  -c, --cgroup PATH    every process of this memory cgroup and those below it;\n"
	        "                       PATH as /proc/PID/cgroup shows it, or a directory\n"
	        "  -j, --job JOBID      the processes of SLURM job JOBID on this node, through\n"
	        "                       its cgroup; a job with no cgroup here (or with --spool):\n"
	        "                       its tasks as spank_cohort.so records them in the spool\n"
	        "      --spool DIR      with --job: the tasks' latest samples from DIR/JOBID\n"
	        "                       (default: COHORT_SPOOL, else " COHORT_SPOOL_DEFAULT ")\n"
	        "  With none: the SLURM job this runs in (SLURM_JOB_ID), else the processes of\n"
	        "  the caller's own memory cgroup. cohort top never lists itself.\n"
	        "\n"
	        "Options:\n"
	        "  -i, --interval SEC   refresh every SEC seconds (default 1; fractions allowed)\n"
	        "  -n, --iterations N   stop after N refreshes (default: until interrupted)\n"
	        "  -1, --once           one full measurement of every process, then exit\n"
	        "  -b, --budget PCT     CPU share of one core for PSS reads when refreshing\n"
	        "                       (default 1); PSS figures show their age\n"
	        "      --json           JSON: one object (--once), or one object per line\n"
	        "  -h, --help           show this help\n"
	        "\n"
	        "PSS (proportional set size) charges a page shared by N processes 1/N to each,\n"
	        "so PSS sums to the memory really used. USS is what a process alone holds: freed\n"
	        "when it exits. Reading PSS walks page tables (about 1 ms per 100 MB resident);\n"
	        "when refreshing, cohort top reads RSS every time and PSS within its budget,\n"
	        "the processes whose RSS moved most or whose PSS is oldest first.\n"
	        "\n"
	        "Exit status: 0 ok, 2 bad usage, 3 the processes or the cgroup could not be read.\n");
}

struct proc_row {
	pid_t pid;
	char name[COHORT_ID_MAX];
	int have_pss;
	uint64_t rss;                   /* statm, or smaps Rss */
	struct cohort_procmem mem;
	uint64_t age_ns;
};

struct top {
	struct cohort_probe probe;
	pid_t *roots;
	size_t nroots;
	const char *cgroup_arg;
	const char *job_arg;
	bool json, once, tty;
	double interval;
	unsigned iterations;
	double budget;

	char cgdir[COHORT_PATH_MAX];    /* the cgroup whose counters are shown, "" for none */
	const char *scope;              /* what was measured, for the header */
	char scope_buf[COHORT_PATH_MAX + 64];
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static json_t *jsize(uint64_t v)
{
	return v == COHORT_MEM_UNKNOWN ? json_null() : cli_json_size(v);
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* Append part (np pids, freed here) to *all (n pids). Returns 0 or -ENOMEM. */
static int append_pids(pid_t **all, size_t *n, pid_t *part, size_t np)
{
	pid_t *m = realloc(*all, (*n + np + 1) * sizeof(*m));

	if (!m) {
		cohort_pids_free(part);
		return -ENOMEM;
	}
	*all = m;
	memcpy(m + *n, part, np * sizeof(*part));
	*n += np;
	cohort_pids_free(part);
	return 0;
}

/* The current set of processes; malloc'd, sorted, without ourselves. */
static int collect_pids(struct top *t, pid_t **ret, size_t *ret_n)
{
	pid_t *all = NULL, *part;
	size_t n = 0, np;
	int r;

	for (size_t i = 0; i < t->nroots; i++) {
		r = cohort_pids_descendants(&t->probe, t->roots[i], &part, &np);
		if (r == -ESRCH)
			continue;   /* gone: the set shrinks, it is not an error */
		if (r < 0)
			goto fail;
		r = append_pids(&all, &n, part, np);
		if (r < 0)
			goto fail;
	}
	if (t->cgdir[0] && (t->cgroup_arg || t->job_arg || t->nroots == 0)) {
		r = cohort_pids_cgroup(&t->probe, t->cgdir, &part, &np);
		if (r < 0)
			goto fail;
		r = append_pids(&all, &n, part, np);
		if (r < 0)
			goto fail;
	}
	if (!all && !(all = malloc(sizeof(*all)))) {
		r = -ENOMEM;
		goto fail;
	}
	qsort(all, n, sizeof(*all), cmp_pid);
	size_t out = 0;
	for (size_t i = 0; i < n; i++)
		if ((out == 0 || all[out - 1] != all[i]) && all[i] != getpid())
			all[out++] = all[i];
	*ret = all;
	*ret_n = out;
	return 0;
fail:
	free(all);
	return r;
}

static int cmp_row(const void *a, const void *b)
{
	const struct proc_row *x = a, *y = b;
	uint64_t px = x->have_pss ? x->mem.pss : 0, py = y->have_pss ? y->mem.pss : 0;

	if (px != py)
		return px < py ? 1 : -1;
	if (x->rss != y->rss)
		return x->rss < y->rss ? 1 : -1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* The cgroup's counters, and the tightest limit from it up to the root. */
struct cg_view {
	int known;
	struct cohort_cgmem c;
	uint64_t limit;
	char limit_where[COHORT_PATH_MAX];
};

static void read_cgroup(const struct top *t, struct cg_view *v)
{
	char dir[COHORT_PATH_MAX];
	struct cohort_cgmem up;

	memset(v, 0, sizeof(*v));
	v->limit = UINT64_MAX;
	if (!t->cgdir[0] || cohort_cgroup_read(&t->probe, t->cgdir, &v->c) < 0)
		return;
	v->known = 1;
	snprintf(dir, sizeof(dir), "%s", v->c.dir);
	for (;;) {
		if (cohort_cgroup_read(&t->probe, dir, &up) < 0)
			break;
		if (up.limit < v->limit) {
			v->limit = up.limit;
			snprintf(v->limit_where, sizeof(v->limit_where), "%s", dir);
		}
		char *slash = strrchr(dir, '/');
		if (!slash || slash == dir)
			break;
		*slash = '\0';
	}
}

struct totals {
	uint64_t rss, pss, uss, swap;
	size_t n, n_pss;
	uint64_t worst_age_ns;
};

static void sum(const struct proc_row *rows, size_t n, struct totals *tot)
{
	memset(tot, 0, sizeof(*tot));
	tot->n = n;
	for (size_t i = 0; i < n; i++) {
		tot->rss += rows[i].rss;
		if (!rows[i].have_pss)
			continue;
		tot->n_pss++;
		tot->pss += rows[i].mem.pss;
		tot->uss += rows[i].mem.uss;
		if (rows[i].mem.swap != COHORT_MEM_UNKNOWN)
			tot->swap += rows[i].mem.swap;
		if (rows[i].age_ns > tot->worst_age_ns)
			tot->worst_age_ns = rows[i].age_ns;
	}
}

static json_t *cgroup_json(const struct cg_view *v)
{
	json_t *o;

	if (!v->known)
		return json_null();
	o = json_object();
	json_object_set_new(o, "path", json_string(v->c.dir));
	json_object_set_new(o, "version", json_integer(v->c.version));
	json_object_set_new(o, "usage_bytes", jsize(v->c.usage));
	json_object_set_new(o, "peak_bytes", jsize(v->c.peak));
	json_object_set_new(o, "limit_bytes", v->limit == UINT64_MAX ? json_null() : jsize(v->limit));
	json_object_set_new(o, "limit_where", v->limit == UINT64_MAX ? json_null() : json_string(v->limit_where));
	json_object_set_new(o, "anon_bytes", jsize(v->c.anon));
	json_object_set_new(o, "file_bytes", jsize(v->c.file));
	json_object_set_new(o, "shmem_bytes", jsize(v->c.shmem));
	json_object_set_new(o, "swap_bytes", jsize(v->c.swap));
	json_object_set_new(o, "oom_kill", jsize(v->c.oom_kill));
	json_object_set_new(o, "failcnt", jsize(v->c.failcnt));
	json_object_set_new(o, "max_events", jsize(v->c.max_events));
	if (v->c.has_pressure)
		json_object_set_new(o, "pressure_some_avg10", json_real(v->c.pressure.some_avg10));
	return o;
}

/* Print root (taken) as one JSON document: indented once, compact when refreshing. */
static int emit_json(const struct top *t, json_t *root)
{
	char *text = json_dumps(root, (t->once ? JSON_INDENT(2) : JSON_COMPACT) | JSON_PRESERVE_ORDER);

	json_decref(root);
	if (!text) {
		cli_error("out of memory writing JSON");
		return CLI_ERROR;
	}
	puts(text);
	free(text);
	fflush(stdout);
	return CLI_OK;
}

static int print_json(const struct top *t, const struct proc_row *rows, size_t n,
                      const struct cg_view *cg, const struct totals *tot)
{
	json_t *root = json_object(), *procs = json_array(), *totals = json_object();
	struct cohort_psi psi;

	json_object_set_new(root, "scope", json_string(t->scope));
	json_object_set_new(root, "time", json_integer((json_int_t)time(NULL)));
	for (size_t i = 0; i < n; i++) {
		const struct proc_row *r = &rows[i];
		json_t *o = json_object();
		bool p = r->have_pss;

		json_object_set_new(o, "pid", json_integer(r->pid));
		json_object_set_new(o, "command", json_string(r->name));
		json_object_set_new(o, "rss_bytes", jsize(r->rss));
		json_object_set_new(o, "pss_bytes", p ? jsize(r->mem.pss) : json_null());
		json_object_set_new(o, "uss_bytes", p ? jsize(r->mem.uss) : json_null());
		json_object_set_new(o, "shared_bytes",
		                    p ? jsize(r->mem.shared_clean + r->mem.shared_dirty) : json_null());
		json_object_set_new(o, "swap_bytes", p ? jsize(r->mem.swap) : json_null());
		json_object_set_new(o, "swap_pss_bytes", p ? jsize(r->mem.swap_pss) : json_null());
		json_object_set_new(o, "shmem_bytes", p ? jsize(r->mem.pss_shmem) : json_null());
		json_object_set_new(o, "pss_anon_bytes", p ? jsize(r->mem.pss_anon) : json_null());
		json_object_set_new(o, "pss_file_bytes", p ? jsize(r->mem.pss_file) : json_null());
		json_object_set_new(o, "pss_age_ms", p ? json_integer((json_int_t)(r->age_ns / 1000000)) : json_null());
		json_array_append_new(procs, o);
	}
	json_object_set_new(root, "processes", procs);
	json_object_set_new(totals, "processes", json_integer((json_int_t)tot->n));
	json_object_set_new(totals, "rss_sum_bytes", jsize(tot->rss));
	json_object_set_new(totals, "pss_sum_bytes", jsize(tot->pss));
	json_object_set_new(totals, "uss_sum_bytes", jsize(tot->uss));
	json_object_set_new(totals, "swap_sum_bytes", jsize(tot->swap));
	json_object_set_new(totals, "pss_known", json_integer((json_int_t)tot->n_pss));
	json_object_set_new(totals, "pss_worst_age_ms", json_integer((json_int_t)(tot->worst_age_ns / 1000000)));
	json_object_set_new(root, "totals", totals);
	json_object_set_new(root, "cgroup", cgroup_json(cg));
	if (cohort_psi_read(&t->probe, NULL, &psi) == 0)
		json_object_set_new(root, "node_pressure_some_avg10", json_real(psi.some_avg10));
	return emit_json(t, root);
}

static const char *sz(uint64_t v, char *buf, size_t size)
{
	if (v == COHORT_MEM_UNKNOWN)
		return "-";
	return cohort_size_format(v, buf, size);
}

/* A refresh begins: the screen cleared on a terminal, the time of day into when. */
static void screen_start(const struct top *t, char *when, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(when, size, "%H:%M:%S", &tm);
	if (t->tty && !t->once)
		fputs("\033[H\033[2J", stdout);
}

static void print_text(const struct top *t, const struct proc_row *rows, size_t n,
                       const struct cg_view *cg, const struct totals *tot)
{
	char b[8][32], when[32];

	screen_start(t, when, sizeof(when));
	printf("cohort top - %s - %s - %zu processes\n\n", when, t->scope, n);
	printf("%8s %-16s %10s %10s %10s %10s %10s %10s %8s\n", "PID", "COMMAND", "RSS", "PSS", "USS",
	       "SHARED", "SWAP", "SHMEM", "PSS AGE");
	for (size_t i = 0; i < n; i++) {
		const struct proc_row *r = &rows[i];
		char age[16] = "-";

		if (r->have_pss)
			snprintf(age, sizeof(age), "%.1fs", (double)r->age_ns / 1e9);
		printf("%8d %-16.16s %10s %10s %10s %10s %10s %10s %8s\n", (int)r->pid, r->name,
		       sz(r->rss, b[0], 32),
		       r->have_pss ? sz(r->mem.pss, b[1], 32) : "?",
		       r->have_pss ? sz(r->mem.uss, b[2], 32) : "?",
		       r->have_pss ? sz(r->mem.shared_clean + r->mem.shared_dirty, b[3], 32) : "?",
		       r->have_pss ? sz(r->mem.swap, b[4], 32) : "?",
		       r->have_pss ? sz(r->mem.pss_shmem, b[5], 32) : "?", age);
	}
	printf("\n");
	printf("  %-12s %10s  what SLURM's jobacct_gather/linux charges: a shared page once per process\n",
	       "RSS sum", sz(tot->rss, b[0], 32));
	printf("  %-12s %10s  what the processes really use (each shared page split among its users)%s\n",
	       "PSS sum", sz(tot->pss, b[1], 32),
	       tot->n_pss < tot->n ? " - not yet read for every process" : "");
	printf("  %-12s %10s  freed if every process exited\n", "USS sum", sz(tot->uss, b[2], 32));
	if (cg->known) {
		printf("  %-12s %10s  peak %s: what the kernel enforces (cgroup v%d, page cache and shm included)\n",
		       "cgroup usage", sz(cg->c.usage, b[3], 32), sz(cg->c.peak, b[4], 32), cg->c.version);
		if (cg->limit != UINT64_MAX)
			printf("  %-12s %10s  %s\n", "limit", sz(cg->limit, b[5], 32), cg->limit_where);
		else
			printf("  %-12s %10s\n", "limit", "none");
		if (cg->c.oom_kill != COHORT_MEM_UNKNOWN && cg->c.oom_kill > 0)
			printf("  %-12s %10llu  processes killed by the OOM killer in this cgroup\n",
			       "oom_kill", (unsigned long long)cg->c.oom_kill);
	} else {
		printf("  %-12s %10s\n", "cgroup", "none");
	}
	if (t->tty || t->once)
		fflush(stdout);
	else
		printf("\n");
	fflush(stdout);
}

static void fill_name(const struct top *t, struct proc_row *r)
{
	struct cohort_procstatus st;

	if (cohort_proc_status(&t->probe, r->pid, &st) == 0)
		snprintf(r->name, sizeof(r->name), "%s", st.name);
	else
		snprintf(r->name, sizeof(r->name), "?");
}

/* --once: read every process fully. */
static int run_once(struct top *t)
{
	pid_t *pids;
	size_t n, nrows = 0;
	struct proc_row *rows;
	struct cg_view cg;
	struct totals tot;
	int r = collect_pids(t, &pids, &n);

	if (r < 0) {
		cli_error("cannot list the processes of %s: %s", t->scope, cohort_strerror(r));
		return CLI_ERROR;
	}
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows) {
		free(pids);
		cli_error("out of memory");
		return CLI_ERROR;
	}
	for (size_t i = 0; i < n; i++) {
		struct proc_row *row = &rows[nrows];

		row->pid = pids[i];
		r = cohort_proc_smaps(&t->probe, pids[i], &row->mem);
		if (r == -ESRCH)
			continue;   /* exited meanwhile */
		if (r == 0) {
			row->have_pss = 1;
			row->rss = row->mem.rss;
		} else {
			/* Not ours to read (another user's process): RSS from statm at least. */
			struct cohort_statm st;

			if (cohort_proc_statm(&t->probe, pids[i], &st) < 0)
				continue;
			row->rss = st.rss;
		}
		fill_name(t, row);
		nrows++;
	}
	free(pids);
	qsort(rows, nrows, sizeof(*rows), cmp_row);
	read_cgroup(t, &cg);
	sum(rows, nrows, &tot);
	if (t->json)
		r = print_json(t, rows, nrows, &cg, &tot);
	else {
		print_text(t, rows, nrows, &cg, &tot);
		r = CLI_OK;
	}
	free(rows);
	return r;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (!interrupted && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Refreshing: the sampler reads statm every tick and PSS within the budget. */
static int run_loop(struct top *t)
{
	struct cohort_sampler_opts so = { .cpu_budget = t->budget, .probe = &t->probe };
	struct cohort_sampler *s;
	struct proc_row *rows = NULL;
	struct name_entry {
		pid_t pid;
		char name[COHORT_ID_MAX];
	} *names = NULL;   /* by the sampler's index; a pid moving index is read again */
	size_t rcap = 0, ncache = 0;
	int r, status = CLI_OK;

	r = cohort_sampler_create(&so, &s);
	if (r < 0) {
		cli_error("cannot start the sampler: %s", cohort_strerror(r));
		return CLI_ERROR;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, on_signal);
	for (unsigned it = 0; !interrupted && (t->iterations == 0 || it < t->iterations); it++) {
		pid_t *pids;
		size_t n, nrows = 0;
		struct cg_view cg;
		struct totals tot;

		if (it > 0)
			sleep_s(t->interval);
		if (interrupted)
			break;
		r = collect_pids(t, &pids, &n);
		if (r < 0) {
			cli_error("cannot list the processes of %s: %s", t->scope, cohort_strerror(r));
			status = CLI_ERROR;
			break;
		}
		/* Follow the set: new workers join, finished ones leave. */
		for (size_t i = cohort_sampler_count(s); i-- > 0;) {
			struct cohort_sample smp;

			cohort_sampler_get(s, i, &smp);
			if (smp.gone || !bsearch(&smp.pid, pids, n, sizeof(*pids), cmp_pid))
				cohort_sampler_remove(s, smp.pid);
		}
		for (size_t i = 0; i < n; i++)
			cohort_sampler_add(s, pids[i]);   /* -EEXIST for those already there */
		free(pids);
		cohort_sampler_tick(s);
		n = cohort_sampler_count(s);
		if (n > rcap) {
			struct proc_row *nr = realloc(rows, n * sizeof(*nr));

			if (!nr) {
				cli_error("out of memory");
				status = CLI_ERROR;
				break;
			}
			rows = nr;
			rcap = n;
		}
		if (n > ncache) {
			struct name_entry *nn = realloc(names, n * sizeof(*nn));

			if (nn) {
				memset(nn + ncache, 0, (n - ncache) * sizeof(*nn));
				names = nn;
				ncache = n;
			}
		}
		for (size_t i = 0; i < n; i++) {
			struct cohort_sample smp;
			struct proc_row *row = &rows[nrows];

			cohort_sampler_get(s, i, &smp);
			if (smp.gone || smp.statm.rss == 0)
				continue;
			memset(row, 0, sizeof(*row));
			row->pid = smp.pid;
			row->rss = smp.statm.rss;
			row->have_pss = smp.have_pss;
			row->mem = smp.mem;
			row->age_ns = smp.mem_age_ns;
			/* Names are read once per process, not every refresh. */
			if (i < ncache && names[i].pid == row->pid) {
				memcpy(row->name, names[i].name, sizeof(row->name));
			} else {
				fill_name(t, row);
				if (i < ncache) {
					names[i].pid = row->pid;
					memcpy(names[i].name, row->name, sizeof(row->name));
				}
			}
			nrows++;
		}
		if (nrows > 1)
			qsort(rows, nrows, sizeof(*rows), cmp_row);
		read_cgroup(t, &cg);
		sum(rows, nrows, &tot);
		if (t->json)
			print_json(t, rows, nrows, &cg, &tot);
		else
			print_text(t, rows, nrows, &cg, &tot);
	}
	free(rows);
	free(names);
	cohort_sampler_free(s);
	return status;
}

static int parse_pid(const char *text, pid_t *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end || end == text || v <= 0 || v > INT_MAX)
		return -1;
	*ret = (pid_t)v;
	return 0;
}

/* ---- --job from the spool: the tasks spank_cohort.so records --------- */

/*
 * One task's latest figures: the last sample of its recording in
 * <spool>/<job>/<step>.<task>.<host>.ndjson (cohort report --job reads
 * the same files), live while the recording has no end line.
 */
struct spool_row {
	char step[COHORT_ID_MAX], node[COHORT_ID_MAX];
	long task;
	int live, has_sample;
	double age;                     /* seconds since its last sample */
	struct cohort_rec_sample last;
	uint64_t peak;                  /* the worker's peak figure judged */
};

static int cmp_spool_row(const void *a, const void *b)
{
	const struct spool_row *x = a, *y = b;
	int c = strcmp(x->step, y->step);

	if (c)
		return c;
	if (x->task != y->task)
		return x->task < y->task ? -1 : 1;
	return strcmp(x->node, y->node);
}

/* The recordings of the job in dir; *ret malloc'd. Returns the count or -errno. */
static int spool_rows(const char *dir, struct spool_row **ret)
{
	struct spool_row *rows = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	double now = (double)time(NULL);
	DIR *d = opendir(dir);

	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		struct cohort_recording *rec;
		char path[COHORT_PATH_MAX];
		struct stat st;
		struct spool_row *r;

		if (de->d_name[0] == '.' || len < 8 || strcmp(de->d_name + len - 7, ".ndjson") != 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path) ||
		    cohort_recording_load(path, &rec, NULL, 0) < 0)
			continue;       /* one unreadable file: the others are still shown */
		if (n == cap) {
			struct spool_row *m = realloc(rows, (cap ? cap * 2 : 16) * sizeof(*m));

			if (!m) {
				cohort_recording_free(rec);
				free(rows);
				closedir(d);
				return -ENOMEM;
			}
			rows = m;
			cap = cap ? cap * 2 : 16;
		}
		r = &rows[n++];
		memset(r, 0, sizeof(*r));
		snprintf(r->step, sizeof(r->step), "%.*s", (int)strcspn(de->d_name, "."), de->d_name);
		snprintf(r->node, sizeof(r->node), "%s", rec->task.node[0] ? rec->task.node : rec->host);
		r->task = rec->task.known ? rec->task.id : -1;
		r->live = !rec->ended;
		if (rec->nsamples) {
			r->has_sample = 1;
			r->last = rec->samples[rec->nsamples - 1];
			r->age = now - (rec->start + r->last.t);
			if (r->age < 0)
				r->age = 0;
		}
		if (rec->nworkers)
			r->peak = rec->workers[0].peak_pss > rec->workers[0].peak_cgroup ?
			          rec->workers[0].peak_pss : rec->workers[0].peak_cgroup;
		cohort_recording_free(rec);
	}
	closedir(d);
	if (n > 1)
		qsort(rows, n, sizeof(*rows), cmp_spool_row);
	*ret = rows;
	return (int)n;
}

static void spool_print(const struct top *t, const char *dir, const struct spool_row *rows, size_t n)
{
	uint64_t rss = 0, pss = 0, uss = 0, cg = 0;
	size_t live = 0;
	char b[6][32], when[32];

	screen_start(t, when, sizeof(when));
	for (size_t i = 0; i < n; i++)
		live += rows[i].live;
	printf("cohort top - %s - %s, recorded in %s - %zu tasks, %zu running\n\n", when, t->scope, dir, n,
	       live);
	printf("%-12s %6s %-12s %10s %10s %10s %10s %10s %10s %8s %-7s\n", "STEP", "TASK", "NODE", "RSS",
	       "PSS", "USS", "CGROUP", "LIMIT", "PEAK", "AGE", "STATE");
	for (size_t i = 0; i < n; i++) {
		const struct spool_row *r = &rows[i];
		char task[24], age[16];

		snprintf(task, sizeof(task), r->task >= 0 ? "%ld" : "?", r->task);
		snprintf(age, sizeof(age), r->has_sample ? "%.0fs" : "-", r->age);
		printf("%-12.12s %6s %-12.12s %10s %10s %10s %10s %10s %10s %8s %-7s\n", r->step, task, r->node,
		       r->has_sample ? cohort_size_format(r->last.rss_sum, b[0], 32) : "-",
		       r->has_sample ? cohort_size_format(r->last.pss_sum, b[1], 32) : "-",
		       r->has_sample ? cohort_size_format(r->last.uss_sum, b[2], 32) : "-",
		       r->has_sample && r->last.has_cgroup ? cohort_size_format(r->last.cg_usage, b[3], 32) : "-",
		       r->has_sample && r->last.has_cgroup && r->last.cg_limit && r->last.cg_limit < (1ULL << 62) ?
		       cohort_size_format(r->last.cg_limit, b[4], 32) : "-",
		       r->peak ? cohort_size_format(r->peak, b[5], 32) : "-", age, r->live ? "running" : "ended");
		if (r->live && r->has_sample) {
			rss += r->last.rss_sum;
			pss += r->last.pss_sum;
			uss += r->last.uss_sum;
			cg += r->last.has_cgroup ? r->last.cg_usage : 0;
		}
	}
	printf("\n");
	printf("  %-12s %10s  what SLURM's jobacct_gather/linux charges, the running tasks together\n",
	       "RSS sum", cohort_size_format(rss, b[0], 32));
	printf("  %-12s %10s  what they really use (each shared page split among its users)\n", "PSS sum",
	       cohort_size_format(pss, b[1], 32));
	printf("  %-12s %10s  freed if every process exited\n", "USS sum", cohort_size_format(uss, b[2], 32));
	printf("  %-12s %10s  the running tasks' cgroups (what the kernel counts)\n", "cgroup usage",
	       cohort_size_format(cg, b[3], 32));
	if (!t->tty || t->once)
		printf("\n");
	fflush(stdout);
}

static int spool_json(const struct top *t, const char *dir, const struct spool_row *rows, size_t n)
{
	json_t *root = json_object(), *tasks = json_array();

	json_object_set_new(root, "scope", json_string(t->scope));
	json_object_set_new(root, "spool_dir", json_string(dir));
	json_object_set_new(root, "time", json_integer((json_int_t)time(NULL)));
	for (size_t i = 0; i < n; i++) {
		const struct spool_row *r = &rows[i];
		json_t *o = json_object();
		bool p = r->has_sample;

		json_object_set_new(o, "step", json_string(r->step));
		json_object_set_new(o, "task", r->task >= 0 ? json_integer(r->task) : json_null());
		json_object_set_new(o, "node", json_string(r->node));
		json_object_set_new(o, "running", json_boolean(r->live));
		json_object_set_new(o, "rss_sum_bytes", p ? cli_json_size(r->last.rss_sum) : json_null());
		json_object_set_new(o, "pss_sum_bytes", p ? cli_json_size(r->last.pss_sum) : json_null());
		json_object_set_new(o, "uss_sum_bytes", p ? cli_json_size(r->last.uss_sum) : json_null());
		json_object_set_new(o, "cgroup_usage_bytes",
		                    p && r->last.has_cgroup ? cli_json_size(r->last.cg_usage) : json_null());
		json_object_set_new(o, "cgroup_limit_bytes",
		                    p && r->last.has_cgroup && r->last.cg_limit && r->last.cg_limit < (1ULL << 62) ?
		                    cli_json_size(r->last.cg_limit) :
		                    json_null());
		json_object_set_new(o, "peak_bytes", r->peak ? cli_json_size(r->peak) : json_null());
		json_object_set_new(o, "sample_age_s", p ? json_real(r->age) : json_null());
		json_array_append_new(tasks, o);
	}
	json_object_set_new(root, "tasks", tasks);
	return emit_json(t, root);
}

/* --job from the spool: the recordings read again at every refresh. */
static int run_spool(struct top *t, const char *dir)
{
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, on_signal);
	for (unsigned it = 0; !interrupted && (t->iterations == 0 || it < t->iterations); it++) {
		struct spool_row *rows = NULL;
		int n;

		if (it > 0)
			sleep_s(t->interval);
		if (interrupted)
			break;
		n = spool_rows(dir, &rows);
		if (n < 0) {
			cli_error("cannot read %s: %s", dir, strerror(-n));
			return CLI_ERROR;
		}
		if (t->json)
			spool_json(t, dir, rows, (size_t)n);
		else
			spool_print(t, dir, rows, (size_t)n);
		free(rows);
		if (t->once)
			break;
	}
	return CLI_OK;
}

static int cmd_top_exec(int argc, char **argv);

const struct cli_cmd cli_cmd_top = {
	.name = "top",
	.usage = "[--pid PID ...] [--cgroup PATH] [--job JOBID [--spool DIR]] [--interval SEC] [--once] [--json]",
	.summary = "live per-process RSS, PSS, USS beside the cgroup's usage and limit",
	.exec = cmd_top_exec,
	.help = help,
};

static int cmd_top_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "job", required_argument, NULL, 'j' },
		{ "interval", required_argument, NULL, 'i' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "once", no_argument, NULL, '1' },
		{ "budget", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'J' },
		{ "spool", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct top t;
	const char *slurm_job, *spool = NULL;
	char spool_dir[COHORT_PATH_MAX];
	int c, r, status;

	memset(&t, 0, sizeof(t));
	cli_probe(&t.probe);
	t.interval = 1.0;
	t.budget = 0.01;
	t.tty = isatty(STDOUT_FILENO);
	t.roots = calloc((size_t)argc, sizeof(*t.roots));
	if (!t.roots) {
		cli_error("out of memory");
		return CLI_ERROR;
	}
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":p:c:j:i:n:1b:h", opts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'p':
			if (parse_pid(optarg, &t.roots[t.nroots]) < 0) {
				free(t.roots);
				return cli_usage_error(&cli_cmd_top,
				                       "invalid pid '%s' for --pid: expected a process id above 0", optarg);
			}
			t.nroots++;
			break;
		case 'c':
			t.cgroup_arg = optarg;
			break;
		case 'j':
			t.job_arg = optarg;
			break;
		case 'i':
			errno = 0;
			t.interval = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(t.interval >= 0.05 && t.interval <= 3600)) {
				free(t.roots);
				return cli_usage_error(&cli_cmd_top,
				                       "invalid interval '%s' for --interval: expected seconds from 0.05 to 3600",
				                       optarg);
			}
			break;
		case 'n':
			if (cli_parse_count("--iterations", optarg, 1000000000u, &t.iterations) < 0) {
				free(t.roots);
				return CLI_USAGE;
			}
			break;
		case '1':
			t.once = true;
			break;
		case 'b':
			errno = 0;
			t.budget = strtod(optarg, &end) / 100.0;
			if (errno || *end || end == optarg || !(t.budget > 0 && t.budget <= 1)) {
				free(t.roots);
				return cli_usage_error(&cli_cmd_top,
				                       "invalid budget '%s' for --budget: expected a percentage of one core, above 0 and at most 100",
				                       optarg);
			}
			break;
		case 'J':
			t.json = true;
			break;
		case 'P':
			spool = optarg;
			break;
		case 'h':
			help(stdout);
			free(t.roots);
			return CLI_OK;
		case ':':
			free(t.roots);
			return cli_usage_error(&cli_cmd_top, "option '%s' needs a value", argv[optind - 1]);
		default:
			free(t.roots);
			return cli_usage_error(&cli_cmd_top, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		free(t.roots);
		return cli_usage_error(&cli_cmd_top, "unexpected argument '%s'; processes are named with --pid",
		                       argv[optind]);
	}
	if (t.cgroup_arg && t.job_arg) {
		free(t.roots);
		return cli_usage_error(&cli_cmd_top, "--cgroup and --job both name a cgroup; give one");
	}

	if (spool && !t.job_arg) {
		free(t.roots);
		return cli_usage_error(&cli_cmd_top, "--spool needs --job");
	}
	slurm_job = getenv("SLURM_JOB_ID");
	if (!t.job_arg && !t.cgroup_arg && t.nroots == 0 && slurm_job && *slurm_job)
		t.job_arg = slurm_job;
	status = CLI_ERROR;
	if (t.job_arg) {
		r = cohort_cgroup_find_job(&t.probe, t.job_arg, t.cgdir, sizeof(t.cgdir));
		if (r == -EINVAL) {
			free(t.roots);
			return cli_usage_error(&cli_cmd_top,
			                       "invalid job id '%s' for --job: expected SLURM_JOB_ID, a number", t.job_arg);
		}
		if (r < 0 || spool) {
			/* The spool: --spool, or a job not on this node that the plugin records. */
			const char *sp = spool ? spool : getenv("COHORT_SPOOL");
			struct stat st;

			if (!sp || !*sp)
				sp = COHORT_SPOOL_DEFAULT;
			snprintf(spool_dir, sizeof(spool_dir), "%s/%s", sp, t.job_arg);
			if (stat(spool_dir, &st) == 0 && S_ISDIR(st.st_mode)) {
				snprintf(t.scope_buf, sizeof(t.scope_buf), "SLURM job %s", t.job_arg);
				t.scope = t.scope_buf;
				status = run_spool(&t, spool_dir);
				goto out;
			}
			if (spool) {
				cli_error("no recordings of job %s in the spool %s (%s: %s): spank_cohort.so has not "
				          "watched it on this node, or the spool is another (plugstack option spool=)",
				          t.job_arg, spool, spool_dir, strerror(errno ? errno : ENOTDIR));
				goto out;
			}
		}
		if (r < 0) {
			cli_error("SLURM job %s has no memory cgroup on this node (looked for job_%s under %s): "
			          "it has ended, runs on another node, or SLURM does not confine jobs with "
			          "cgroups here (TaskPlugin=task/cgroup); use --pid instead",
			          t.job_arg, t.job_arg, t.probe.cgroup_root ? t.probe.cgroup_root : "/sys/fs/cgroup");
			goto out;
		}
		snprintf(t.scope_buf, sizeof(t.scope_buf), "SLURM job %s", t.job_arg);
	} else if (t.cgroup_arg) {
		struct cohort_cgmem cgm;

		r = cohort_cgroup_read(&t.probe, t.cgroup_arg, &cgm);
		if (r < 0) {
			const char *root = t.probe.cgroup_root ? t.probe.cgroup_root : "/sys/fs/cgroup";
			const char *find = "find the job's cgroup on the memory (or 0::) line of /proc/PID/cgroup "
			                   "of one of its processes, or use --pid PID or --job ID instead";
			struct stat st;

			/* A path that exists but is not one: say so, not "No such file" of where it was looked for. */
			if (r == COHORT_ENOCGROUP || (r == -ENOENT && stat(t.cgroup_arg, &st) == 0))
				cli_error("'%s' is not a memory cgroup: it is not a directory of the memory "
				          "hierarchy under %s with a memory.current (v2) or memory.usage_in_bytes "
				          "(v1); %s", t.cgroup_arg, root, find);
			else if (r == -ENOENT)
				cli_error("no memory cgroup '%s' under %s; %s", t.cgroup_arg, root, find);
			else
				cli_error("cannot read the memory cgroup '%s': %s; %s", t.cgroup_arg,
				          cohort_strerror(r), find);
			goto out;
		}
		snprintf(t.cgdir, sizeof(t.cgdir), "%s", cgm.dir);
		snprintf(t.scope_buf, sizeof(t.scope_buf), "cgroup %s", t.cgdir);
	} else if (t.nroots > 0) {
		for (size_t i = 0; i < t.nroots; i++) {
			struct cohort_statm st;

			if (cohort_proc_statm(&t.probe, t.roots[i], &st) == -ESRCH) {
				cli_error("no process %d (--pid): it has exited, or the pid is wrong",
				          (int)t.roots[i]);
				goto out;
			}
		}
		/* The counters of the first process's cgroup, which may hold others too. */
		if (cohort_cgroup_of_pid(&t.probe, t.roots[0], t.cgdir, sizeof(t.cgdir), NULL) < 0)
			t.cgdir[0] = '\0';
		snprintf(t.scope_buf, sizeof(t.scope_buf), "pid %d%s and descendants", (int)t.roots[0],
		         t.nroots > 1 ? " and others" : "");
	} else {
		if (cohort_cgroup_of_pid(&t.probe, 0, t.cgdir, sizeof(t.cgdir), NULL) < 0) {
			cli_error("this process has no memory cgroup to show; name the processes with --pid");
			goto out;
		}
		snprintf(t.scope_buf, sizeof(t.scope_buf), "cgroup %s", t.cgdir);
	}
	t.scope = t.scope_buf;
	status = t.once ? run_once(&t) : run_loop(&t);
out:
	free(t.roots);
	return status;
}
