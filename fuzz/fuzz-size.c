/* fuzz-size.c - cohort_size_parse must never crash, and what it accepts must round-trip. */
#include "cohort.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[64], back[64];
	uint64_t bytes, again;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (cohort_size_parse(text, &bytes) == 0) {
		/* Every accepted size is a whole number of bytes: "<bytes>K"/1024... */
		snprintf(back, sizeof(back), "%lluK", (unsigned long long)(bytes / 1024));
		if (cohort_size_parse(back, &again) != 0 || again != bytes - bytes % 1024)
			abort();
	}
	cohort_size_format(bytes = (uint64_t)size << 40, back, sizeof(back));
	return 0;
}
