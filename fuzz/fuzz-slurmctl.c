/*
 * fuzz-slurmctl.c - scontrol's output as cohort reads it. The first byte
 * picks the parser (even: `scontrol show config`, odd: `scontrol show job
 * -o`); the rest is the text. Neither may crash, read past the text, or
 * give a success that breaks its own promises.
 */
#include "cohort.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;
	int r;

	if (size < 1 || size > 1 << 20)
		return 0;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] % 2 == 0) {
		struct cohort_slurm_config c;

		r = cohort_slurm_config_parse(text, &c);
		if (r == 0) {
			/* Strings NUL-terminated within their arrays, flags 0/1, the rule 0/1. */
			if (strnlen(c.jobacct_gather_type, sizeof(c.jobacct_gather_type)) ==
			        sizeof(c.jobacct_gather_type) ||
			    strnlen(c.jobacct_gather_params, sizeof(c.jobacct_gather_params)) ==
			        sizeof(c.jobacct_gather_params) ||
			    (unsigned)c.use_pss > 1 || (unsigned)c.no_shared > 1 ||
			    (unsigned)c.over_memory_kill > 1 || c.jobacct_gather_task_s < -1 ||
			    c.constrain_ram_space < -1 || c.constrain_ram_space > 1)
				abort();
			r = cohort_slurm_sums_rss(&c);
			if (r != 0 && r != 1)
				abort();
			if (c.use_pss && r != 0)
				abort();
		} else if (r != COHORT_EPARSE) {
			abort();
		}
	} else {
		struct cohort_slurm_job j;

		r = cohort_slurm_job_parse(text, &j);
		if (r == 0) {
			if (!j.job_id[0] || strnlen(j.job_id, sizeof(j.job_id)) == sizeof(j.job_id) ||
			    strnlen(j.job_state, sizeof(j.job_state)) == sizeof(j.job_state) ||
			    j.num_nodes < -1 || j.num_cpus < -1 || j.num_tasks < -1)
				abort();
		} else if (r != COHORT_EPARSE && r != COHORT_ESIZE_RANGE) {
			abort();
		}
	}
	free(text);
	return 0;
}
