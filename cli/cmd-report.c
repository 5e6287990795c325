/*
 * cmd-report.c - `cohort report`: why did the job die, from one recording
 * or several (one per node or task), as text, JSON or an HTML page.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

static void help(FILE *out)
{
	fprintf(out,
	        "Usage: cohort report [--json] [--html OUT] FILE...\n"
	        "\n"
	        "Read the recordings of cohort run (one per node or task of a job: they merge\n"
	        "into one report) and say what happened: the allocation, each worker's end and\n"
	        "peak memory, and the findings, most important first, each with its figures\n"
	        "and a fix. A recording cut short (its supervisor was killed) still gives a\n"
	        "report, which says so.\n"
	        "\n"
	        "Options:\n"
	        "      --json       print one JSON object: recordings, workers, diagnosis\n"
	        "      --html OUT   also write a self-contained HTML page with plots to OUT\n"
	        "  -h, --help       show this help\n"
	        "\n"
	        "Exit status: 0 report made, 2 bad usage, 3 a file is not a readable recording.\n");
}

static void text(struct cohort_recording *const *recs, size_t n, const struct cohort_finding *f, size_t nf)
{
	char a[32], b[32], c[32], st[96];

	for (size_t i = 0; i < n; i++) {
		const struct cohort_recording *r = recs[i];

		printf("%s: %u worker%s of '%s' on %s, job %s\n", r->path, r->nworkers,
		       r->nworkers == 1 ? "" : "s", r->command, r->host, r->job);
		printf("  memory limit %s (%s), budget %s, each worker %s, enforce %s; %.1f s%s\n",
		       cohort_size_format(r->mem_limit, a, sizeof(a)), r->mem_limit_source,
		       cohort_size_format(r->budget, b, sizeof(b)),
		       cohort_size_format(r->mem_per_worker, c, sizeof(c)), r->enforce, r->duration,
		       r->ended ? "" : ", recording cut short (the supervisor was killed)");
		if (r->bad_lines)
			printf("  %zu unreadable line%s skipped\n", r->bad_lines, r->bad_lines == 1 ? "" : "s");
		printf("  %-5s %-8s %-36s %-11s %-11s %-11s\n", "rank", "pid", "end", "peak RSS", "peak PSS",
		       "peak USS");
		for (unsigned k = 0; k < r->nworkers; k++) {
			const struct cohort_rec_worker *w = &r->workers[k];

			cli_worker_status(r, w, st, sizeof(st));
			printf("  %-5d %-8d %-36s %-11s %-11s %-11s\n", w->rank, (int)w->pid, st,
			       cohort_size_format(w->peak_rss, a, sizeof(a)),
			       cohort_size_format(w->peak_pss, b, sizeof(b)),
			       cohort_size_format(w->peak_uss, c, sizeof(c)));
		}
		printf("\n");
	}
	bool hosts = false;

	for (size_t i = 1; i < n; i++)
		hosts |= strcmp(recs[i]->host, recs[0]->host) != 0;
	cli_print_findings(stdout, f, nf, hosts);
}

static int json(struct cohort_recording *const *recs, size_t n, const struct cohort_finding *f, size_t nf)
{
	json_t *root = json_object(), *rs = json_array(), *ws = json_array();

	for (size_t i = 0; i < n; i++) {
		const struct cohort_recording *r = recs[i];
		json_t *o = json_object();

		json_object_set_new(o, "path", json_string(r->path));
		json_object_set_new(o, "host", json_string(r->host));
		json_object_set_new(o, "job", json_string(r->job));
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
			json_object_set_new(j, "rank", json_integer(w->rank));
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
	json_object_set_new(root, "recordings", rs);
	json_object_set_new(root, "workers", ws);
	json_object_set_new(root, "diagnosis", cli_json_findings(f, nf));
	return cli_json_print(root) < 0 ? CLI_ERROR : CLI_OK;
}

static int exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "html", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct cohort_recording **recs;
	struct cohort_finding *f = NULL;
	const char *html = NULL;
	bool as_json = false;
	size_t n = 0, nf = 0;
	int c, rc = CLI_OK;

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
		case 'h':
			help(stdout);
			return CLI_OK;
		case ':':
			return cli_usage_error(&cli_cmd_report, "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error(&cli_cmd_report, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_error(&cli_cmd_report, "no recording given: cohort report FILE... "
		                       "(cohort run writes cohort-<job>.ndjson)");
	recs = calloc((size_t)(argc - optind), sizeof(*recs));
	if (!recs)
		return CLI_ERROR;
	for (int i = optind; i < argc; i++) {
		char err[COHORT_MSG_MAX];
		int r = cohort_recording_load(argv[i], &recs[n], err, sizeof(err));

		if (r < 0) {
			cli_error("%s", err);
			rc = CLI_ERROR;
			goto out;
		}
		n++;
	}
	if (cohort_diagnose(recs, n, &f, &nf) < 0) {
		cli_error("out of memory diagnosing %zu recordings", n);
		rc = CLI_ERROR;
		goto out;
	}
	if (html) {
		FILE *out = fopen(html, "we");

		if (!out || cli_write_html(out, recs, n, f, nf) < 0 || fclose(out) != 0) {
			cli_error("cannot write %s: %s", html, strerror(errno));
			rc = CLI_ERROR;
			goto out;
		}
	}
	if (as_json)
		rc = json(recs, n, f, nf);
	else
		text(recs, n, f, nf);
	if (html && !as_json)
		printf("\nHTML report: %s\n", html);
out:
	for (size_t i = 0; i < n; i++)
		cohort_recording_free(recs[i]);
	free(recs);
	free(f);
	return rc;
}

const struct cli_cmd cli_cmd_report = {
	.name = "report",
	.usage = "[--json] [--html OUT] FILE...",
	.summary = "why did the job die? findings from cohort run's recordings",
	.exec = exec,
	.help = help,
};
