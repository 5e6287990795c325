/*
 * mpi_over.c - an MPI program in which one rank takes more than its share.
 *
 * Every rank holds HOLD MiB (touched); rank GROW then grows by 16 MiB
 * every 50 ms up to GROW_TO MiB, touching every page, while the others
 * sleep. All meet at a barrier when rank GROW is done, or after SECONDS.
 * Run as users run MPI programs under cohort:
 *
 *     mpicc -o mpi_over mpi_over.c
 *     cohort run -n 1 -m 700M -- mpirun -np 4 ./mpi_over
 *
 * Options (in this order or any): --hold MIB --grow-rank R --grow-to MIB --seconds S
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Every chunk taken, chained: kept reachable so the compiler cannot drop it. */
static void *volatile kept;

static void take(size_t mib)
{
	char *p = malloc(mib << 20);

	if (!p) {
		fprintf(stderr, "mpi_over: cannot allocate %zu MiB\n", mib);
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	memset(p, 1, mib << 20);   /* real pages, not a promise */
	memcpy(p, (void *const *)&kept, sizeof(void *));
	kept = p;
}

int main(int argc, char **argv)
{
	long hold = 40, grow_rank = 2, grow_to = 1024, seconds = 20;
	int rank, size;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	for (int i = 1; i + 1 < argc; i += 2) {
		long v = atol(argv[i + 1]);

		if (strcmp(argv[i], "--hold") == 0) hold = v;
		else if (strcmp(argv[i], "--grow-rank") == 0) grow_rank = v;
		else if (strcmp(argv[i], "--grow-to") == 0) grow_to = v;
		else if (strcmp(argv[i], "--seconds") == 0) seconds = v;
		else {
			fprintf(stderr, "mpi_over: unknown option '%s'\n", argv[i]);
			MPI_Abort(MPI_COMM_WORLD, 2);
		}
	}
	printf("mpi_over: rank %d of %d is pid %d\n", rank, size, (int)getpid());
	fflush(stdout);
	take((size_t)hold);
	if (rank == grow_rank) {
		for (long have = hold; have < grow_to; have += 16) {
			take(16);
			nap(50);
		}
		printf("rank %d of %d grew to %ld MiB\n", rank, size, grow_to);
	} else {
		/* Sleep, not spin at the barrier: four ranks share two CPUs. */
		nap(seconds * 1000);
	}
	fflush(stdout);
	MPI_Barrier(MPI_COMM_WORLD);
	MPI_Finalize();
	return 0;
}
