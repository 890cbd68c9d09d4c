#ifndef GANFLOW_CDNNL_SHIM_H
#define GANFLOW_CDNNL_SHIM_H
#include <oneapi/dnnl/dnnl.h>

/* Swift's clang does not find <omp.h>; these are libgomp's own entry points. */
void omp_set_num_threads(int n);
int omp_get_max_threads(void);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
/* What `#pragma omp parallel num_threads(n)` compiles to: runs fn(data) on a team of n threads
   (the calling thread among them) and returns when all have finished. */
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);

/* glibc's allocator settings (mallopt), which Swift's Glibc module leaves out; the runtime fixes
   the mmap threshold at start-up (Runtime.fixAllocatorThreshold). */
#include <malloc.h>

/* DNNL_MEMORY_ALLOCATE is a cast macro and does not import. */
static inline void *ganflow_dnnl_memory_allocate(void) { return DNNL_MEMORY_ALLOCATE; }
static inline void *ganflow_dnnl_memory_none(void) { return DNNL_MEMORY_NONE; }
#endif
