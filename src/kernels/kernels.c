/* kernels.c: the GEMM shim over OpenBLAS (row-major), element-wise and
 * vector kernels shared by several layers and measures. */
#include "kernels/kernels.h"

#include <cblas.h>
#include <math.h>

void gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void relu_backward(float *dx, const float *y, const float *dy, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float g = dy[i]; /* loaded unconditionally: the loop vectorizes */
        dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
}

double vec_dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

double vec_norm(const float *a, size_t n) { return sqrt(vec_dot(a, a, n)); }
