/*
 * cmd-report.c - `cohort report`: why did the job die, from one recording
 * or several (one per node or task), as text, JSON or an HTML page.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define COHORT_SPOOL_DEFAULT "/var/spool/cohort"

static void help(FILE *out)
{
	fprintf(out,
	        "Usage: cohort report [--json] [--html OUT] [--force] FILE...\n"
	        "       cohort report [--json] [--html OUT] --job ID [--step S] [DIR]\n"
	        "       cohort report [--json] --job ID [--step S] --spool DIR\n"
	        "\n"
	        "Read the recordings of cohort run and say what happened: the allocation, each\n"
	        "worker's end and peak memory, and the findings, most important first, each with\n"
	        "its figures and a fix. The recordings of one job's tasks (srun -n 4 cohort run,\n"
	        "mpirun ... cohort run: cohort-<job>.<step>.<task>.ndjson) merge into one report,\n"
	        "every worker named by its rank in the job and its task; a task of the step with\n"
	        "no recording, and a task recorded twice, are said. A recording cut short (its\n"
	        "supervisor was killed) still gives a report, which says so.\n"
	        "\n"
	        "Options:\n"
	        "      --job ID     read the recordings of job ID in DIR (default: the working\n"
	        "                   directory): cohort-ID.ndjson and cohort-ID.*.ndjson\n"
	        "      --step S     with --job, only those of step S\n"
	        "      --spool DIR  with --job, the recordings spank_cohort.so wrote for the job\n"
	        "                   in DIR/ID/<step>.<task>.<host>.ndjson (default: $COHORT_SPOOL,\n"
	        "                   else " COHORT_SPOOL_DEFAULT " when the directory has none), one\n"
	        "                   report per step, every node's tasks merged\n"
	        "      --force      merge recordings of different jobs or steps anyway\n"
	        "      --json       print one JSON object: job, recordings, workers, diagnosis\n"
	        "      --html OUT   also write a self-contained HTML page with plots to OUT\n"
	        "                   (with --job and several steps, a page per step:\n"
	        "                   OUT.html gives OUT.batch.html, OUT.0.html ...)\n"
	        "  -h, --help       show this help\n"
	        "\n"
	        "Exit status: 0 report made, 2 bad usage, 3 a file is not a readable recording,\n"
	        "or the recordings are of different jobs or steps (without --force), or --job\n"
	        "found none.\n");
}

static long grank(const struct cohort_recording *r, const struct cohort_rec_worker *w)
{
	return r->task.rank_offset + w->rank;
}

/* Tasks are named when the job has several: a step of one task is just its workers. */
static bool any_task(const struct cohort_job *j)
{
	for (size_t i = 0; i < j->nrecs; i++)
		if (j->recs[i]->task.known && (j->recs[i]->task.ntasks > 1 || j->nrecs > 1))
			return true;
	return false;
}

static void text(const struct cohort_job *j, const struct cohort_finding *f, size_t nf)
{
	char a[32], b[32], c[32], st[96], pidb[16];
	bool tasks = any_task(j), hosts = false;
	uint64_t rss = 0, pss = 0, uss = 0;
	unsigned ok = 0;

	if (tasks) {
		printf("job %s%s%s: %zu recording%s, %u worker%s", j->job, j->step[0] ? " step " : "", j->step,
		       j->nrecs, j->nrecs == 1 ? "" : "s", j->nworkers, j->nworkers == 1 ? "" : "s");
		if (j->ntasks > 0)
			printf("; the step has %ld task%s", j->ntasks, j->ntasks == 1 ? "" : "s");
		printf("\n");
	}
	for (size_t i = 0; i < j->nproblems; i++)
		printf("  %s\n", j->problems[i].message);
	if (tasks || j->nproblems)
		printf("\n");
	for (size_t i = 0; i < j->nrecs; i++) {
		const struct cohort_recording *r = j->recs[i];
		char task[96] = "", node[96] = "";

		if (r->task.known && r->task.ntasks > 0)
			snprintf(task, sizeof(task), ", task %ld of %ld", r->task.id, r->task.ntasks);
		else if (r->task.known)
			snprintf(task, sizeof(task), ", task %ld", r->task.id);
		/* Several SLURM nodes on one host (multiple-slurmd) or a node named apart from its host. */
		if (r->task.known && r->task.node[0] && strcmp(r->task.node, r->host) != 0)
			snprintf(node, sizeof(node), " (node %s)", r->task.node);
		printf("%s: %u worker%s of '%s' on %s%s, job %s%s\n", r->path, r->nworkers,
		       r->nworkers == 1 ? "" : "s", r->command, r->host, node, r->job, task);
		printf("  memory limit %s (%s), budget %s, each worker %s, enforce %s; %.1f s%s\n",
		       cohort_size_format(r->mem_limit, a, sizeof(a)), r->mem_limit_source,
		       cohort_size_format(r->budget, b, sizeof(b)),
		       cohort_size_format(r->mem_per_worker, c, sizeof(c)), r->enforce, r->duration,
		       r->ended ? "" : ", recording cut short (the supervisor was killed)");
		if (r->bad_lines)
			printf("  %zu unreadable line%s skipped\n", r->bad_lines, r->bad_lines == 1 ? "" : "s");
		hosts |= strcmp(r->host, j->recs[0]->host) != 0;
	}
	/* One table of every worker of the job. */
	printf("\n  %-5s ", "rank");
	if (tasks)
		printf("%-5s %-12s ", "task", "node");
	else if (j->nrecs > 1)
		printf("%-12s ", "host");
	printf("%-8s %-36s %-11s %-11s %-11s\n", "pid", "end", "peak RSS", "peak PSS", "peak USS");
	for (size_t i = 0; i < j->nrecs; i++) {
		const struct cohort_recording *r = j->recs[i];

		for (unsigned k = 0; k < r->nworkers; k++) {
			const struct cohort_rec_worker *w = &r->workers[k];

			cli_worker_status(r, w, st, sizeof(st));
			printf("  %-5ld ", grank(r, w));
			if (tasks && r->task.known)
				printf("%-5ld %-12s ", r->task.id, r->task.node);
			else if (tasks)
				printf("%-5s %-12s ", "-", r->host);
			else if (j->nrecs > 1)
				printf("%-12s ", r->host);
			/* A worker never started has no pid: "-", not 0. */
			if (w->pid > 0)
				snprintf(pidb, sizeof(pidb), "%d", (int)w->pid);
			else
				snprintf(pidb, sizeof(pidb), "-");
			printf("%-8s %-36s %-11s %-11s %-11s\n", pidb, st,
			       cohort_size_format(w->peak_rss, a, sizeof(a)),
			       cohort_size_format(w->peak_pss, b, sizeof(b)),
			       cohort_size_format(w->peak_uss, c, sizeof(c)));
			ok += w->ended && !w->signal && w->exit_code == 0;
			rss += w->peak_rss;
			pss += w->peak_pss;
			uss += w->peak_uss;
		}
	}
	if (j->nworkers > 1)
		printf("  total: %u workers, %u exited 0; the peaks added up (not at one moment): RSS %s, "
		       "PSS %s, USS %s\n", j->nworkers, ok, cohort_size_format(rss, a, sizeof(a)),
		       cohort_size_format(pss, b, sizeof(b)), cohort_size_format(uss, c, sizeof(c)));
	printf("\n");
	cli_print_findings(stdout, f, nf, hosts, tasks);
}

static const char *problem_name(enum cohort_merge_problem_kind k)
{
	switch (k) {
	case COHORT_MERGE_MISSING:    return "missing";
	case COHORT_MERGE_DUPLICATE:  return "duplicate";
	case COHORT_MERGE_MIXED:      return "mixed";
	case COHORT_MERGE_RENUMBERED: return "renumbered";
	case COHORT_MERGE_CUT:        return "cut";
	}
	return "other";
}

static json_t *long_or_null(long v)
{
	return v < 0 ? json_null() : json_integer(v);
}

static int json(const struct cohort_job *jb, const struct cohort_finding *f, size_t nf)
{
	json_t *root = json_object(), *rs = json_array(), *ws = json_array(), *job = json_object();
	json_t *ps = json_array();

	json_object_set_new(job, "job", json_string(jb->job));
	json_object_set_new(job, "step", jb->step[0] ? json_string(jb->step) : json_null());
	json_object_set_new(job, "ntasks", long_or_null(jb->ntasks));
	json_object_set_new(job, "recordings", json_integer((json_int_t)jb->nrecs));
	json_object_set_new(job, "workers", json_integer(jb->nworkers));
	for (size_t i = 0; i < jb->nproblems; i++) {
		json_t *p = json_object();

		json_object_set_new(p, "kind", json_string(problem_name(jb->problems[i].kind)));
		json_object_set_new(p, "task", long_or_null(jb->problems[i].task));
		json_object_set_new(p, "message", json_string(jb->problems[i].message));
		json_array_append_new(ps, p);
	}
	json_object_set_new(job, "problems", ps);
	for (size_t i = 0; i < jb->nrecs; i++) {
		const struct cohort_recording *r = jb->recs[i];
		json_t *o = json_object();

		json_object_set_new(o, "path", json_string(r->path));
		json_object_set_new(o, "host", json_string(r->host));
		json_object_set_new(o, "job", json_string(r->job));
		json_object_set_new(o, "task", r->task.known ? json_integer(r->task.id) : json_null());
		json_object_set_new(o, "ntasks", long_or_null(r->task.ntasks));
		json_object_set_new(o, "node", json_string(r->task.node));
		json_object_set_new(o, "rank_offset", json_integer(r->task.rank_offset));
		json_object_set_new(o, "command", json_string(r->command));
		json_object_set_new(o, "workers", json_integer(r->nworkers));
		json_object_set_new(o, "mem_limit_bytes", cli_json_size(r->mem_limit));
		json_object_set_new(o, "budget_bytes", cli_json_size(r->budget));
		json_object_set_new(o, "mem_per_worker_bytes", cli_json_size(r->mem_per_worker));
		json_object_set_new(o, "enforce", json_string(r->enforce));
		json_object_set_new(o, "duration_s", json_real(r->duration));
		json_object_set_new(o, "cut", json_boolean(!r->ended));
		json_object_set_new(o, "bad_lines", json_integer((json_int_t)r->bad_lines));
		json_object_set_new(o, "exit_status", r->ended ? json_integer(r->exit_status) : json_null());
		json_array_append_new(rs, o);
		for (unsigned k = 0; k < r->nworkers; k++) {
			const struct cohort_rec_worker *w = &r->workers[k];
			json_t *j = json_object();

			json_object_set_new(j, "host", json_string(r->host));
			json_object_set_new(j, "node", json_string(r->task.node[0] ? r->task.node : r->host));
			json_object_set_new(j, "rank", json_integer(grank(r, w)));
			json_object_set_new(j, "task", r->task.known ? json_integer(r->task.id) : json_null());
			json_object_set_new(j, "local_rank", json_integer(w->rank));
			json_object_set_new(j, "recording", json_string(r->path));
			json_object_set_new(j, "pid", json_integer(w->pid));
			json_object_set_new(j, "ended", json_boolean(w->ended));
			json_object_set_new(j, "exit_code", w->ended && !w->signal ? json_integer(w->exit_code) : json_null());
			json_object_set_new(j, "signal", w->signal ? json_integer(w->signal) : json_null());
			json_object_set_new(j, "stopped_by_cohort", json_boolean(w->stopped_by_cohort));
			json_object_set_new(j, "peak_rss_bytes", cli_json_size(w->peak_rss));
			json_object_set_new(j, "peak_pss_bytes", cli_json_size(w->peak_pss));
			json_object_set_new(j, "peak_uss_bytes", cli_json_size(w->peak_uss));
			json_object_set_new(j, "cow_copied_bytes", cli_json_size(w->cow_copied));
			json_array_append_new(ws, j);
		}
	}
	json_object_set_new(root, "job", job);
	json_object_set_new(root, "recordings", rs);
	json_object_set_new(root, "workers", ws);
	json_object_set_new(root, "diagnosis", cli_json_findings(f, nf));
	return cli_json_print(root) < 0 ? CLI_ERROR : CLI_OK;
}

struct names {
	char **v;
	size_t n, cap;
};

static int add_name(struct names *l, const char *dir, const char *name)
{
	char *p;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	if (strcmp(dir, ".") == 0)
		p = strdup(name);
	else if (asprintf(&p, "%s/%s", dir, name) < 0)
		p = NULL;
	if (!p)
		return -ENOMEM;
	l->v[l->n++] = p;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The recordings of a job in dir: cohort-ID.ndjson and cohort-ID.*.ndjson
 * (of step S: cohort-ID.S.ndjson and cohort-ID.S.*.ndjson). Only regular
 * files: a FIFO or a device with such a name is skipped and said, never
 * opened (reading it could block).
 */
static int find_job(const char *dir, const char *id, const char *step, struct names *ret)
{
	char prefix[256], exact[256];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d) {
		cli_error("cannot read the directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (step)
		snprintf(prefix, sizeof(prefix), "cohort-%s.%s.", id, step);
	else
		snprintf(prefix, sizeof(prefix), "cohort-%s.", id);
	snprintf(exact, sizeof(exact), "%sndjson", prefix);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		struct stat st;

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || len < 7 ||
		    strcmp(de->d_name + len - 7, ".ndjson") != 0) {
			if (strcmp(de->d_name, exact) != 0)
				continue;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISREG(st.st_mode)) {
			fprintf(stderr, "cohort: skipping %s/%s: not a regular file\n", dir, de->d_name);
			continue;
		}
		if (add_name(ret, dir, de->d_name) < 0) {
			closedir(d);
			cli_error("out of memory");
			return -1;
		}
	}
	closedir(d);
	if (ret->n)
		qsort(ret->v, ret->n, sizeof(*ret->v), by_name);
	return 0;
}

/*
 * The recordings spank_cohort.so wrote for job id: spool/ID/<step>.*.ndjson,
 * regular files only, sorted, so that one step's follow each other.
 */
static int find_spool(const char *spool, const char *id, const char *step, struct names *ret)
{
	char dir[COHORT_PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", spool, id);
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : (cli_error("cannot read the directory %s: %s", dir, strerror(errno)), -1);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name), sl = step ? strlen(step) : 0;
		struct stat st;

		if (len < 8 || strcmp(de->d_name + len - 7, ".ndjson") != 0 || de->d_name[0] == '.')
			continue;
		if (step && (strncmp(de->d_name, step, sl) != 0 || de->d_name[sl] != '.'))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (add_name(ret, dir, de->d_name) < 0) {
			closedir(d);
			cli_error("out of memory");
			return -1;
		}
	}
	closedir(d);
	if (ret->n)
		qsort(ret->v, ret->n, sizeof(*ret->v), by_name);
	return 0;
}

/* A spool file's step: its name up to the first dot. */
static size_t step_len(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	return (size_t)(strcspn(b, ".") + (size_t)(b - path));
}

static bool same_step(const char *a, const char *b)
{
	size_t l = step_len(a);

	return step_len(b) == l && strncmp(a, b, l) == 0;
}

/* OUT's name with the step of the recording at path before its extension. */
static int step_page(const char *html, const char *path, char *buf, size_t size)
{
	const char *b = strrchr(path, '/'), *slash = strrchr(html, '/'), *dot = strrchr(html, '.');
	size_t stem;
	int n;

	b = b ? b + 1 : path;
	stem = dot && (!slash || dot > slash) ? (size_t)(dot - html) : strlen(html);
	n = snprintf(buf, size, "%.*s.%.*s%s", (int)stem, html, (int)strcspn(b, "."), b, html + stem);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int report(char **names, size_t nnames, const char *html, bool as_json, bool force);

static int cmd_report_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "html", required_argument, NULL, 'H' },
		{ "job", required_argument, NULL, 'J' },
		{ "step", required_argument, NULL, 'S' },
		{ "force", no_argument, NULL, 'F' },
		{ "spool", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct names files = { 0 };
	const char *html = NULL, *job_id = NULL, *step = NULL, *spool = NULL;
	bool as_json = false, force = false, from_spool = false;
	int c, rc = CLI_OK;
	size_t nsteps;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			as_json = true;
			break;
		case 'H':
			html = optarg;
			break;
		case 'J':
			job_id = optarg;
			break;
		case 'S':
			step = optarg;
			break;
		case 'F':
			force = true;
			break;
		case 'P':
			spool = optarg;
			break;
		case 'h':
			help(stdout);
			return CLI_OK;
		case ':':
			return cli_usage_error(&cli_cmd_report, "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error(&cli_cmd_report, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (step && !job_id)
		return cli_usage_error(&cli_cmd_report, "--step needs --job");
	if (spool && !job_id)
		return cli_usage_error(&cli_cmd_report, "--spool needs --job");
	if (spool && optind < argc)
		return cli_usage_error(&cli_cmd_report, "--spool and a directory: give one of them");
	if (job_id) {
		if (!*job_id || strchr(job_id, '/') || (step && (!*step || strchr(step, '/'))))
			return cli_usage_error(&cli_cmd_report, "invalid --job '%s' or --step: a job id such as 123",
			                       job_id);
		if (argc - optind > 1)
			return cli_usage_error(&cli_cmd_report, "--job takes one directory, not %d",
			                       argc - optind);
		if (!spool && find_job(optind < argc ? argv[optind] : ".", job_id, step, &files) < 0) {
			rc = CLI_ERROR;
			goto out;
		}
		/* Nothing of cohort run's here: what the SLURM plugin recorded. */
		if (!files.n && optind >= argc) {
			const char *sp = spool ? spool : getenv("COHORT_SPOOL");

			if (find_spool(sp && *sp ? sp : COHORT_SPOOL_DEFAULT, job_id, step, &files) < 0) {
				rc = CLI_ERROR;
				goto out;
			}
			from_spool = files.n > 0;
		}
		if (!files.n) {
			const char *sp = spool ? spool : getenv("COHORT_SPOOL");
			const char *dir = optind < argc ? argv[optind] : ".";
			char run_names[512] = "", spool_part[COHORT_PATH_MAX + 256] = "", sdir[COHORT_PATH_MAX];
			struct stat st;

			if (!sp || !*sp)
				sp = COHORT_SPOOL_DEFAULT;
			/* Where each writer puts a job's recordings: the names looked for in each place. */
			if (!spool) {
				if (step)
					snprintf(run_names, sizeof(run_names), "%s (cohort run's cohort-%s.%s.<task>.ndjson)",
					         dir, job_id, step);
				else
					snprintf(run_names, sizeof(run_names), "%s (cohort run's cohort-%s.ndjson or "
					         "cohort-%s.<step>.<task>.ndjson)", dir, job_id, job_id);
			}
			if (optind >= argc) {
				snprintf(sdir, sizeof(sdir), "%s/%s", sp, job_id);
				bool no_spool = stat(sp, &st) != 0;

				snprintf(spool_part, sizeof(spool_part), "%sthe SLURM plugin's spool %s (%s.<task>.<host>.ndjson)%s%s%s",
				         spool ? "" : " and ", sdir, step ? step : "<step>",
				         no_spool ? ", but the spool directory " : stat(sdir, &st) != 0 ? ", which does not exist" : "",
				         no_spool ? sp : "", no_spool ? " does not exist" : "");
			}
			cli_error("no recording of job %s%s%s: searched %s%s", job_id, step ? " step " : "",
			          step ? step : "", run_names, spool_part);
			rc = CLI_ERROR;
			goto out;
		}
	} else {
		if (optind >= argc)
			return cli_usage_error(&cli_cmd_report, "no recording given: cohort report FILE... "
			                       "(cohort run writes cohort-<job>.ndjson), or --job ID");
		for (int i = optind; i < argc; i++)
			if (add_name(&files, ".", argv[i]) < 0) {
				rc = CLI_ERROR;
				goto out;
			}
	}
	if (!from_spool) {
		rc = report(files.v, files.n, html, as_json, force);
		goto out;
	}
	/*
	 * The spool: one report per step, each of every node's tasks. With
	 * several steps, --html OUT gives a page per step: OUT's name with the
	 * step before its extension (job.html: job.batch.html, job.0.html).
	 */
	nsteps = 0;
	for (size_t i = 0, k; i < files.n; i = k, nsteps++)
		for (k = i + 1; k < files.n && same_step(files.v[k], files.v[i]); k++)
			;
	for (size_t i = 0, k; i < files.n; i = k) {
		char page[COHORT_PATH_MAX];
		const char *out = html;
		int r;

		for (k = i + 1; k < files.n && same_step(files.v[k], files.v[i]); k++)
			;
		if (i > 0 && !as_json)
			printf("\n");
		if (html && nsteps > 1) {
			if (step_page(html, files.v[i], page, sizeof(page)) < 0) {
				cli_error("--html %s: the page name of a step is too long", html);
				rc = CLI_ERROR;
				goto out;
			}
			out = page;
		}
		r = report(files.v + i, k - i, out, as_json, force);
		if (r != CLI_OK)
			rc = r;
	}
out:
	for (size_t i = 0; i < files.n; i++)
		free(files.v[i]);
	free(files.v);
	return rc;
}

static int report(char **names, size_t nnames, const char *html, bool as_json, bool force)
{
	struct cohort_recording **recs = NULL;
	struct cohort_finding *f = NULL;
	struct cohort_job *job = NULL;
	char err[COHORT_MSG_MAX];
	size_t n = 0, nf = 0;
	int r, rc = CLI_OK;

	recs = calloc(nnames, sizeof(*recs));
	if (!recs) {
		rc = CLI_ERROR;
		goto out;
	}
	for (size_t i = 0; i < nnames; i++) {
		r = cohort_recording_load(names[i], &recs[n], err, sizeof(err));
		if (r < 0) {
			cli_error("%s", err);
			rc = CLI_ERROR;
			goto out;
		}
		n++;
	}
	r = cohort_job_merge(recs, n, force ? COHORT_MERGE_FORCE : 0, &job, err, sizeof(err));
	if (r < 0) {
		if (r == COHORT_EMIXEDJOB)
			cli_error("%s (give one job's recordings, --job ID --step S, or --force to merge them anyway)", err);
		else
			cli_error("%s", err[0] ? err : cohort_strerror(r));
		rc = CLI_ERROR;
		goto out;
	}
	/* After the merge: the findings name workers by their rank in the job. */
	if (cohort_diagnose(job->recs, job->nrecs, &f, &nf) < 0) {
		cli_error("out of memory diagnosing %zu recordings", n);
		rc = CLI_ERROR;
		goto out;
	}
	if (html) {
		FILE *out = fopen(html, "we");

		if (!out || cli_write_html(out, job->recs, job->nrecs, f, nf) < 0 || fclose(out) != 0) {
			cli_error("cannot write %s: %s", html, strerror(errno));
			rc = CLI_ERROR;
			goto out;
		}
	}
	if (as_json)
		rc = json(job, f, nf);
	else
		text(job, f, nf);
	if (html && !as_json)
		printf("\nHTML report: %s\n", html);
out:
	cohort_job_free(job);
	for (size_t i = 0; i < n; i++)
		cohort_recording_free(recs[i]);
	free(recs);
	cohort_findings_free(f);
	return rc;
}

const struct cli_cmd cli_cmd_report = {
	.name = "report",
	.usage = "[--json] [--html OUT] [--force] FILE... | --job ID [--step S] [DIR]",
	.summary = "why did the job die? findings from cohort run's recordings",
	.exec = cmd_report_exec,
	.help = help,
};
