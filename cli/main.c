/*
 * main.c - the cohort command: a table of subcommands, each in its own
 * cmd-<name>.c file.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_cmd *const commands[] = {
	&cli_cmd_check,
	&cli_cmd_top,
	&cli_cmd_shm,
	&cli_cmd_run,
	&cli_cmd_report,
	&cli_cmd_gather,
	&cli_cmd_spank_watch,   /* no summary: not listed, spank_cohort.so runs it */
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("cohort: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("cohort: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'cohort %s --help'.\n", cmd->name);
	return CLI_USAGE;
}

int cli_parse_size(const char *option, const char *text, uint64_t *ret)
{
	int r = cohort_size_parse(text, ret);

	switch (r) {
	case 0:
		return 0;
	case COHORT_ESIZE_RANGE:
		cli_error("invalid size '%s' for %s: larger than 16 EiB", text, option);
		break;
	case COHORT_ESIZE_FRACTION:
		cli_error("invalid size '%s' for %s: not a whole number of bytes", text, option);
		break;
	default:
		cli_error("invalid size '%s' for %s: expected a number with an optional K, M, G or T suffix "
		          "(a bare number is megabytes, as in srun --mem)", text, option);
		break;
	}
	return -1;
}

int cli_parse_count(const char *option, const char *text, unsigned max, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	if (text[0] < '0' || text[0] > '9')
		goto bad;
	v = strtoul(text, &end, 10);
	if (errno || *end != '\0' || v == 0 || v > max)
		goto bad;
	*ret = (unsigned)v;
	return 0;
bad:
	cli_error("invalid count '%s' for %s: expected a whole number from 1 to %u", text, option, max);
	return -1;
}

void cli_probe(struct cohort_probe *probe)
{
	memset(probe, 0, sizeof(*probe));
	probe->proc_root = getenv("COHORT_ROOT_PROC");
	probe->cgroup_root = getenv("COHORT_ROOT_CGROUP");
	probe->shm_path = getenv("COHORT_ROOT_SHM");
	probe->scontrol = getenv("COHORT_SCONTROL");
}

int cli_ask_slurm(const struct cohort_probe *probe, struct cohort_alloc *alloc)
{
	int r = cohort_alloc_ask_slurm(probe, alloc);

	if (r < 0)
		fprintf(stderr, "cohort: note: SLURM's controller did not tell job %s's memory "
		        "(scontrol -o show job %s: %s); the limit is the node's MemTotal\n",
		        alloc->slurm.job_id, alloc->slurm.job_id, cohort_strerror(r));
	return r;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: cohort COMMAND [OPTIONS]\n"
	        "\n"
	        "Run a job's worker processes as one cohort: know the allocation, measure\n"
	        "memory right, share memory safely, and say why a job died.\n"
	        "\n"
	        "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i]->summary)
			fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(out,
	        "\n"
	        "Options:\n"
	        "  -h, --help     show this help\n"
	        "  -V, --version  show the version\n"
	        "\n"
	        "'cohort COMMAND --help' describes a command; man cohort has the details.\n");
}

static const struct cli_cmd *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct cli_cmd *cmd;

	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("cohort %s\n", cohort_version());
		return CLI_OK;
	}
	if (strcmp(argv[1], "help") == 0) {
		if (argc < 3) {
			usage(stdout);
			return CLI_OK;
		}
		cmd = find(argv[2]);
		if (!cmd) {
			cli_error("no command '%s'; 'cohort --help' lists them", argv[2]);
			return CLI_USAGE;
		}
		cmd->help(stdout);
		return CLI_OK;
	}
	cmd = find(argv[1]);
	if (!cmd) {
		cli_error("no command '%s'; 'cohort --help' lists them", argv[1]);
		return CLI_USAGE;
	}
	return cmd->exec(argc - 1, argv + 1);
}
