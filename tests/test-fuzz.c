/* test-fuzz.c - every fuzz target replays its corpus (fuzz/corpus/<name>/). */
#include "harness.h"

#include <dirent.h>

TEST_TIMEOUT(fuzz_corpora_replay, 120)
{
	char dir[1024];
	DIR *d;
	struct dirent *e;
	int targets = 0;

	snprintf(dir, sizeof(dir), "%s/fuzz", test_build_dir());
	d = opendir(dir);
	CHECK_MSG(d != NULL, "no %s: build the fuzz targets (make check does)", dir);
	while ((e = readdir(d)) != NULL) {
		struct cmd_result r;

		if (strncmp(e->d_name, "fuzz-", 5) != 0 || strchr(e->d_name, '.'))
			continue;
		cmd_run(&r, "%s/%s %s/fuzz/corpus/%s", dir, e->d_name, test_src_dir(), e->d_name + 5);
		CHECK_MSG(r.status == 0, "%s on its corpus exited %d:\n%s", e->d_name, r.status, r.err);
		CHECK_MSG(strstr(r.out, " inputs replayed") && atoi(r.out) > 0,
		          "%s replayed no input: %s", e->d_name, r.out);
		cmd_free(&r);
		targets++;
	}
	closedir(d);
	CHECK(targets >= 2);
}
