/*
 * fuzz-tree.h - a private scratch tree for fuzz targets that feed readers
 * through files: the input is split at NUL bytes, and piece k is written
 * to files[k] under the tree (missing pieces give empty files).
 */
#ifndef COHORT_FUZZ_TREE_H
#define COHORT_FUZZ_TREE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tree_root[64];

static inline void tree_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tree_root);
	if (system(cmd) != 0)
		return;
}

/* Create the root and the directories dirs[] (relative, parents first). */
static inline void tree_init(const char *const *dirs)
{
	char path[256];

	if (tree_root[0])
		return;
	snprintf(tree_root, sizeof(tree_root), "/tmp/cohort-fuzz-%d", (int)getpid());
	mkdir(tree_root, 0700);
	for (; *dirs; dirs++) {
		snprintf(path, sizeof(path), "%s/%s", tree_root, *dirs);
		mkdir(path, 0700);
	}
	atexit(tree_cleanup);
}

static inline void tree_put(const char *rel, const uint8_t *p, size_t n)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tree_root, rel);
	f = fopen(path, "w");
	if (!f)
		abort();
	if (n && fwrite(p, 1, n, f) != n)
		abort();
	fclose(f);
}

/* Write the NUL-separated pieces of data into files[0..nfiles). */
static inline void tree_split(const uint8_t *data, size_t size, const char *const *files, size_t nfiles)
{
	size_t start = 0, k = 0;

	for (size_t i = 0; i <= size && k < nfiles; i++)
		if (i == size || data[i] == 0) {
			tree_put(files[k++], data + start, i - start);
			start = i + 1;
		}
	for (; k < nfiles; k++)
		tree_put(files[k], (const uint8_t *)"", 0);
}

/* The first NUL-separated piece as a malloc'd C string. */
static inline char *tree_first(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t n = nul ? (size_t)(nul - data) : size;
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

#endif
