/* conv2d_dnnl.h: the oneDNN convolution backend (the default build, CONV=dnnl*;
 * src/layers/conv2d_dnnl.c). conv2d.c hands a convolution's three passes to it
 * when the build has it and oneDNN implements the layer's geometry:
 *   forward          convolution_forward with W
 *   backward_input   convolution_backward_data with B passed as the weights
 *   backward_weight  convolution_backward_weights, added into dW and db
 * Without it (the default build) every call below declines (no oneDNN),
 * and the im2col + GEMM path runs. */
#ifndef ASYM_CONV2D_DNNL_H
#define ASYM_CONV2D_DNNL_H

#include "layers/layers.h"

typedef struct ConvDnnl ConvDnnl;

#ifdef ASYM_DNNL
/* Primitives for a convolution of l (W, b and the shapes set) at the
 * network's max_batch; NULL when oneDNN declines (the layer keeps im2col).
 * Reserves its workspace with layer_need_work. */
ConvDnnl *conv_dnnl_create(Layer *l, int k, int stride, int pad);
void conv_dnnl_free(ConvDnnl *d);
/* Each returns 0, or -1 when no primitive could be made for this batch
 * size and thread count (the caller falls back to im2col for the call).
 * forward adds the bias when asked. backward adds the weight gradient into
 * dW and db when dW is set (db may be NULL) and writes dx through B when dx
 * is set; with both, one after the other (dy's reordered copy made once),
 * and 1 when only the weight gradient was done. */
int conv_dnnl_forward(ConvDnnl *d, Layer *l, const float *x, float *y, int N, int bias);
int conv_dnnl_backward(ConvDnnl *d, Layer *l, const float *x, const float *dy, const float *B, float *dx, int N, float *dW, float *db);
/* "oneDNN 2.6.3 (...)": the backend's name, version and layout. */
const char *conv_dnnl_name(void);
#else
static inline ConvDnnl *conv_dnnl_create(Layer *l, int k, int stride, int pad) { return NULL; }
static inline void conv_dnnl_free(ConvDnnl *d) {}
static inline int conv_dnnl_forward(ConvDnnl *d, Layer *l, const float *x, float *y, int N, int bias) { return -1; }
static inline int conv_dnnl_backward(ConvDnnl *d, Layer *l, const float *x, const float *dy, const float *B, float *dx, int N, float *dW, float *db) { return -1; }
#endif

#endif
