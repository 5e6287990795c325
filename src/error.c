/* error.c - names of error codes, and the library version. */
#include "internal.h"

#include <string.h>

const char *cohort_version(void)
{
	return COHORT_VERSION_STRING;
}

const char *cohort_strerror(int err)
{
	switch (err) {
	case COHORT_ESIZE_SYNTAX:    return "not a size: expected a number with an optional K, M, G or T suffix";
	case COHORT_ESIZE_RANGE:     return "size too large (above 2^64-1 bytes)";
	case COHORT_ESIZE_FRACTION:  return "size is not a whole number of bytes";
	case COHORT_EPARSE:          return "unexpected contents in a /proc or cgroup file";
	case COHORT_ENOCGROUP:       return "no memory cgroup found";
	case COHORT_EPLAN:           return "impossible plan";
	case COHORT_EBADSEG:         return "not a cohort segment, or a corrupt one";
	case COHORT_EOWNERDEAD:      return "the owner died holding the lock";
	case COHORT_ENOTRECOVERABLE: return "the lock's data was never repaired after its owner died";
	case COHORT_EPEERDEAD:       return "a participant died";
	case COHORT_ETIMEDOUT:       return "timed out";
	case COHORT_ELOST:           return "a message was lost with its dead sender";
	case COHORT_ECORRUPT:        return "shared data failed a bounds or canary check";
	case COHORT_ENOSPACE:        return "no space left in the segment, queue or arena";
	case COHORT_EBADREC:         return "not a cohort recording";
	case COHORT_ECOMMAND:        return "the command failed (non-zero exit or a signal)";
	case COHORT_EMIXEDJOB:       return "the recordings are of different jobs or steps";
	default:
		break;
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}
