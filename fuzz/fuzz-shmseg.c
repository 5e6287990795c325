/*
 * fuzz-shmseg.c - what another process may have written into shared
 * memory: a segment file's header, a queue's bookkeeping and records, an
 * arena's blocks. Each is first made valid by cohort itself; queues and
 * arenas are then attached, and the input patches bytes into the live
 * object in rounds, between which every operation runs on the attached
 * handles: cohort must refuse what it finds or use it within bounds, never
 * read or write outside the region (AddressSanitizer watches; the queue's
 * region is allocated to its exact size so that its redzone follows it).
 *
 * Input: byte 0 picks the object (segment, queue, arena) and whether the
 * segment header's checksum is recomputed after patching (so that the
 * checks behind the checksum are reached too); byte 1 is a seed for the
 * operations; then patches of 3 bytes (offset low, offset high, value).
 */
#include "cohort.h"
#include "fuzz-tree.h"

#include <fcntl.h>
#include <stdbool.h>

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

/*
 * The input's patches in rounds: each round writes up to 4 patches into the
 * live object, then runs the operations. So a header or position rewritten
 * while handles are attached (what another process of the job could do at
 * any instant) is what is fuzzed, not only what attach would see.
 */
#define PATCHES_PER_ROUND 4
#define ROUND_BYTES (3 * PATCHES_PER_ROUND)

/* The queue's geometry: bytes 0..31 of its header (src/queue.c: magic, capacity, max_msg, region). */
#define QUEUE_GEOMETRY 32

static void queue_round(cohort_queue_t *q, const unsigned char *mem, const unsigned char *geometry,
                        unsigned seed, int round)
{
	unsigned char buf[2048];
	bool rewritten = memcmp(mem, geometry, QUEUE_GEOMETRY) != 0;

	for (int i = 0; i < 6; i++) {
		int r = cohort_queue_recv(q, buf, (size_t)(seed % 3 == 0 ? 16 : sizeof(buf)), 0);
		int s;

		if (r > (int)sizeof(buf))
			abort();
		/* A rewritten geometry is refused, never used. */
		if (rewritten && r != COHORT_ECORRUPT)
			abort();
		memset(buf, round + i, 40);
		s = cohort_queue_send(q, buf, 1 + (size_t)((i + round) * 53 % 300), 0);
		if (rewritten && s != COHORT_ECORRUPT)
			abort();
		if (s < 0 && r < 0)
			break;
	}
}

static void fuzz_queue(const uint8_t *p, size_t n, unsigned seed)
{
	size_t fp = cohort_queue_footprint(1024);
	unsigned char *mem, buf[2048], geometry[QUEUE_GEOMETRY];
	cohort_queue_t *q, *q2 = NULL;
	struct cohort_queue_stats st;

	/* Exactly the region: ASan's redzone right after it catches any write past it. */
	mem = aligned_alloc(64, fp);
	if (!mem || cohort_queue_init(mem, fp, &q) != 0)
		abort();
	for (unsigned i = 0; i < 5 + seed % 7; i++) {
		memset(buf, (int)i, 40);
		if (cohort_queue_send(q, buf, 1 + (i * 37 + seed) % 200, 0) != 0)
			break;
	}
	if (seed & 1)
		cohort_queue_recv(q, buf, sizeof(buf), 0);
	/* A second process's view, attached before anything is patched. */
	if (cohort_queue_open(mem, fp, &q2) != 0)
		abort();
	memcpy(geometry, mem, QUEUE_GEOMETRY);
	for (int round = 0; n > 0; round++) {
		size_t k = n < ROUND_BYTES ? n : ROUND_BYTES;

		patch(mem, fp, p, k);
		p += k;
		n -= k;
		queue_round(round % 2 ? q2 : q, mem, geometry, seed, round);
		cohort_queue_stats(q, &st);
		if (st.capacity != 1024)
			abort();
	}
	cohort_queue_close(q2);
	/* A newcomer attaching now must refuse the queue or use it within bounds. */
	if (cohort_queue_open(mem, fp, &q2) == 0) {
		queue_round(q2, mem, mem, seed, 0);
		cohort_queue_close(q2);
	}
	cohort_queue_close(q);
	free(mem);
}

/* A block the arena vouches for lies inside the region. */
static void arena_inside(cohort_arena_t *a, cohort_off_t h, const unsigned char *mem)
{
	int len = cohort_arena_check(a, h);
	unsigned char *d = cohort_arena_ptr(a, h);

	if (len > 0 && (!d || d < mem || d + len > mem + REGION))
		abort();
}

static void arena_round(cohort_arena_t *a, cohort_off_t *h, const unsigned char *mem,
                        const uint8_t *p, size_t n, int round)
{
	struct cohort_arena_stats st;

	for (int i = 0; i < 8; i++) {
		arena_inside(a, h[i], mem);
		if ((i + round) % 2 && h[i]) {
			cohort_arena_free(a, h[i]);
			h[i] = 0;
		}
	}
	/* Handles from the input itself. */
	for (size_t i = 0; i + 3 <= n; i += 3) {
		cohort_off_t off = (cohort_off_t)p[i] | (cohort_off_t)p[i + 1] << 8 | (cohort_off_t)p[i + 2] << 16;

		arena_inside(a, off, mem);
		cohort_arena_free(a, off);
	}
	for (int i = 0; i < 4; i++) {
		cohort_off_t o;
		size_t len = 16 + (size_t)i * 200 + (size_t)round * 24;

		if (cohort_arena_alloc(a, len, &o) == 0) {
			unsigned char *d = cohort_arena_ptr(a, o);

			if (!d || d < mem || d + len > mem + REGION)
				abort();
			/* Written through: ASan sees it if the block lay outside. */
			memset(d, 0x5a, len);
			if (!h[i * 2])
				h[i * 2] = o;
		}
	}
	if (cohort_arena_stats(a, &st) == 0 && st.size + 256 > REGION)
		abort();
}

static void fuzz_arena(const uint8_t *p, size_t n, unsigned seed)
{
	unsigned char *mem = aligned_alloc(64, REGION);
	cohort_arena_t *a, *a2 = NULL;
	cohort_off_t h[8] = { 0 };

	if (!mem || cohort_arena_init(mem, REGION, &a) != 0)
		abort();
	for (int i = 0; i < 8; i++)
		if (cohort_arena_alloc(a, 8 + (size_t)((seed + (unsigned)i * 97) % 900), &h[i]) != 0)
			h[i] = 0;
	if (seed & 2) {
		cohort_arena_free(a, h[3]);
		h[3] = 0;
	}
	if (cohort_arena_open(mem, REGION, &a2) != 0)
		abort();
	for (int round = 0; n > 0; round++) {
		size_t k = n < ROUND_BYTES ? n : ROUND_BYTES;

		/* The arena's lock sits at byte 64 of its header (src/arena.c). */
		patch_except(mem, REGION, p, k, 64, 64 + sizeof(cohort_mutex_t));
		arena_round(round % 2 ? a2 : a, h, mem, p, k, round);
		p += k;
		n -= k;
	}
	cohort_arena_close(a2);
	if (cohort_arena_open(mem, REGION, &a2) == 0) {
		arena_round(a2, h, mem, NULL, 0, 0);
		cohort_arena_close(a2);
	}
	cohort_arena_close(a);
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
