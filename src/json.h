/* json.h - JSON pieces of libcohort (jansson), for the recording and the CLI. */
#ifndef COHORT_JSON_H
#define COHORT_JSON_H

#include "cohort.h"

#include <jansson.h>

/* A size, clamped to 2^63 - 1 (JSON integers are signed). */
json_t *cohort__json_size(uint64_t v);

/* The allocation as `cohort check --json` prints it and the recording's header holds it. */
json_t *cohort__json_alloc(const struct cohort_alloc *a);

/* A task as the header's "task" object, or null when t is NULL or not known. */
json_t *cohort__json_task(const struct cohort_task *t);

/*
 * Fill r->task from a header (its "task", else, for a recording made
 * before "task" was written, its SLURM ids). r->nworkers and r->host must
 * be read already.
 */
void cohort__rec_read_task(struct cohort_recording *r, json_t *header);

#endif
