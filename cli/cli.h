/* cli.h - what the cohort binary's commands share. */
#ifndef COHORT_CLI_H
#define COHORT_CLI_H

#include "cohort.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* Exit codes, documented in cohort(1). */
enum {
	CLI_OK = 0,
	CLI_FAIL = 1,     /* the command ran and the answer is "no" (does not fit, ...) */
	CLI_USAGE = 2,    /* bad arguments */
	CLI_ERROR = 3     /* the command could not do its job (unreadable system state, ...) */
};

struct cli_cmd {
	const char *name;
	const char *usage;    /* the arguments, after "cohort NAME " */
	const char *summary;  /* one line for `cohort --help` */
	int (*exec)(int argc, char **argv);
	void (*help)(FILE *out);
};

extern const struct cli_cmd cli_cmd_check;
extern const struct cli_cmd cli_cmd_top;
extern const struct cli_cmd cli_cmd_shm;
extern const struct cli_cmd cli_cmd_run;
extern const struct cli_cmd cli_cmd_report;
extern const struct cli_cmd cli_cmd_gather;
extern const struct cli_cmd cli_cmd_spank_watch;

/* Print "cohort: <message>\n" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Usage error: prints the message and "Try 'cohort NAME --help'.", returns CLI_USAGE. */
int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parse a size option; on error prints a message naming the option and returns -1. */
int cli_parse_size(const char *option, const char *text, uint64_t *ret);

/* Parse a positive count option (1..max). */
int cli_parse_count(const char *option, const char *text, unsigned max, unsigned *ret);

/*
 * The most workers one cohort run supervises (a process, pipes and a
 * cgroup each); cohort check plans for no more, so that what it calls
 * fitting is what cohort run can start.
 */
#define CLI_MAX_WORKERS 4096

/* The probe for this process: the real system unless COHORT_ROOT_PROC,
 * COHORT_ROOT_CGROUP or COHORT_ROOT_SHM point elsewhere (fixture replay);
 * COHORT_SCONTROL names the scontrol to run (a fake one in tests). */
void cli_probe(struct cohort_probe *probe);

/*
 * Ask SLURM's controller for the job's memory when nothing on the node
 * told it (cohort_alloc_ask_slurm()); a failure is a note on stderr, and
 * the allocation keeps MemTotal. Returns what cohort_alloc_ask_slurm() did.
 */
int cli_ask_slurm(const struct cohort_probe *probe, struct cohort_alloc *alloc);

/* JSON: a size (clamped to 2^63-1), the allocation as `cohort check --json` shows it. */
json_t *cli_json_size(uint64_t v);
json_t *cli_json_alloc(const struct cohort_alloc *a);

/* Findings, for people (numbered, with fixes; hosts: name each one's host) and as JSON. */
/* A worker's end in a few words ("exit 0", "signal 9 (Killed)", "not started"), in buf. */
const char *cli_worker_status(const struct cohort_recording *r, const struct cohort_rec_worker *w,
                              char *buf, size_t size);
void cli_print_findings(FILE *out, const struct cohort_finding *f, size_t n, bool hosts, bool tasks);
json_t *cli_json_findings(const struct cohort_finding *f, size_t n);

/* The report as one self-contained HTML page. Returns 0 or -1 on a write error. */
int cli_write_html(FILE *out, struct cohort_recording *const *recs, size_t nrecs,
                   const struct cohort_finding *f, size_t nf);

/* Print a JSON document on stdout, indented, and free it. Returns 0 or -1. */
int cli_json_print(json_t *root);

#endif
