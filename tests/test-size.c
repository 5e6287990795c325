/* test-size.c - the one size parser every command uses. */
#include "harness.h"

static uint64_t parse_ok(const char *s)
{
	uint64_t b = 0;
	int r = cohort_size_parse(s, &b);

	CHECK_MSG(r == 0, "'%s' should parse, got %d (%s)", s, r, cohort_strerror(r));
	return b;
}

static void parse_err(const char *s, int want)
{
	uint64_t b = 12345;
	int r = cohort_size_parse(s, &b);

	CHECK_MSG(r == want, "'%s': want %d (%s), got %d (%s)", s, want, cohort_strerror(want),
	          r, cohort_strerror(r));
	CHECK_MSG(b == 12345, "'%s': output written on failure", s);
}

TEST(size_parse_slurm_units)
{
	CHECK_EQ_U64(parse_ok("500M"), 500ULL << 20);
	CHECK_EQ_U64(parse_ok("4G"), 4ULL << 30);
	CHECK_EQ_U64(parse_ok("4g"), 4ULL << 30);
	CHECK_EQ_U64(parse_ok("1.5T"), 3ULL << 39);
	CHECK_EQ_U64(parse_ok("64K"), 64ULL << 10);
	CHECK_EQ_U64(parse_ok("64KiB"), 64ULL << 10);
	CHECK_EQ_U64(parse_ok("2GB"), 2ULL << 30);
	CHECK_EQ_U64(parse_ok("0.5K"), 512);
	CHECK_EQ_U64(parse_ok("0"), 0);
}

TEST(size_parse_bare_number_is_megabytes)
{
	CHECK_EQ_U64(parse_ok("2048"), 2ULL << 30);
	CHECK_EQ_U64(parse_ok("1"), 1ULL << 20);
	CHECK_EQ_U64(parse_ok("1.5"), 3ULL << 19);
}

TEST(size_parse_rejects_garbage)
{
	parse_err("", COHORT_ESIZE_SYNTAX);
	parse_err("4Q", COHORT_ESIZE_SYNTAX);
	parse_err("G", COHORT_ESIZE_SYNTAX);
	parse_err("-1G", COHORT_ESIZE_SYNTAX);
	parse_err(" 4G", COHORT_ESIZE_SYNTAX);
	parse_err("4G ", COHORT_ESIZE_SYNTAX);
	parse_err("4GG", COHORT_ESIZE_SYNTAX);
	parse_err("1..5G", COHORT_ESIZE_SYNTAX);
	parse_err("1.G", COHORT_ESIZE_SYNTAX);
	parse_err(".5G", COHORT_ESIZE_SYNTAX);
	parse_err("4Gx", COHORT_ESIZE_SYNTAX);
	parse_err("0x10", COHORT_ESIZE_SYNTAX);
	parse_err("1e3", COHORT_ESIZE_SYNTAX);
	parse_err(NULL, COHORT_ESIZE_SYNTAX);
}

TEST(size_parse_no_overflow_no_truncation)
{
	CHECK_EQ_U64(parse_ok("16777215T"), 16777215ULL << 40);
	parse_err("16777216T", COHORT_ESIZE_RANGE);        /* exactly 2^64 */
	parse_err("99999999999999999999", COHORT_ESIZE_RANGE);
	parse_err("18446744073709551616K", COHORT_ESIZE_RANGE);
	parse_err("0.1K", COHORT_ESIZE_FRACTION);          /* 102.4 bytes */
	parse_err("1.0000000000000000000001G", COHORT_ESIZE_FRACTION);
	CHECK_EQ_U64(parse_ok("0.25K"), 256);
	CHECK_EQ_U64(parse_ok("16777215.5T"), (16777215ULL << 40) + (1ULL << 39));
}

TEST(size_format_for_people)
{
	char b[32];

	CHECK_STREQ(cohort_size_format(512, b, sizeof(b)), "512 B");
	CHECK_STREQ(cohort_size_format(1536, b, sizeof(b)), "1.5 KiB");
	CHECK_STREQ(cohort_size_format(300ULL << 20, b, sizeof(b)), "300.0 MiB");
	CHECK_STREQ(cohort_size_format(4ULL << 30, b, sizeof(b)), "4.0 GiB");
	CHECK_STREQ(cohort_size_format(UINT64_MAX, b, sizeof(b)), "16.0 EiB");
	CHECK_STREQ(cohort_size_format(4ULL << 30, b, 4), "4.0");
}

TEST(strerror_names_every_code)
{
	for (int e = COHORT_EBADREC; e <= COHORT_EFIRST; e++)
		CHECK_MSG(strcmp(cohort_strerror(e), "unknown error") != 0, "code %d has no name", e);
	CHECK_STREQ(cohort_strerror(-2), "No such file or directory");
	CHECK_STREQ(cohort_strerror(-20000), "unknown error");
}
