/* supervise.h - the supervisor behind `cohort run`. */
#ifndef COHORT_SUPERVISE_H
#define COHORT_SUPERVISE_H

#include "cli.h"

#include <stdbool.h>

enum enforce { ENFORCE_AUTO, ENFORCE_CGROUP, ENFORCE_RLIMIT, ENFORCE_WATCH, ENFORCE_NONE };

const char *enforce_name(enum enforce e);

struct run_opts {
	unsigned workers;
	char **argv;                  /* the command, NULL-terminated */
	uint64_t budget;              /* all workers together, bytes */
	uint64_t mem_per_worker;      /* each worker's hard limit, bytes */
	enum enforce enforce;         /* AUTO: cgroup when cohort may make them, else watch */
	double soft;                  /* warning threshold, fraction of a limit */
	double interval;              /* seconds between samples */
	double pss_budget;            /* fraction of a core for smaps_rollup reads */
	double grace;                 /* seconds from SIGTERM to SIGKILL */
	bool label;                   /* prefix output lines with the rank */
	bool kill_on_bad_exit;        /* stop everyone when a worker fails */
	bool quiet;                   /* no live warnings, no summary */
	const char *record;           /* recording path, or NULL */
	const char *job;              /* COHORT_JOB for the workers */
	struct cohort_probe probe;
	struct cohort_alloc alloc;
	uint64_t margin;              /* what the default budget leaves to the supervisor and page cache */
	const char *budget_source;    /* "--budget", or how it was derived */
	const char *catch_lib;        /* the preload shim for fatal signals, or NULL */
	const char *catch_off;        /* why it is off, when catch_lib is NULL */
	const char *jobacct;          /* SLURM's JobAcctGatherType, or NULL */
	const char *jobacct_params;   /* SLURM's JobAcctGatherParams, or NULL */
	struct cohort_slurm_config slurm_config; /* `scontrol show config`, when have_slurm_config */
	int have_slurm_config;
	struct cohort_task task;      /* which task of the job this supervisor is */
	struct cohort_recorder *rec;  /* the recording, opened once; supervise() owns it; NULL: open record */
	const char *metrics;          /* --metrics FILE (checked writable before launch), or NULL */
};

/* --metrics FILE: the Prometheus textfile (cli/run-metrics.c). */
struct run_metrics {
	const char *path;             /* NULL: no metrics */
	double period, next;          /* seconds between writes; when the next is due (watcher clock) */
	char jobid[COHORT_ID_MAX], step[COHORT_ID_MAX], task[32], host[COHORT_ID_MAX];
	long rank_offset;
	uint64_t events[COHORT_EVENT_KIND_MAX];
	bool said;                    /* a failure was said; said again only after a success */
	char error[COHORT_MSG_MAX];   /* the last failure: what failed, and the fix */
};

void run_metrics_init(struct run_metrics *m, const struct run_opts *o);
void run_metrics_count(struct run_metrics *m, const struct cohort_event *ev);

/*
 * Publish the file when a write is due (every few seconds) or final is
 * set. Returns 1 when a write failed and the caller should say so (the
 * first failure after a success; m->error says what failed), else 0.
 */
int run_metrics_write(struct run_metrics *m, const struct cohort_watch *w, bool final);

/*
 * Run the workers to the end. Returns the exit status for the cohort
 * command: 0 when every worker exited 0, else the first failing worker's
 * code or 128+signal; 127 when the command could not be started; 3 when
 * the supervisor itself could not set up.
 */
int supervise(const struct run_opts *opts);

/*
 * A crash frame as backtrace_symbols writes it, made readable with
 * addr2line when binutils are there: "func at file.c:42 (path+0x12f4)".
 * Left as it was otherwise.
 */
void cli_symbolize(const char *frame, char *out, size_t size);

#endif
