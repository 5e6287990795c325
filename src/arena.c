/*
 * arena.c - an allocator inside a shared region, with offset handles.
 *
 * Each process maps a segment at its own address, so an allocation is
 * named by its offset from the arena's start. The arena is one chain of
 * blocks, each with a 16-byte header: a packed word (size / 16, a used bit
 * and a tag that hashes the block's offset and size) and the size the
 * caller asked for. After the caller's bytes sits a canary that hashes the
 * block's offset: a write past the allocation destroys it, and free or
 * check report it.
 *
 * Crash safety without a journal: every change to the chain is a single
 * 8-byte store of a packed word (split writes the new tail block's header
 * before it shrinks the block; merging grows the first block, leaving the
 * second header as dead bytes inside it). A process killed anywhere inside
 * the arena leaves a valid chain; the next caller recovers the robust
 * mutex and goes on. At worst a block the dead process had just allocated
 * stays allocated (it never got the handle): the statistics count the
 * recovery.
 *
 * Allocation is next-fit from a roving offset, merging free neighbours as
 * it walks; its cost is linear in the number of blocks, which suits a few
 * large, long-lived allocations rather than millions of small ones.
 *
 * Any process of the job can write the region, header included, so the
 * arena's size is read once, at init or attach, into the process-local
 * handle, and every block offset and length read from shared memory is
 * checked against that copy before anything is read or written through
 * it. A shared size that no longer matches the copy, or a block that does
 * not fit, is COHORT_ECORRUPT.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_MAGIC 0x414e455241484f43ULL   /* "COHARENA" */
#define ARENA_HEADER 256
#define BLK_HDR 16
#define MIN_BLOCK 48
#define USED (1ULL << 40)
#define SIZE_MASK ((1ULL << 40) - 1)
#define CANARY 0xc0ffee15deadbeefULL

struct ashm {
	_Atomic uint64_t magic;
	uint64_t size;                 /* bytes of the region; compared with the handle's copy, never trusted */
	unsigned char pad0[48];
	cohort_mutex_t lock;
	_Atomic uint64_t rover;        /* where the next search starts */
	_Atomic uint64_t total_allocs;
	_Atomic uint64_t failed;
	_Atomic uint64_t recovered;
};

_Static_assert(sizeof(struct ashm) <= ARENA_HEADER, "arena header too large");

/* The process-local handle: only its size bounds an offset. */
struct cohort_arena {
	struct ashm *shm;
	uint64_t size;
};

struct blk {
	_Atomic uint64_t word;    /* tag << 41 | used | size / 16 */
	uint64_t usize;           /* bytes the caller asked for (used blocks) */
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t pack(uint64_t off, uint64_t size, bool used)
{
	uint64_t units = size / 16;
	uint64_t tag = mix(off * 31 + units + (used ? 7 : 0)) >> 41;

	return tag << 41 | (used ? USED : 0) | (units & SIZE_MASK);
}

static struct blk *blk_at(cohort_arena_t *a, uint64_t off)
{
	return (struct blk *)(void *)((unsigned char *)a->shm + off);
}

/* Decode and check the block header at off. Returns its size, or 0 when invalid. */
static uint64_t blk_size(cohort_arena_t *a, uint64_t off, bool *ret_used)
{
	uint64_t w, size;
	bool used;

	if (off < ARENA_HEADER || off % 16 || off > a->size - MIN_BLOCK)
		return 0;
	w = atomic_load_explicit(&blk_at(a, off)->word, memory_order_relaxed);
	size = (w & SIZE_MASK) * 16;
	used = (w & USED) != 0;
	if (size < MIN_BLOCK || size > a->size - off || w != pack(off, size, used))
		return 0;
	*ret_used = used;
	return size;
}

static uint64_t *canary_at(cohort_arena_t *a, uint64_t off, uint64_t usize)
{
	return (uint64_t *)(void *)((unsigned char *)a->shm + off + BLK_HDR + ((usize + 7) & ~7ULL));
}

int cohort_arena_init(void *mem, size_t size, cohort_arena_t **ret_a)
{
	struct ashm *sh = mem;
	cohort_arena_t *a;
	uint64_t first = ARENA_HEADER;
	int r;

	if (!mem || !ret_a || ((uintptr_t)mem & 63) || size < 4096)
		return -EINVAL;
	size &= ~(size_t)15;
	if ((uint64_t)size - first > SIZE_MASK * 16)
		size = (size_t)(first + SIZE_MASK * 16);
	a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->shm = sh;
	a->size = size;
	memset(sh, 0, ARENA_HEADER);
	sh->size = size;
	r = cohort_mutex_init(&sh->lock);
	if (r < 0) {
		free(a);
		return r;
	}
	atomic_store(&sh->rover, first);
	atomic_store(&blk_at(a, first)->word, pack(first, size - first, false));
	atomic_store(&sh->magic, ARENA_MAGIC);
	*ret_a = a;
	return 0;
}

int cohort_arena_open(void *mem, size_t size, cohort_arena_t **ret_a)
{
	struct ashm *sh = mem;
	cohort_arena_t *a;
	uint64_t asize;

	if (!mem || !ret_a || ((uintptr_t)mem & 63) || size < 4096)
		return -EINVAL;
	/* One read of the shared size: the copy is what is checked and kept. */
	asize = sh->size;
	if (atomic_load(&sh->magic) != ARENA_MAGIC || asize > size || asize < 4096 || asize % 16 ||
	    asize - ARENA_HEADER > SIZE_MASK * 16)
		return COHORT_EBADSEG;
	a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->shm = sh;
	a->size = asize;
	*ret_a = a;
	return 0;
}

int cohort_arena_close(cohort_arena_t *a)
{
	free(a);
	return 0;
}

/*
 * Does the shared header still hold the size this process attached with?
 * Offsets are bounded by the local copy whatever it says; a rewritten size
 * is refused because its writer cannot be trusted with the chain either.
 */
static int size_intact(const cohort_arena_t *a)
{
	if (atomic_load_explicit(&a->shm->magic, memory_order_relaxed) != ARENA_MAGIC ||
	    a->shm->size != a->size)
		return COHORT_ECORRUPT;
	return 0;
}

static int lock_arena(cohort_arena_t *a)
{
	int r = size_intact(a);

	if (r < 0)
		return r;
	r = cohort_mutex_lock(&a->shm->lock, -1);
	if (r == COHORT_EOWNERDEAD) {
		/* The chain is valid at every instruction: nothing to rebuild. */
		atomic_fetch_add(&a->shm->recovered, 1);
		cohort_mutex_consistent(&a->shm->lock);
		r = 0;
	}
	return r;
}

/* Merge the free block at off with the free blocks after it. Returns its new size. */
static uint64_t merge_next(cohort_arena_t *a, uint64_t off, uint64_t size)
{
	bool used;

	while (off + size < a->size) {
		uint64_t nsize = blk_size(a, off + size, &used);

		if (!nsize || used)
			break;
		size += nsize;
		atomic_store(&blk_at(a, off)->word, pack(off, size, false));
	}
	/* Never start a search at a header that is now dead bytes inside this block. */
	uint64_t rv = atomic_load(&a->shm->rover);
	if (rv > off && rv < off + size)
		atomic_store(&a->shm->rover, off);
	return size;
}

int cohort_arena_alloc(cohort_arena_t *a, size_t size, cohort_off_t *ret_off)
{
	uint64_t need, start, off;
	bool used, wrapped = false;
	int r;

	if (size == 0 || size > a->size)
		return -EINVAL;
	need = (BLK_HDR + ((size + 7) & ~7ULL) + 8 + 15) & ~15ULL;
	if (need < MIN_BLOCK)
		need = MIN_BLOCK;
	r = lock_arena(a);
	if (r < 0)
		return r;
	start = off = atomic_load(&a->shm->rover);
	if (!blk_size(a, off, &used))
		start = off = ARENA_HEADER;
	for (;;) {
		uint64_t bsize = blk_size(a, off, &used);

		if (!bsize) {
			r = COHORT_ECORRUPT;
			goto out;
		}
		if (!used) {
			bsize = merge_next(a, off, bsize);
			if (bsize >= need) {
				struct blk *b = blk_at(a, off);

				if (bsize - need >= MIN_BLOCK) {
					/* The tail's header first: the chain stays valid. */
					atomic_store(&blk_at(a, off + need)->word,
					             pack(off + need, bsize - need, false));
					bsize = need;
				}
				b->usize = size;
				*canary_at(a, off, size) = CANARY ^ mix(off);
				atomic_store(&b->word, pack(off, bsize, true));
				atomic_store(&a->shm->rover, off + bsize < a->size ? off + bsize : ARENA_HEADER);
				atomic_fetch_add(&a->shm->total_allocs, 1);
				*ret_off = off + BLK_HDR;
				r = 0;
				goto out;
			}
		}
		off += bsize;
		if (off >= a->size) {
			off = ARENA_HEADER;
			wrapped = true;
		}
		if (wrapped && off >= start) {
			atomic_fetch_add(&a->shm->failed, 1);
			r = COHORT_ENOSPACE;
			goto out;
		}
	}
out:
	cohort_mutex_unlock(&a->shm->lock);
	return r;
}

/* Check a live allocation's handle; returns its block offset or 0. */
static uint64_t check_live(cohort_arena_t *a, cohort_off_t handle, uint64_t *ret_size, bool canary)
{
	uint64_t off, bsize;
	bool used;

	if (size_intact(a) < 0 || handle < ARENA_HEADER + BLK_HDR || handle >= a->size)
		return 0;
	off = handle - BLK_HDR;
	bsize = blk_size(a, off, &used);
	if (!bsize || !used)
		return 0;
	uint64_t usize = blk_at(a, off)->usize;
	/* The first test keeps the rounding below from wrapping around. */
	if (usize == 0 || usize > bsize || BLK_HDR + ((usize + 7) & ~7ULL) + 8 > bsize)
		return 0;
	if (canary && *canary_at(a, off, usize) != (CANARY ^ mix(off)))
		return 0;
	if (ret_size)
		*ret_size = usize;
	return off;
}

int cohort_arena_free(cohort_arena_t *a, cohort_off_t handle)
{
	uint64_t off, bsize;
	bool used;
	int r = lock_arena(a);

	if (r < 0)
		return r;
	off = check_live(a, handle, NULL, true);
	if (!off) {
		r = COHORT_ECORRUPT;
		goto out;
	}
	bsize = blk_size(a, off, &used);
	atomic_store(&blk_at(a, off)->word, pack(off, bsize, false));
	merge_next(a, off, bsize);
	r = 0;
out:
	cohort_mutex_unlock(&a->shm->lock);
	return r;
}

void *cohort_arena_ptr(cohort_arena_t *a, cohort_off_t handle)
{
	if (!check_live(a, handle, NULL, false))
		return NULL;
	return (unsigned char *)a->shm + handle;
}

int cohort_arena_check(cohort_arena_t *a, cohort_off_t handle)
{
	uint64_t usize;

	if (!check_live(a, handle, &usize, true))
		return COHORT_ECORRUPT;
	return usize > INT_MAX ? INT_MAX : (int)usize;
}

pid_t cohort__arena_holder(const cohort_arena_t *a)
{
	return cohort__mutex_holder(&a->shm->lock);
}

void *cohort__arena_field(const cohort_arena_t *a, const char *name)
{
	if (!strcmp(name, "size"))
		return &a->shm->size;
	if (!strcmp(name, "lock"))
		return &a->shm->lock;
	if (!strcmp(name, "rover"))
		return &a->shm->rover;
	return NULL;
}

uint64_t cohort__arena_block_word(uint64_t off, uint64_t size, bool used)
{
	return pack(off, size, used);
}

int cohort_arena_stats(cohort_arena_t *a, struct cohort_arena_stats *ret)
{
	struct cohort_arena_stats s;
	uint64_t off = ARENA_HEADER;
	int r = lock_arena(a);

	if (r < 0)
		return r;
	memset(&s, 0, sizeof(s));
	s.size = a->size - ARENA_HEADER;
	while (off < a->size) {
		bool used;
		uint64_t bsize = blk_size(a, off, &used);

		if (!bsize) {
			r = COHORT_ECORRUPT;
			goto out;
		}
		if (used) {
			s.used += bsize;
			s.allocations++;
		} else {
			s.free += bsize;
			if (bsize > s.largest_free)
				s.largest_free = bsize;
		}
		off += bsize;
	}
	s.total_allocs = atomic_load(&a->shm->total_allocs);
	s.failed = atomic_load(&a->shm->failed);
	s.recovered = atomic_load(&a->shm->recovered);
	*ret = s;
out:
	cohort_mutex_unlock(&a->shm->lock);
	return r;
}
