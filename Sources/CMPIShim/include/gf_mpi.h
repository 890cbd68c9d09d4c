#ifndef GF_MPI_H
#define GF_MPI_H

#include <stddef.h>

/* The few MPI calls GANFlow makes, reached through dlopen so that nothing links libmpi.
 *
 * OpenMPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are addresses of global objects in
 * libmpi; they are looked up by name with dlsym, so this header needs no <mpi.h> and the package
 * builds without MPI installed. Every function returns an MPI error code (0: success) or, for
 * gf_mpi_load, -1 with a message in `error`. Requests are opaque pointers. */

typedef enum { GF_MPI_SUM = 0, GF_MPI_MAX = 1, GF_MPI_MIN = 2 } gf_mpi_op;

/* Opens `library` (e.g. "libmpi.so.40") and resolves every symbol below. */
int gf_mpi_load(const char *library, char *error, size_t error_size);
/* MPI_Init_thread with MPI_THREAD_SERIALIZED; reports this process's rank and the world size. */
int gf_mpi_init(int *rank, int *size, int *provided);
int gf_mpi_finalize(void);
int gf_mpi_abort(int code);
/* Starts an in-place allreduce of `count` floats (sum) over MPI_COMM_WORLD. */
int gf_mpi_iallreduce_float(float *buffer, int count, gf_mpi_op op, void **request);
/* Starts an in-place allreduce of `count` doubles over MPI_COMM_WORLD. */
int gf_mpi_iallreduce_double(double *buffer, int count, gf_mpi_op op, void **request);
int gf_mpi_ibarrier(void **request);
/* MPI_Test: sets *done to 1 when the request completed (the request is then freed). */
int gf_mpi_test(void **request, int *done);
/* The text of an MPI error code. */
void gf_mpi_error_string(int code, char *text, size_t text_size);

#endif
