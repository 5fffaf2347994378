/* kernels.c: the GEMM shim over OpenBLAS (row-major) and element-wise
 * kernels shared by several layers. */
#include <cblas.h>

#include "layers/layers.h"

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
