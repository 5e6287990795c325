/* json.h - JSON pieces of libcohort (jansson), for the recording and the CLI. */
#ifndef COHORT_JSON_H
#define COHORT_JSON_H

#include "cohort.h"

#include <jansson.h>

/* A size, clamped to 2^63 - 1 (JSON integers are signed). */
json_t *cohort__json_size(uint64_t v);

/* The allocation as `cohort check --json` prints it and the recording's header holds it. */
json_t *cohort__json_alloc(const struct cohort_alloc *a);

#endif
