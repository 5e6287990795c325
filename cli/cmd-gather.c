/*
 * cmd-gather.c - `cohort gather`: once every rank of a job has published
 * its part PATH.rank-K, join the parts in rank order into PATH, published
 * atomically. Exit 0 gathered, 1 parts still missing, 2 bad usage, 3 error.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *out)
{
	fprintf(out,
	        "Usage: cohort gather [--ranks N] [--timeout SECONDS] [--remove] [--no-sync]\n"
	        "                     [--json] PATH\n"
	        "\n"
	        "Join the parts PATH.rank-0, PATH.rank-1, ... that the ranks of a job\n"
	        "published (with cohort_rank_publish) into PATH, in rank order. PATH is\n"
	        "published atomically: it does not exist until it holds every part whole.\n"
	        "Temporary files that killed writers left beside PATH are removed.\n"
	        "\n"
	        "Options:\n"
	        "  -n, --ranks N          number of ranks (default: SLURM_NTASKS)\n"
	        "  -t, --timeout SECONDS  wait this long for missing parts (default 0: do\n"
	        "                         not wait); fractions allowed\n"
	        "  -r, --remove           remove the parts once PATH is published\n"
	        "      --no-sync          do not flush PATH to disk (still atomic)\n"
	        "      --json             print one JSON object instead of text\n"
	        "  -h, --help             show this help\n"
	        "\n"
	        "Exit status: 0 gathered, 1 parts still missing after the timeout, 2 bad\n"
	        "usage, 3 a part could not be read or PATH could not be published.\n");
}

static int parse_seconds(const char *text, unsigned *ret_ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v) || v < 0 || v > 86400) {
		cli_error("invalid time '%s' for --timeout: expected seconds from 0 to 86400, such as 30 or 0.5",
		          text);
		return -1;
	}
	*ret_ms = (unsigned)(v * 1000 + 0.5);
	return 0;
}

static int cmd_gather_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ranks", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "remove", no_argument, NULL, 'r' },
		{ "no-sync", no_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char error[COHORT_MSG_MAX] = "", dir[COHORT_PATH_MAX], size[32];
	struct cohort_gather_opts g = { .publish = { .why = error, .why_size = sizeof(error) } };
	unsigned ranks = 0, cleaned = 0;
	const char *path, *slash;
	uint64_t bytes = 0;
	int c, json = 0, r, status;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":n:t:rh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (cli_parse_count("--ranks", optarg, 1u << 20, &ranks) < 0)
				return CLI_USAGE;
			break;
		case 't':
			if (parse_seconds(optarg, &g.timeout_ms) < 0)
				return CLI_USAGE;
			break;
		case 'r':
			g.remove_parts = 1;
			break;
		case 'S':
			g.publish.flags |= COHORT_PUBLISH_NOSYNC;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			help(stdout);
			return CLI_OK;
		case ':':
			return cli_usage_error(&cli_cmd_gather, "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error(&cli_cmd_gather, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(&cli_cmd_gather, optind >= argc ? "no PATH to gather into" :
		                       "one PATH only; the parts are found as PATH.rank-K");
	path = argv[optind];
	if (ranks == 0) {
		const char *nt = getenv("SLURM_NTASKS");

		if (!nt)
			return cli_usage_error(&cli_cmd_gather, "how many ranks? give --ranks N "
			                       "(SLURM_NTASKS is not set)");
		if (cli_parse_count("SLURM_NTASKS", nt, 1u << 20, &ranks) < 0)
			return CLI_USAGE;
	}

	r = cohort_rank_gather(path, ranks, &g, &bytes);
	status = r == 0 ? CLI_OK : r == COHORT_ETIMEDOUT ? CLI_FAIL : CLI_ERROR;
	if (r == 0) {
		slash = strrchr(path, '/');
		if (!slash)
			snprintf(dir, sizeof(dir), ".");
		else
			snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
		(void)cohort_publish_clean(dir, &cleaned);
	}
	if (json) {
		json_t *o = json_object();

		json_object_set_new(o, "path", json_string(path));
		json_object_set_new(o, "ranks", json_integer(ranks));
		json_object_set_new(o, "gathered", json_boolean(r == 0));
		json_object_set_new(o, "bytes", r == 0 ? cli_json_size(bytes) : json_null());
		json_object_set_new(o, "parts_removed", json_boolean(r == 0 && g.remove_parts));
		json_object_set_new(o, "temporaries_removed", json_integer(cleaned));
		json_object_set_new(o, "error", r == 0 ? json_null() : json_string(error));
		return cli_json_print(o) < 0 ? CLI_ERROR : status;
	}
	if (r < 0) {
		cli_error("%s", error[0] ? error : cohort_strerror(r));
		return status;
	}
	printf("gathered %u part%s into %s (%s)%s\n", ranks, ranks == 1 ? "" : "s", path,
	       cohort_size_format(bytes, size, sizeof(size)),
	       g.remove_parts ? "; parts removed" : "");
	if (cleaned)
		printf("removed %u temporary file%s left by killed writers\n", cleaned,
		       cleaned == 1 ? "" : "s");
	return CLI_OK;
}

const struct cli_cmd cli_cmd_gather = {
	.name = "gather",
	.usage = "[--ranks N] [--timeout SECONDS] [--remove] [--no-sync] [--json] PATH",
	.summary = "join the parts PATH.rank-K of a job's ranks into PATH, atomically",
	.exec = cmd_gather_exec,
	.help = help,
};
