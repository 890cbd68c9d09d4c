#ifndef GANFLOW_CLAPACK_SHIM_H
#define GANFLOW_CLAPACK_SHIM_H
/* LAPACK's Fortran entry points (Debian liblapack-dev ships no C header for them): the symmetric
   eigendecompositions by divide and conquer, in single and double precision, and the pivoted
   Cholesky factorisation of a semi-definite matrix. Every argument is
   passed by pointer, matrices are column-major; a symmetric matrix reads the same either way. */
void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w,
             float *work, const int *lwork, int *iwork, const int *liwork, int *info);
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info);
/* Cholesky factorisation with complete pivoting of a positive semi-definite matrix: P^T A P = L L^T
   up to the numerical rank, which it returns. */
void dpstrf_(const char *uplo, const int *n, double *a, const int *lda, int *piv, int *rank, const double *tol,
             double *work, int *info);
#endif
