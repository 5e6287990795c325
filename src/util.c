/* util.c - bounded file reads and number parsing for /proc and cgroup files. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


ssize_t cohort__slurp(const char *path, char *buf, size_t size)
{
	int fd;
	size_t len = 0;
	ssize_t n;

	if (size < 2)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	for (;;) {
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			close(fd);
			return n;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == size - 1) {
			/* Full buffer: is there more? */
			char extra;
			do
				n = read(fd, &extra, 1);
			while (n < 0 && errno == EINTR);
			close(fd);
			if (n != 0)
				return -EFBIG;
			buf[len] = '\0';
			return (ssize_t)len;
		}
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

ssize_t cohort__slurpf(char *buf, size_t size, const char *fmt, ...)
{
	char path[COHORT_PATH_MAX * 2];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return cohort__slurp(path, buf, size);
}

int cohort__parse_u64(const char *s, uint64_t *ret, const char **ret_end)
{
	uint64_t v = 0;
	const char *p = s;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p < '0' || *p > '9')
		return COHORT_EPARSE;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return COHORT_ESIZE_RANGE;
	}
	*ret = v;
	if (ret_end)
		*ret_end = p;
	return 0;
}

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

int cohort__parse_cgroup_value(const char *text, uint64_t *ret)
{
	const char *p = skip_space(text), *end;
	uint64_t v;
	int r;

	if (strncmp(p, "max", 3) == 0) {
		if (*skip_space(p + 3) != '\0')
			return COHORT_EPARSE;
		*ret = UINT64_MAX;
		return 0;
	}
	r = cohort__parse_u64(p, &v, &end);
	if (r < 0)
		return r == COHORT_ESIZE_RANGE ? COHORT_EPARSE : r;
	if (*skip_space(end) != '\0')
		return COHORT_EPARSE;
	*ret = v;
	return 0;
}

int cohort__kv_u64(const char *text, const char *key, bool unit_kb, uint64_t *ret)
{
	size_t klen = strlen(key);
	const char *line = text;

	while (line && *line) {
		const char *nl = strchr(line, '\n');

		if (strncmp(line, key, klen) == 0 &&
		    (line[klen] == ' ' || line[klen] == '\t' || line[klen] == ':')) {
			const char *p = line + klen, *end;
			uint64_t v;

			if (*p == ':')
				p++;
			if (cohort__parse_u64(p, &v, &end) < 0)
				return COHORT_EPARSE;
			if (unit_kb) {
				if (strncmp(end, " kB", 3) != 0)
					return COHORT_EPARSE;
				end += 3;
				if (__builtin_mul_overflow(v, 1024, &v))
					return COHORT_EPARSE;
			}
			while (*end == ' ' || *end == '\t' || *end == '\r')
				end++;
			if (*end != '\n' && *end != '\0')
				return COHORT_EPARSE;
			*ret = v;
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int cohort__pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return n;
}

const char *cohort__getenv(const char *const *envp, const char *name)
{
	size_t len = strlen(name);

	if (!envp)
		envp = (const char *const *)environ;
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

void cohort__strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}
