/*
 * fuzz-shmseg.c - what another process may have written into shared
 * memory: a segment file's header, a queue's bookkeeping and records, an
 * arena's blocks. Each is first made valid by cohort itself, then the input
 * patches bytes into it, and cohort must refuse it or use it within bounds:
 * never read or write outside the region (AddressSanitizer watches).
 *
 * Input: byte 0 picks the object (segment, queue, arena) and whether the
 * segment header's checksum is recomputed after patching (so that the
 * checks behind the checksum are reached too); byte 1 is a seed for the
 * operations; then patches of 3 bytes (offset low, offset high, value).
 */
#include "cohort.h"
#include "fuzz-tree.h"

#include <fcntl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REGION (16u << 10)

/* The header checksum, as docs/shm.md defines it: FNV-1a of bytes 8..199. */
static uint64_t fnv(const unsigned char *h)
{
	uint64_t x = 0xcbf29ce484222325ULL;

	for (size_t i = 8; i < 200; i++) {
		x ^= h[i];
		x *= 0x100000001b3ULL;
	}
	return x;
}

/*
 * Patch bytes, except in [keep_lo, keep_hi): a lock word. A process that can
 * write the segment can hold its lock for ever as well, so a garbage lock
 * word is a hang cohort does not promise to survive (docs/security.md);
 * memory safety it does promise, and that is what is fuzzed here.
 */
static void patch_except(unsigned char *mem, size_t len, const uint8_t *p, size_t n,
                         size_t keep_lo, size_t keep_hi)
{
	for (; n >= 3; p += 3, n -= 3) {
		size_t at = ((size_t)p[0] | (size_t)p[1] << 8) % len;

		if (at < keep_lo || at >= keep_hi)
			mem[at] = p[2];
	}
}

static void patch(unsigned char *mem, size_t len, const uint8_t *p, size_t n)
{
	patch_except(mem, len, p, n, 0, 0);
}

static void fuzz_segment(const uint8_t *p, size_t n, int fix_checksum)
{
	struct cohort_seg_options o = { 0 };
	struct cohort_seg *s;
	struct cohort_seg_info info;
	unsigned char hdr[4096];
	char path[COHORT_PATH_MAX], why[256];
	int fd;

	o.dir = tree_root;
	o.job = "fz";
	o.no_check = 1;
	o.why = why;
	o.why_size = sizeof(why);
	cohort_seg_unlink("s", &o);
	if (cohort_seg_create("s", 3000, &o, &s) != 0) {
		fprintf(stderr, "cannot create the segment: %s\n", why);
		abort();
	}
	cohort_seg_close(s);
	if (cohort_seg_path("s", &o, path, sizeof(path)) < 0)
		abort();
	fd = open(path, O_RDWR);
	if (fd < 0 || pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		abort();
	patch(hdr, sizeof(hdr), p, n);
	if (fix_checksum) {
		uint64_t c = fnv(hdr);

		memcpy(hdr + 200, &c, 8);
	}
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		abort();
	/* A patch past the header page's end shrinks the file instead. */
	if (n >= 3 && p[0] == 0xff && ftruncate(fd, (off_t)p[1] * 64) != 0)
		abort();
	close(fd);
	if (cohort_seg_open("s", &o, &s) == 0) {
		/* Accepted: the whole data must be mapped, as the header claims. */
		volatile unsigned char *d = cohort_seg_data(s);
		size_t len = cohort_seg_size(s);

		d[0] = d[0];
		d[len - 1] = d[len - 1];
		cohort_seg_close(s);
	}
	if (cohort_seg_stat(path, &info) == 0 &&
	    (!memchr(info.name, 0, sizeof(info.name)) || !memchr(info.job, 0, sizeof(info.job))))
		abort();
}

static void fuzz_queue(const uint8_t *p, size_t n, unsigned seed)
{
	size_t fp = cohort_queue_footprint(1024);
	unsigned char *mem, buf[2048];
	cohort_queue_t *q;

	if (fp > REGION)
		abort();
	mem = aligned_alloc(64, REGION);
	if (!mem || cohort_queue_init(mem, fp, &q) != 0)
		abort();
	for (unsigned i = 0; i < 5 + seed % 7; i++) {
		memset(buf, (int)i, 40);
		if (cohort_queue_send(q, buf, 1 + (i * 37 + seed) % 200, 0) != 0)
			break;
	}
	if (seed & 1)
		cohort_queue_recv(q, buf, sizeof(buf), 0);
	patch(mem, fp, p, n);
	if (cohort_queue_attach(mem, fp, &q) == 0) {
		for (int i = 0; i < 12; i++) {
			int r = cohort_queue_recv(q, buf, (size_t)(seed % 3 == 0 ? 16 : sizeof(buf)), 0);

			if (r > (int)sizeof(buf))
				abort();
			if (cohort_queue_send(q, buf, 1 + (size_t)(i * 53 % 300), 0) < 0 && r < 0)
				break;
		}
	}
	free(mem);
}

static void fuzz_arena(const uint8_t *p, size_t n, unsigned seed)
{
	unsigned char *mem = aligned_alloc(64, REGION);
	cohort_arena_t *a;
	cohort_off_t h[8] = { 0 };
	struct cohort_arena_stats st;

	if (!mem || cohort_arena_init(mem, REGION, &a) != 0)
		abort();
	for (int i = 0; i < 8; i++)
		if (cohort_arena_alloc(a, 8 + (size_t)((seed + (unsigned)i * 97) % 900), &h[i]) != 0)
			h[i] = 0;
	if (seed & 2)
		cohort_arena_free(a, h[3]);
	/* The arena's lock sits at byte 64 of its header (src/arena.c). */
	patch_except(mem, REGION, p, n, 64, 64 + sizeof(cohort_mutex_t));
	if (cohort_arena_attach(mem, REGION, &a) == 0) {
		for (int i = 0; i < 8; i++) {
			int len = cohort_arena_check(a, h[i]);
			unsigned char *d = cohort_arena_ptr(a, h[i]);

			/* A block it vouches for lies inside the region. */
			if (len > 0 && d && (d < mem || d + len > mem + REGION))
				abort();
			if (i % 2)
				cohort_arena_free(a, h[i]);
		}
		/* Handles from the input itself. */
		for (size_t i = 0; i + 3 <= n && i < 24; i += 3) {
			cohort_off_t off = (cohort_off_t)p[i] | (cohort_off_t)p[i + 1] << 8 | (cohort_off_t)p[i + 2] << 16;

			cohort_arena_check(a, off);
			cohort_arena_ptr(a, off);
			cohort_arena_free(a, off);
		}
		for (int i = 0; i < 4; i++) {
			cohort_off_t o;

			if (cohort_arena_alloc(a, 16 + (size_t)i * 200, &o) == 0) {
				unsigned char *d = cohort_arena_ptr(a, o);

				if (!d || d < mem || d + 16 + i * 200 > mem + REGION)
					abort();
				memset(d, 0x5a, 16 + (size_t)i * 200);
			}
		}
		cohort_arena_stats(a, &st);
	}
	free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const dirs[] = { NULL };

	if (size < 2)
		return 0;
	tree_init(dirs);
	switch (data[0] % 4) {
	case 0:
		fuzz_segment(data + 2, size - 2, 0);
		break;
	case 1:
		fuzz_segment(data + 2, size - 2, 1);
		break;
	case 2:
		fuzz_queue(data + 2, size - 2, data[1]);
		break;
	default:
		fuzz_arena(data + 2, size - 2, data[1]);
		break;
	}
	return 0;
}
