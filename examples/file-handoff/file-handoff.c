/*
 * file-handoff - workers that hand data to each other through one file.
 *
 * Writers keep replacing a shared file with a new record while readers
 * keep reading it. Each record says how long it is and carries a checksum,
 * so a reader knows when what it read is not one whole record: a torn read.
 *
 * First the naive way: each writer opens the file with O_TRUNC and writes
 * the new record into it. A reader that opens the file in between sees it
 * empty, half written, or the tail of one record after the head of another.
 *
 * Then the cohort way: each writer publishes the record with
 * cohort_publish_data(), which writes a temporary file beside the target
 * and renames it over the target. A reader sees the old record or the new
 * one, never a mix: zero torn reads over the same run.
 *
 *   file-handoff [--rounds N] [--writers N] [--readers N] [--size BYTES]
 *                [--dir DIR] [--no-sync]
 *
 * Exit status: 0 when the cohort way saw no torn read, 1 when it did (a
 * bug), 2 on bad arguments, 3 on a system error.
 */
#include "cohort.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define HDR 32

struct counts {
	volatile int stop;
	unsigned long reads, empty, short_, mixed;
};

static struct counts *counts;
static char path[1024];
static size_t max_size = 64 << 10;

static uint32_t fnv32(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* A record: "HOFF <len> <fnv32>" padded to 32 bytes, then len bytes. */
static size_t make_record(unsigned char *buf, unsigned writer, unsigned seq)
{
	size_t len = max_size / 2 + (seq * 2654435761u + writer * 40503u) % (max_size / 2);
	char hdr[HDR + 1];

	for (size_t i = 0; i < len; i++)
		buf[HDR + i] = (unsigned char)(writer * 97u + seq * 13u + i);
	snprintf(hdr, sizeof(hdr), "HOFF %010zu %08x", len, fnv32(buf + HDR, len));
	memset(buf, ' ', HDR);
	memcpy(buf, hdr, strlen(hdr));
	buf[HDR - 1] = '\n';
	return HDR + len;
}

/* Classify what a reader got: 0 whole, 1 empty, 2 short, 3 mixed. */
static int classify(const unsigned char *buf, size_t n)
{
	unsigned long len;
	unsigned sum;

	if (n == 0)
		return 1;
	if (n < HDR || sscanf((const char *)buf, "HOFF %10lu %8x", &len, &sum) != 2)
		return 3;
	if (n < HDR + len)
		return 2;
	if (n > HDR + len || fnv32(buf + HDR, len) != sum)
		return 3;
	return 0;
}

static void reader(void)
{
	unsigned char *buf = malloc(HDR + max_size + 1);
	unsigned long reads = 0, torn[4] = { 0 };

	if (!buf)
		_exit(3);
	while (!counts->stop) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		size_t len = 0;
		ssize_t n;

		if (fd < 0)
			continue;
		while (len < HDR + max_size + 1 &&
		       (n = read(fd, buf + len, HDR + max_size + 1 - len)) > 0)
			len += (size_t)n;
		close(fd);
		reads++;
		torn[classify(buf, len)]++;
	}
	__atomic_add_fetch(&counts->reads, reads, __ATOMIC_RELAXED);
	__atomic_add_fetch(&counts->empty, torn[1], __ATOMIC_RELAXED);
	__atomic_add_fetch(&counts->short_, torn[2], __ATOMIC_RELAXED);
	__atomic_add_fetch(&counts->mixed, torn[3], __ATOMIC_RELAXED);
	free(buf);
}

/* The naive writer: truncate the shared file and write into it, in chunks
 * as any buffered writer does. */
static int write_naive(const unsigned char *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < n; off += 4096) {
		size_t chunk = n - off < 4096 ? n - off : 4096;

		if (write(fd, buf + off, chunk) != (ssize_t)chunk) {
			close(fd);
			return -EIO;
		}
	}
	return close(fd) < 0 ? -errno : 0;
}

static int write_cohort(const unsigned char *buf, size_t n, unsigned flags)
{
	char error[COHORT_MSG_MAX] = "";
	struct cohort_publish_opts o = { .flags = flags, .why = error, .why_size = sizeof(error) };
	int r = cohort_publish_data(path, buf, n, &o);

	if (r < 0)
		fprintf(stderr, "file-handoff: %s\n", error);
	return r;
}

static void writer(unsigned id, unsigned rounds, int naive, unsigned flags)
{
	unsigned char *buf = malloc(HDR + max_size);

	if (!buf)
		_exit(3);
	for (unsigned seq = 0; seq < rounds; seq++) {
		size_t n = make_record(buf, id, seq);
		int r = naive ? write_naive(buf, n) : write_cohort(buf, n, flags);

		if (r < 0) {
			fprintf(stderr, "file-handoff: writer %u: %s\n", id, cohort_strerror(r));
			_exit(3);
		}
	}
	free(buf);
}

static pid_t spawn(void (*fn)(unsigned, unsigned, int, unsigned), unsigned id, unsigned rounds,
                   int naive, unsigned flags)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("file-handoff: fork");
		exit(3);
	}
	if (pid == 0) {
		if (fn)
			fn(id, rounds, naive, flags);
		else
			reader();
		_exit(0);
	}
	return pid;
}

/* One run: writers and readers at once. Returns the number of torn reads. */
static unsigned long run(const char *label, int naive, unsigned nwriters, unsigned nreaders,
                         unsigned rounds, unsigned flags)
{
	pid_t pids[128];
	unsigned char *first = malloc(HDR + max_size);
	unsigned long torn;
	int status, failed = 0;

	if (!first)
		exit(3);
	memset(counts, 0, sizeof(*counts));
	/* Start from one whole record, so that a missing file is never a reason. */
	if (write_cohort(first, make_record(first, 999, 0), COHORT_PUBLISH_NOSYNC) < 0)
		exit(3);
	free(first);
	for (unsigned i = 0; i < nreaders; i++)
		pids[i] = spawn(NULL, i, 0, 0, 0);
	for (unsigned i = 0; i < nwriters; i++)
		pids[nreaders + i] = spawn(writer, i, rounds, naive, flags);
	for (unsigned i = 0; i < nwriters; i++) {
		if (waitpid(pids[nreaders + i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			failed = 1;
	}
	counts->stop = 1;
	for (unsigned i = 0; i < nreaders; i++)
		waitpid(pids[i], &status, 0);
	if (failed) {
		fprintf(stderr, "file-handoff: a writer failed\n");
		exit(3);
	}
	torn = counts->empty + counts->short_ + counts->mixed;
	printf("%-7s %lu writes, %lu reads, %lu torn (%lu empty, %lu short, %lu mixed)\n", label,
	       (unsigned long)nwriters * rounds, counts->reads, torn, counts->empty,
	       counts->short_, counts->mixed);
	return torn;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: file-handoff [--rounds N] [--writers N] [--readers N] [--size BYTES]\n"
	        "                    [--dir DIR] [--no-sync]\n"
	        "Writers replace a shared file while readers read it: first the naive way\n"
	        "(truncate and rewrite), then with cohort_publish_data(). Counts torn reads.\n"
	        "  --rounds N    records each writer writes (default 1000)\n"
	        "  --writers N   writer processes (default 2)\n"
	        "  --readers N   reader processes (default 2)\n"
	        "  --size BYTES  largest record, e.g. 64K (default 64K)\n"
	        "  --dir DIR     where the shared file goes (default .)\n"
	        "  --no-sync     publish without flushing to disk (faster; still atomic)\n");
}

static int parse_uint(const char *opt, const char *s, unsigned lo, unsigned hi, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "file-handoff: %s '%s': expected a whole number from %u to %u\n",
		        opt, s, lo, hi);
		return -1;
	}
	*ret = (unsigned)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "writers", required_argument, NULL, 'w' },
		{ "readers", required_argument, NULL, 'R' },
		{ "size", required_argument, NULL, 's' },
		{ "dir", required_argument, NULL, 'd' },
		{ "no-sync", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned rounds = 1000, nwriters = 2, nreaders = 2, flags = 0, removed = 0;
	const char *dir = ".";
	unsigned long naive_torn, cohort_torn;
	uint64_t size;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (parse_uint("--rounds", optarg, 1, 10000000, &rounds) < 0)
				return 2;
			break;
		case 'w':
			if (parse_uint("--writers", optarg, 1, 64, &nwriters) < 0)
				return 2;
			break;
		case 'R':
			if (parse_uint("--readers", optarg, 1, 64, &nreaders) < 0)
				return 2;
			break;
		case 's':
			if (cohort_size_parse(optarg, &size) < 0 || size < 64 || size > (64u << 20)) {
				fprintf(stderr, "file-handoff: --size '%s': expected a size from 64 to 64M bytes, such as 64K\n",
				        optarg);
				return 2;
			}
			max_size = (size_t)size;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'n':
			flags |= COHORT_PUBLISH_NOSYNC;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "file-handoff: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (snprintf(path, sizeof(path), "%s/handoff.dat", dir) >= (int)sizeof(path)) {
		fprintf(stderr, "file-handoff: --dir '%s': path too long\n", dir);
		return 2;
	}
	counts = mmap(NULL, sizeof(*counts), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (counts == MAP_FAILED) {
		perror("file-handoff: mmap");
		return 3;
	}
	printf("%u writers replace %s while %u readers read it; %u records each, up to %zu bytes\n",
	       nwriters, path, nreaders, rounds, max_size);
	naive_torn = run("naive:", 1, nwriters, nreaders, rounds, flags);
	cohort_torn = run("cohort:", 0, nwriters, nreaders, rounds, flags);
	if (cohort_publish_clean(dir, &removed) == 0 && removed)
		printf("removed %u leftover temporary files\n", removed);
	unlink(path);
	if (naive_torn == 0)
		printf("the naive way happened to tear nothing this time: try more --rounds\n");
	if (cohort_torn != 0) {
		printf("BUG: the cohort way showed %lu torn reads\n", cohort_torn);
		return 1;
	}
	printf("the cohort way: every read saw one whole record\n");
	return 0;
}
