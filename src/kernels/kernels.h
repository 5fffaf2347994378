/* kernels.h: numeric kernels on plain arrays, pointers and sizes in,
 * numbers out; they depend on nothing else of the library. Row-major. */
#ifndef ASYM_KERNELS_H
#define ASYM_KERNELS_H

#include <stddef.h>

/* C = alpha op(A) op(B) + beta C (OpenBLAS's sgemm); op transposes when
 * transA / transB; C is (M, N), K the inner size. */
void gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* dx = dy where y > 0, else 0 (n entries) */
void relu_backward(float *dx, const float *y, const float *dy, size_t n);
/* sum of a[i] b[i] and |a|, accumulated in double, in index order */
double vec_dot(const float *a, const float *b, size_t n);
double vec_norm(const float *a, size_t n);

#endif
