/*
 * report-util.h - what the tests of cohort report's findings share
 * (test-report.c, test-slurm-faults.c): loading a report as JSON and
 * looking findings and their evidence up in it.
 */
#ifndef COHORT_TEST_REPORT_UTIL_H
#define COHORT_TEST_REPORT_UTIL_H

#include <jansson.h>

/* A rank for report_finding() that matches any; -1 matches job-wide findings (rank null). */
#define REPORT_ANY_RANK (-2)

/*
 * `cohort report --json FILES`, run in the test's directory (a shell glob
 * is fine): the parsed report, owned by the caller (json_decref). Fails
 * the test when the report exits non-zero or is not JSON.
 */
json_t *report_json(const char *files);

/* The first finding of kind for rank (REPORT_ANY_RANK, -1: job-wide), or NULL. */
json_t *report_finding(json_t *rep, const char *kind, int rank);

/* As report_finding(), but a missing finding fails the test and shows the diagnosis. */
json_t *report_need(json_t *rep, const char *kind, int rank);

/* How many findings of kind the report has. */
int report_count(json_t *rep, const char *kind);

/* The number a finding's evidence holds under name; fails the test when it has none. */
long long report_ev(json_t *f, const char *name);

#endif
