/*
 * size.c - memory sizes in SLURM's notation.
 *
 * One parser serves every command and option, so "--mem-per-worker 1.5G"
 * and "--budget 1536M" always mean the same bytes.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* The fraction may carry at most this many digits: 10^19 still fits in u64. */
#define FRAC_DIGITS_MAX 19

int cohort_size_parse(const char *text, uint64_t *ret_bytes)
{
	const char *p = text;
	uint64_t whole = 0, frac = 0, frac_scale = 1, unit, bytes, part;
	int ndigits = 0, nfrac = 0;

	if (!text)
		return COHORT_ESIZE_SYNTAX;
	for (; *p >= '0' && *p <= '9'; p++, ndigits++)
		if (__builtin_mul_overflow(whole, 10, &whole) ||
		    __builtin_add_overflow(whole, (uint64_t)(*p - '0'), &whole))
			return COHORT_ESIZE_RANGE;
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++, nfrac++) {
			if (nfrac == FRAC_DIGITS_MAX)
				return COHORT_ESIZE_FRACTION;
			frac = frac * 10 + (uint64_t)(*p - '0');
			frac_scale *= 10;
		}
		if (nfrac == 0)
			return COHORT_ESIZE_SYNTAX;
	}
	if (ndigits == 0)
		return COHORT_ESIZE_SYNTAX;

	switch (*p) {
	case '\0':           unit = 1ULL << 20; break; /* bare number: megabytes */
	case 'k': case 'K':  unit = 1ULL << 10; p++; break;
	case 'm': case 'M':  unit = 1ULL << 20; p++; break;
	case 'g': case 'G':  unit = 1ULL << 30; p++; break;
	case 't': case 'T':  unit = 1ULL << 40; p++; break;
	default:
		return COHORT_ESIZE_SYNTAX;
	}
	if (*p != '\0' && strcmp(p, "B") != 0 && strcmp(p, "iB") != 0 &&
	    strcmp(p, "b") != 0)
		return COHORT_ESIZE_SYNTAX;

	if (__builtin_mul_overflow(whole, unit, &bytes))
		return COHORT_ESIZE_RANGE;
	if (nfrac) {
		/*
		 * frac/frac_scale of a unit. unit is a power of two up to 2^40
		 * and frac < 10^19, so split the product to stay in 64 bits:
		 * frac * unit / scale computed as 128-bit.
		 */
		unsigned __int128 num = (unsigned __int128)frac * unit;

		if (num % frac_scale != 0)
			return COHORT_ESIZE_FRACTION;
		part = (uint64_t)(num / frac_scale);
		if (__builtin_add_overflow(bytes, part, &bytes))
			return COHORT_ESIZE_RANGE;
	}
	*ret_bytes = bytes;
	return 0;
}

char *cohort_size_format(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	unsigned i = 0;

	if (size == 0)
		return buf;
	if (bytes < 1024) {
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	v /= 1024.0;
	while (v >= 1024.0 && i + 1 < COHORT_ARRAY_SIZE(units)) {
		v /= 1024.0;
		i++;
	}
	snprintf(buf, size, "%.1f %s", v, units[i]);
	return buf;
}
