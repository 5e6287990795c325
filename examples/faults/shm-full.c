/*
 * shm-full.c - a shared segment that /dev/shm cannot hold.
 *
 * What it does wrong: it creates a segment with shm_open + ftruncate and
 * maps it. ftruncate reserves nothing: tmpfs takes a page only when it is
 * first written, so the "creation" succeeds however full /dev/shm is, and
 * the first write past its free space raises SIGBUS ("Bus error") in the
 * middle of the work, long after the segment was created.
 *
 * The right way (--reserve): reserve the pages at creation with
 * posix_fallocate, which fails at once with ENOSPC and a message naming
 * the sizes; cohort_seg_create does this, after checking /dev/shm's free
 * space and the job's memory headroom.
 *
 *   shm-full [--size MiB] [--reserve]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long size_mib = 256;
	int reserve = 0;
	char name[64];
	size_t size;
	char *p;
	int fd, err;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
			size_mib = atol(argv[++i]);
		else if (strcmp(argv[i], "--reserve") == 0)
			reserve = 1;
		else {
			fprintf(stderr, "usage: shm-full [--size MiB] [--reserve]\n");
			return 2;
		}
	}
	size = (size_t)size_mib << 20;
	snprintf(name, sizeof(name), "/shm-full-example.%d", (int)getpid());
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		perror("shm_open");
		return 1;
	}
	shm_unlink(name);   /* gone with the last mapping, whatever happens */
	if (reserve) {
		err = posix_fallocate(fd, 0, (off_t)size);
		if (err) {
			fprintf(stderr, "cannot reserve %ld MiB in /dev/shm: %s\n", size_mib, strerror(err));
			return 1;
		}
	} else if (ftruncate(fd, (off_t)size) < 0) {
		perror("ftruncate");
		return 1;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	printf("segment of %ld MiB created\n", size_mib);
	fflush(stdout);
	for (size_t i = 0; i < size; i += 4096)
		p[i] = 1;   /* the SIGBUS comes here, when /dev/shm is full */
	printf("segment of %ld MiB written\n", size_mib);
	return 0;
}
