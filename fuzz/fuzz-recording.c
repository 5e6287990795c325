/*
 * fuzz-recording.c - the recording reader and the diagnosis over any
 * bytes: never a crash, and whatever loads can be diagnosed.
 */
#include "cohort.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct cohort_recording *rec;
	struct cohort_finding *f;
	char err[COHORT_MSG_MAX];
	size_t n;
	FILE *out;

	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/cohort-fuzz-rec-%d", (int)getpid());
	out = fopen(path, "w");
	if (!out)
		abort();
	fwrite(data, 1, size, out);
	fclose(out);
	if (cohort_recording_load(path, &rec, err, sizeof(err)) == 0) {
		if (rec->nworkers == 0)
			abort();   /* a loaded recording always has its header's workers */
		if (cohort_diagnose(&rec, 1, &f, &n) == 0)
			cohort_findings_free(f);
		cohort_recording_free(rec);
	}
	unlink(path);
	return 0;
}
