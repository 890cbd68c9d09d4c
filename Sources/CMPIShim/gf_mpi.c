#include "gf_mpi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* OpenMPI's C types are pointers to opaque structs; void * has the same ABI. */
typedef void *handle;

static struct {
    int loaded;
    int (*init_thread)(int *, char ***, int, int *);
    int (*finalize)(void);
    int (*abort)(handle, int);
    int (*comm_rank)(handle, int *);
    int (*comm_size)(handle, int *);
    int (*iallreduce)(const void *, void *, int, handle, handle, handle, handle *);
    int (*ibarrier)(handle, handle *);
    int (*test)(handle *, int *, void *);
    int (*error_string)(int, char *, int *);
    handle comm_world, type_float, type_double, op_sum, op_max, op_min;
} mpi;

/* MPI_IN_PLACE in OpenMPI's mpi.h. */
#define GF_IN_PLACE ((const void *)1)
/* MPI_THREAD_SERIALIZED: calls come from more than one thread, never two at once. */
#define GF_THREAD_SERIALIZED 2

int gf_mpi_load(const char *library, char *error, size_t error_size) {
    if (mpi.loaded) return 0;
    /* RTLD_GLOBAL: OpenMPI's plugins (mca_*.so) resolve libmpi's symbols from the global scope. */
    void *lib = dlopen(library, RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        snprintf(error, error_size, "%s", dlerror());
        return -1;
    }
    struct { const char *name; void **slot; } symbols[] = {
        {"MPI_Init_thread", (void **)&mpi.init_thread},
        {"MPI_Finalize", (void **)&mpi.finalize},
        {"MPI_Abort", (void **)&mpi.abort},
        {"MPI_Comm_rank", (void **)&mpi.comm_rank},
        {"MPI_Comm_size", (void **)&mpi.comm_size},
        {"MPI_Iallreduce", (void **)&mpi.iallreduce},
        {"MPI_Ibarrier", (void **)&mpi.ibarrier},
        {"MPI_Test", (void **)&mpi.test},
        {"MPI_Error_string", (void **)&mpi.error_string},
        {"ompi_mpi_comm_world", &mpi.comm_world},
        {"ompi_mpi_float", &mpi.type_float},
        {"ompi_mpi_double", &mpi.type_double},
        {"ompi_mpi_op_sum", &mpi.op_sum},
        {"ompi_mpi_op_max", &mpi.op_max},
        {"ompi_mpi_op_min", &mpi.op_min},
    };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        void *p = dlsym(lib, symbols[i].name);
        if (!p) {
            snprintf(error, error_size, "%s has no symbol %s (GANFlow expects OpenMPI 4)", library, symbols[i].name);
            return -1;
        }
        *symbols[i].slot = p;
    }
    mpi.loaded = 1;
    return 0;
}

int gf_mpi_init(int *rank, int *size, int *provided) {
    int rc = mpi.init_thread(NULL, NULL, GF_THREAD_SERIALIZED, provided);
    if (rc) return rc;
    rc = mpi.comm_rank(mpi.comm_world, rank);
    if (rc) return rc;
    return mpi.comm_size(mpi.comm_world, size);
}

int gf_mpi_finalize(void) { return mpi.finalize(); }

int gf_mpi_abort(int code) { return mpi.abort(mpi.comm_world, code); }

static handle op_handle(gf_mpi_op op) {
    switch (op) {
    case GF_MPI_MAX: return mpi.op_max;
    case GF_MPI_MIN: return mpi.op_min;
    default: return mpi.op_sum;
    }
}

int gf_mpi_iallreduce_float(float *buffer, int count, gf_mpi_op op, void **request) {
    return mpi.iallreduce(GF_IN_PLACE, buffer, count, mpi.type_float, op_handle(op), mpi.comm_world, request);
}

int gf_mpi_iallreduce_double(double *buffer, int count, gf_mpi_op op, void **request) {
    return mpi.iallreduce(GF_IN_PLACE, buffer, count, mpi.type_double, op_handle(op), mpi.comm_world, request);
}

int gf_mpi_ibarrier(void **request) { return mpi.ibarrier(mpi.comm_world, request); }

int gf_mpi_test(void **request, int *done) {
    /* MPI_STATUS_IGNORE is a null pointer in OpenMPI. */
    return mpi.test(request, done, NULL);
}

void gf_mpi_error_string(int code, char *text, size_t text_size) {
    if (!mpi.loaded || text_size == 0) {
        snprintf(text, text_size, "MPI error %d", code);
        return;
    }
    char buffer[512]; /* MPI_MAX_ERROR_STRING is 256 in OpenMPI */
    int length = 0;
    if (mpi.error_string(code, buffer, &length) != 0) {
        snprintf(text, text_size, "MPI error %d", code);
        return;
    }
    snprintf(text, text_size, "%.*s", length, buffer);
}
