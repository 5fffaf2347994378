/* conv2d.c: 2-D convolution (square kernel k, stride s, zero padding p).
 * x is (N, C, H, W), W is (O, C, k, k), b is (O), y is (N, O, OH, OW);
 * K = C k k rows of a column matrix, P = OH OW output positions.
 *
 * The batch is split into a fixed number of sample groups (at most 16, set
 * when the network is built), which the threads share out; each group
 * works through its samples a few at a time, with a column matrix (im2col)
 * small enough to stay in cache, and calls single-threaded GEMMs (OpenBLAS
 * runs single-threaded inside an OpenMP region: one thread pool):
 *   forward   y_n (O, P) = W (O, K) col_n (K, P) + b
 *   weight    dW^T (K, O) += col_n dy_n^T, per group, then summed over the
 *             groups in order (the same floats on any number of threads)
 *   input     dcol (K, P) = B^T (K, O) dy_n (O, P), then col2im into dx_n,
 *             with B the feedback module's matrix (W's shape); for a
 *             stride-1 convolution that keeps the input's size (and has
 *             O < 1.5 C), dx_n (C, P) = Bt (C, O k k) im2col(dy_n) with Bt
 *             B's kernels rotated by 180 degrees: the transposed
 *             convolution as a convolution, with no col2im.
 * A 1x1 convolution with stride 1 and no padding uses x_n as its column
 * matrix; a kernel covering the whole unpadded input (one output position)
 * is a fully connected layer: one multi-threaded GEMM over the batch.
 * Stride-1 convolutions that keep the input's size copy each kernel tap as
 * one shifted plane; unpadded stride-1 ones ("wide") compute OH rows of W
 * positions (OW of them valid), so that each tap is one contiguous run of
 * the input and col2im one contiguous add, at the cost of W - OW discarded
 * columns per row.
 *
 * Built with oneDNN (the default build; not make CONV=im2col), every convolution but the dense case runs
 * on oneDNN's primitives instead (conv2d_dnnl.c), B still passed where W
 * would be; the im2col path stays for what oneDNN declines. */
#include <string.h>

#include "layers/conv2d_dnnl.h"
#include "layers/layers.h"

enum { CONV_IM2COL, CONV_POINTWISE, CONV_DENSE };

#define CONV_GROUPS 16          /* sample groups, most threads that share a convolution */
#define CONV_COL_FLOATS 49152   /* a chunk's column matrix stays below this (192 KB) */
#define CONV_WORK_FLOATS (8u << 20) /* fewer groups when their buffers would pass this */

typedef struct Conv {
    int k, stride, pad;
    int mode;
    int wide;    /* stride 1, no padding, OW < W: rows of W positions */
    int tdx;     /* same size: dx is the convolution of dy with B rotated (see conv_backward_core) */
    int rows;    /* rows of a group's column matrix: K, or O k k when larger under tdx */
    int groups;  /* sample groups at max_batch */
    int chunk;   /* samples per column matrix */
    ConvDnnl *dnnl; /* the oneDNN backend's primitives, or NULL */
} Conv;

static size_t conv_K(const Layer *l) {
    const Conv *c = l->impl;
    return (size_t)l->in.c * c->k * c->k;
}

static size_t conv_P(const Layer *l) { return (size_t)l->out.h * l->out.w; }

/* Positions per sample in the column matrix: OH rows of W for a wide convolution. */
static size_t conv_Pw(const Layer *l) {
    const Conv *c = l->impl;
    return (size_t)l->out.h * (c->wide ? l->in.w : l->out.w);
}

/* Workspace: per-group dW^T partials (groups, K, O), bias partials
 * (groups, O), the rotated feedback matrix (C, O k k) under tdx, then per
 * group a column matrix (rows, chunk Pw) and an output matrix (O, chunk Pw). */
static size_t group_floats(const Layer *l) {
    const Conv *c = l->impl;
    return ((size_t)c->rows + l->out.c) * c->chunk * conv_Pw(l);
}

static size_t shared_floats(const Layer *l) {
    const Conv *c = l->impl;
    return (size_t)c->groups * (conv_K(l) + 1) * l->out.c + (c->tdx ? conv_K(l) * l->out.c : 0);
}

static float *ws_partial(const Layer *l) { return layer_work(l); }
static float *ws_bias(const Layer *l) {
    const Conv *c = l->impl;
    return layer_work(l) + (size_t)c->groups * conv_K(l) * l->out.c;
}
static float *ws_rotated(const Layer *l) {
    const Conv *c = l->impl;
    return ws_bias(l) + (size_t)c->groups * l->out.c;
}
static float *ws_col(const Layer *l, int g) { return layer_work(l) + shared_floats(l) + g * group_floats(l); }
static float *ws_out(const Layer *l, int g) {
    const Conv *c = l->impl;
    return ws_col(l, g) + (size_t)c->rows * c->chunk * conv_Pw(l);
}

/* Groups for a batch of N: fewer samples than groups gives one each. */
static int n_groups(const Layer *l, int N) {
    const Conv *c = l->impl;
    return N < c->groups ? N : c->groups;
}

/* Output positions ow in [lo, hi) read input column ow s - p + kj inside [0, W). */
static void valid_range(int kj, int s, int p, int W, int OW, int *lo, int *hi) {
    int a = p - kj, b = W - 1 + p - kj;
    *lo = a > 0 ? (a + s - 1) / s : 0;
    *hi = b < 0 ? 0 : b / s + 1;
    if (*hi > OW) *hi = OW;
    if (*lo > *hi) *lo = *hi;
}

/* A stride-1 convolution whose output has the input's size (pad (k - 1) / 2):
 * each row of the column matrix is the input plane shifted by a constant
 * offset, with the columns that fall off an edge set to zero. */
static int same_size(const Layer *l) {
    const Conv *c = l->impl;
    return c->stride == 1 && l->out.h == l->in.h && l->out.w == l->in.w;
}

/* Rows oh of the output in [lo, hi) read input rows inside [0, H) at offset d = ki - p. */
static void valid_rows(int d, int H, int *lo, int *hi) {
    *lo = d < 0 ? -d : 0;
    *hi = H - (d > 0 ? d : 0);
    if (*hi < *lo) *hi = *lo;
}

/* Zeroes columns [0, lo) and [hi, OW) of each of the rows [r0, r1) of r
 * (rows of OW). A few entries per row: stored one by one, as a loop over
 * each range would become a library call per row. */
static void zero_edges(float *r, int OW, int lo, int hi, int r0, int r1) {
    int idx[16], n = 0;
    if (lo + OW - hi > 16) {
        for (int oh = r0; oh < r1; oh++) {
            memset(r + (size_t)oh * OW, 0, sizeof(float) * lo);
            memset(r + (size_t)oh * OW + hi, 0, sizeof(float) * (OW - hi));
        }
        return;
    }
    for (int ow = 0; ow < lo; ow++) idx[n++] = ow;
    for (int ow = hi; ow < OW; ow++) idx[n++] = ow;
    for (int oh = r0; oh < r1; oh++)
        for (int t = 0; t < n; t++) r[(size_t)oh * OW + idx[t]] = 0.0f;
}

/* One row of the column matrix, (OH, OW), for kernel tap (ki, kj) of plane xp (H, W). */
static void im2col_row(const Layer *l, const float *xp, int ki, int kj, float *r) {
    const Conv *c = l->impl;
    int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, s = c->stride, p = c->pad;
    int lo, hi;
    valid_range(kj, s, p, W, OW, &lo, &hi);
    if (same_size(l)) {
        int rlo, rhi, di = ki - p, dj = kj - p;
        valid_rows(di, H, &rlo, &rhi);
        long d = (long)di * W + dj, i0 = (long)rlo * W, i1 = (long)rhi * W;
        for (long i = 0; i < i0; i++) r[i] = 0.0f;
        for (long i = i1; i < (long)OH * OW; i++) r[i] = 0.0f;
        /* the valid rows as one run; entries that wrap across a row edge are zeroed after */
        long a = i0 > -d ? i0 : -d, b = i1 < (long)H * W - d ? i1 : (long)H * W - d;
        for (long i = i0; i < a; i++) r[i] = 0.0f;
        memcpy(r + a, xp + a + d, sizeof(float) * (b > a ? b - a : 0));
        for (long i = b > a ? b : a; i < i1; i++) r[i] = 0.0f;
        zero_edges(r, OW, lo, hi, rlo, rhi);
        return;
    }
    zero_edges(r, OW, lo, hi, 0, OH);
    for (int oh = 0; oh < OH; oh++, r += OW) {
        int ih = oh * s - p + ki;
        if (ih < 0 || ih >= H) {
            memset(r, 0, sizeof(float) * OW);
            continue;
        }
        const float *xr = xp + (size_t)ih * W + kj - p;
        if (s == 1) {
#pragma omp simd
            for (int ow = lo; ow < hi; ow++) r[ow] = xr[ow];
        } else {
            for (int ow = lo; ow < hi; ow++) r[ow] = xr[ow * s];
        }
    }
}

/* Columns [j Pw, (j + 1) Pw) of col (planes k k, ld) from sample j of the m
 * at x, each `planes` planes of the input's size, `per` floats apart. Also,
 * under tdx, the column matrix (O k k, ld) of m output gradients (O, H, W):
 * im2col of a same-size convolution with O input channels. */
static void im2col_planes(const Layer *l, const float *x, int m, int planes, size_t per, float *col, size_t ld) {
    const Conv *c = l->impl;
    int k = c->k;
    size_t P = conv_Pw(l), HW = (size_t)l->in.h * l->in.w;
    for (int j = 0; j < m; j++)
        for (int ch = 0; ch < planes; ch++)
            for (int ki = 0; ki < k; ki++)
                for (int kj = 0; kj < k; kj++) im2col_row(l, x + j * per + ch * HW, ki, kj, col + ((size_t)(ch * k + ki) * k + kj) * ld + j * P);
}

/* Columns [j Pw, (j + 1) Pw) of col (K, ld) from image j of the m at x (C, H, W). */
static void im2col(const Layer *l, const float *x, int m, float *col, size_t ld) {
    const Conv *c = l->impl;
    int C = l->in.c, H = l->in.h, W = l->in.w, k = c->k;
    size_t P = conv_Pw(l), in = shape_size(l->in);
    if (c->wide) {
        /* tap (ki, kj) of output row oh, column ow is x[oh + ki][ow + kj]: one run of
         * (OH - 1) W + OW values; the rest of the last row is zeroed */
        size_t run = (size_t)(l->out.h - 1) * W + l->out.w;
        for (int j = 0; j < m; j++)
            for (int ch = 0; ch < C; ch++)
                for (int ki = 0; ki < k; ki++)
                    for (int kj = 0; kj < k; kj++) {
                        float *r = col + ((size_t)(ch * k + ki) * k + kj) * ld + j * P;
                        memcpy(r, x + j * in + ((size_t)ch * H + ki) * W + kj, sizeof(float) * run);
                        memset(r + run, 0, sizeof(float) * (P - run));
                    }
        return;
    }
    im2col_planes(l, x, m, C, in, col, ld);
}

/* Bt (C, O k k) with Bt[c][o][i][j] = B[o][c][k-1-i][k-1-j]. */
static void rotate_kernel(const Layer *l, const float *B, float *Bt) {
    const Conv *c = l->impl;
    int C = l->in.c, O = l->out.c, k = c->k;
    for (int ch = 0; ch < C; ch++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++) Bt[(((size_t)ch * O + o) * k + i) * k + j] = B[(((size_t)o * C + ch) * k + k - 1 - i) * k + k - 1 - j];
}

/* Adds one row of the column matrix, r (OH, OW), for tap (ki, kj) into
 * plane dp (H, W); r is scratch and may be changed. */
static void col2im_row(const Layer *l, float *r, int ki, int kj, float *dp) {
    const Conv *c = l->impl;
    int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, s = c->stride, p = c->pad;
    int lo, hi;
    valid_range(kj, s, p, W, OW, &lo, &hi);
    if (same_size(l)) {
        int rlo, rhi, di = ki - p, dj = kj - p;
        valid_rows(di, H, &rlo, &rhi);
        /* entries that would wrap across a row edge belong to padding: zero them, then add the run */
        zero_edges(r, OW, lo, hi, rlo, rhi);
        long d = (long)di * W + dj, i0 = (long)rlo * W, i1 = (long)rhi * W;
        long a = i0 > -d ? i0 : -d, b = i1 < (long)H * W - d ? i1 : (long)H * W - d;
        float *dd = dp + d;
#pragma omp simd
        for (long i = a; i < b; i++) dd[i] += r[i];
        return;
    }
    for (int oh = 0; oh < OH; oh++, r += OW) {
        int ih = oh * s - p + ki;
        if (ih < 0 || ih >= H) continue;
        float *xr = dp + (size_t)ih * W + kj - p;
        if (s == 1) {
#pragma omp simd
            for (int ow = lo; ow < hi; ow++) xr[ow] += r[ow];
        } else {
            for (int ow = lo; ow < hi; ow++) xr[ow * s] += r[ow];
        }
    }
}

/* Images j of the m at dx (C, H, W) from columns [j Pw, (j + 1) Pw) of col
 * (K, ld), which is used as scratch. */
static void col2im(const Layer *l, float *col, size_t ld, int m, float *dx) {
    const Conv *c = l->impl;
    int C = l->in.c, H = l->in.h, W = l->in.w, k = c->k;
    size_t P = conv_Pw(l), in = shape_size(l->in);
    memset(dx, 0, sizeof(float) * in * m);
    if (c->wide) {
        /* the discarded columns hold zeros (dy was zero there): each tap is one contiguous add */
        size_t run = (size_t)(l->out.h - 1) * W + l->out.w;
        for (int j = 0; j < m; j++)
            for (int ch = 0; ch < C; ch++)
                for (int ki = 0; ki < k; ki++)
                    for (int kj = 0; kj < k; kj++) {
                        const float *r = col + ((size_t)(ch * k + ki) * k + kj) * ld + j * P;
                        float *d = dx + j * in + ((size_t)ch * H + ki) * W + kj;
#pragma omp simd
                        for (size_t i = 0; i < run; i++) d[i] += r[i];
                    }
        return;
    }
    for (int j = 0; j < m; j++)
        for (int ch = 0; ch < C; ch++)
            for (int ki = 0; ki < k; ki++)
                for (int kj = 0; kj < k; kj++)
                    col2im_row(l, col + ((size_t)(ch * k + ki) * k + kj) * ld + j * P, ki, kj, dx + j * in + (size_t)ch * H * W);
}

/* The column matrix of the m samples at x: x itself for a pointwise
 * convolution (m is 1 then), else built in col. */
static const float *columns(const Layer *l, const float *x, int m, float *col) {
    const Conv *c = l->impl;
    if (c->mode == CONV_POINTWISE) return x;
    im2col(l, x, m, col, (size_t)m * conv_Pw(l));
    return col;
}

/* ---- one output position: a fully connected layer over the batch ---- */

static void dense_forward(Layer *l, const float *x, float *y, int N, const Pass *p) {
    int K = (int)conv_K(l), O = l->out.c;
    gemm(0, 1, N, O, K, 1.0f, x, K, l->W->w, K, 0.0f, y, O);
    if (l->b && !p->no_bias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++) y[(size_t)n * O + o] += l->b->w[o];
}

static void dense_backward(Layer *l, const float *x, const float *dy, float *dx, const float *B, float *dW, float *db, int N) {
    int K = (int)conv_K(l), O = l->out.c;
    if (dW) {
        gemm(1, 0, O, K, N, 1.0f, dy, O, x, K, 1.0f, dW, K); /* dW (O, K) += dy^T x */
        if (db)
            for (int n = 0; n < N; n++)
                for (int o = 0; o < O; o++) db[o] += dy[(size_t)n * O + o];
    }
    if (dx) gemm(0, 0, N, K, O, 1.0f, dy, O, B, K, 0.0f, dx, K); /* dx (N, K) = dy B */
}

/* ---- the general case ---- */

static void conv_forward(Layer *l, const float *x, float *y, int N, const Pass *p) {
    const Conv *c = l->impl;
    if (c->mode == CONV_DENSE) {
        dense_forward(l, x, y, N, p);
        return;
    }
    if (c->dnnl && !conv_dnnl_forward(c->dnnl, l, x, y, N, !p->no_bias)) return;
    int O = l->out.c, K = (int)conv_K(l), G = n_groups(l, N), OH = l->out.h, OW = l->out.w, RW = c->wide ? l->in.w : OW;
    size_t P = conv_P(l), Pw = conv_Pw(l), in = shape_size(l->in), out = shape_size(l->out);
    const float *W = l->W->w, *b = l->b && !p->no_bias ? l->b->w : NULL;
#pragma omp parallel for schedule(static)
    for (int g = 0; g < G; g++) {
        int n1 = (int)((long)(g + 1) * N / G);
        float *col = ws_col(l, g), *tmp = ws_out(l, g);
        for (int n = (int)((long)g * N / G); n < n1; n += c->chunk) {
            int m = n1 - n < c->chunk ? n1 - n : c->chunk, mP = m * (int)Pw;
            const float *cm = columns(l, x + n * in, m, col);
            float *yn = y + n * out;
            if (m == 1 && !c->wide) {
                gemm(0, 0, O, mP, K, 1.0f, W, K, cm, mP, 0.0f, yn, mP);
                if (b)
                    for (int o = 0; o < O; o++) {
                        float bo = b[o], *yo = yn + o * P;
#pragma omp simd
                        for (size_t i = 0; i < P; i++) yo[i] += bo;
                    }
                continue;
            }
            /* (O, m Pw) for the chunk, then each sample's valid positions */
            gemm(0, 0, O, mP, K, 1.0f, W, K, cm, mP, 0.0f, tmp, mP);
            for (int j = 0; j < m; j++)
                for (int o = 0; o < O; o++) {
                    float bo = b ? b[o] : 0.0f;
                    for (int oh = 0; oh < OH; oh++) {
                        const float *t = tmp + (size_t)o * mP + j * Pw + (size_t)oh * RW;
                        float *yo = yn + j * out + o * P + (size_t)oh * OW;
#pragma omp simd
                        for (int i = 0; i < OW; i++) yo[i] = t[i] + bo;
                    }
                }
        }
    }
}

/* dy of m samples as one (O, m Pw) matrix in tmp, zero at the positions
 * a wide convolution discards; one sample in the plain layout is dy itself. */
static const float *dy_matrix(const Layer *l, const float *dy, int m, float *tmp) {
    const Conv *c = l->impl;
    if (m == 1 && !c->wide) return dy;
    int O = l->out.c, OH = l->out.h, OW = l->out.w, RW = c->wide ? l->in.w : OW;
    size_t P = conv_P(l), Pw = conv_Pw(l), out = shape_size(l->out), mP = (size_t)m * Pw;
    for (int o = 0; o < O; o++)
        for (int j = 0; j < m; j++) {
            float *t = tmp + (size_t)o * mP + j * Pw;
            const float *d = dy + j * out + o * P;
            if (!c->wide) {
                memcpy(t, d, sizeof(float) * P);
                continue;
            }
            for (int oh = 0; oh < OH; oh++, t += RW, d += OW) {
                memcpy(t, d, sizeof(float) * OW);
                memset(t + OW, 0, sizeof(float) * (RW - OW));
            }
        }
    return tmp;
}

/* dW and db (when set) plus the G groups' partial sums, added in double
 * in group order. */
static void add_partials(const Layer *l, int G, const float *part, const float *pbias, float *dW, float *db) {
    int O = l->out.c, K = (int)conv_K(l);
#pragma omp parallel for schedule(static)
    for (int o = 0; o < O; o++) {
        for (int k = 0; k < K; k++) {
            double s = 0.0;
            for (int g = 0; g < G; g++) s += part[((size_t)g * K + k) * O + o];
            dW[(size_t)o * K + k] += (float)s;
        }
        if (db) {
            double s = 0.0;
            for (int g = 0; g < G; g++) s += pbias[(size_t)g * O + o];
            db[o] += (float)s;
        }
    }
}

/* The weight gradient added into dW and db (when dW is set; db may be
 * NULL) and the input gradient through B (when dx is set). */
static void conv_backward_core(Layer *l, const float *x, const float *dy, float *dx, const float *B, float *dW, float *db, int N) {
    const Conv *c = l->impl;
    if (c->mode == CONV_DENSE) {
        dense_backward(l, x, dy, dx, B, dW, db, N);
        return;
    }
    if (c->dnnl) {
        int rc = conv_dnnl_backward(c->dnnl, l, x, dy, B, dx, N, dW, db);
        if (!rc) return;
        if (rc > 0) dW = NULL; /* the weight gradient is in; dx on im2col */
    }
    int O = l->out.c, K = (int)conv_K(l), G = n_groups(l, N);
    size_t P = conv_P(l), Pw = conv_Pw(l), in = shape_size(l->in), out = shape_size(l->out);
    float *part = ws_partial(l), *pbias = ws_bias(l), *Bt = ws_rotated(l);
    if (dx && c->tdx) rotate_kernel(l, B, Bt);
#pragma omp parallel for schedule(static)
    for (int g = 0; g < G; g++) {
        int n1 = (int)((long)(g + 1) * N / G);
        float *col = ws_col(l, g), *pw = part + (size_t)g * K * O, *pb = pbias + (size_t)g * O;
        if (dW) memset(pw, 0, sizeof(float) * K * O), memset(pb, 0, sizeof(float) * O);
        for (int n = (int)((long)g * N / G); n < n1; n += c->chunk) {
            int m = n1 - n < c->chunk ? n1 - n : c->chunk, mP = m * (int)Pw;
            const float *dyc = dy_matrix(l, dy + n * out, m, ws_out(l, g));
            if (dW) {
                const float *cm = columns(l, x + n * in, m, col);
                gemm(0, 1, K, O, mP, 1.0f, cm, mP, dyc, mP, 1.0f, pw, O); /* dW^T (K, O) += col dy^T */
                if (db)
                    for (int o = 0; o < O; o++) {
                        const float *r = dyc + (size_t)o * mP;
                        float s = 0.0f;
#pragma omp simd reduction(+ : s)
                        for (int i = 0; i < mP; i++) s += r[i];
                        pb[o] += s;
                    }
            }
            if (!dx) continue;
            if (c->mode == CONV_POINTWISE) {
                gemm(1, 0, K, mP, O, 1.0f, B, K, dyc, mP, 0.0f, dx + n * in, mP); /* dx_n (C, P) = B^T dy_n */
                continue;
            }
            if (c->tdx) {
                /* dx (C, H W) = Bt (C, O k k) im2col(dy): no col2im pass, nor a zeroed
                 * (K, P) product; one sample at a time, straight into dx */
                int C = l->in.c, Ok = O * c->k * c->k;
                for (int j = 0; j < m; j++) {
                    im2col_planes(l, dy + (size_t)(n + j) * out, 1, O, out, col, P);
                    gemm(0, 0, C, (int)P, Ok, 1.0f, Bt, Ok, col, (int)P, 0.0f, dx + (size_t)(n + j) * in, (int)P);
                }
                continue;
            }
            gemm(1, 0, K, mP, O, 1.0f, B, K, dyc, mP, 0.0f, col, mP); /* dcol (K, m Pw) = B^T dy */
            col2im(l, col, mP, m, dx + n * in);
        }
    }
    if (dW) add_partials(l, G, part, pbias, dW, db);
}

void conv2d_backward_weight(Layer *l, const float *x, const float *dy, int N, float *dW, float *db) { conv_backward_core(l, x, dy, NULL, NULL, dW, db, N); }

void conv2d_backward_input(Layer *l, const float *B, const float *dy, float *dx, int N) { conv_backward_core(l, NULL, dy, dx, B, NULL, NULL, N); }

static void conv_backward(Layer *l, const float *x, const float *y, const float *dy, float *dx, int N, const Pass *p) {
    conv_backward_core(l, x, dy, dx, dx ? layer_feedback_matrix(l, p) : NULL, l->W->g, l->b ? l->b->g : NULL, N);
    if (dx) layer_clip_dx(l, p, dx, N);
}

void conv2d_geometry(const Layer *l, int *k, int *stride, int *pad) {
    const Conv *c = l->impl;
    *k = c->k, *stride = c->stride, *pad = c->pad;
}

int conv2d_on_dnnl(const Layer *l) { return ((const Conv *)l->impl)->dnnl != NULL; }

static void conv_free(Layer *l) {
    Conv *c = l->impl;
    conv_dnnl_free(c->dnnl);
}

const char *asym_conv_backend(void) {
#ifdef ASYM_DNNL
    return conv_dnnl_name();
#else
    return "im2col + OpenBLAS";
#endif
}

static const LayerOps conv_ops = {.name = "conv", .forward = conv_forward, .backward = conv_backward, .free = conv_free, .backward_weight = conv2d_backward_weight, .backward_input = conv2d_backward_input};

Layer *conv2d_create(const AsymLayerSpec *s, Shape in, NetCtx *ctx, const char *name) {
    int k = s->k, st = s->stride ? s->stride : 1, p = s->pad;
    if (s->out <= 0 || k <= 0 || st <= 0 || p < 0) {
        asym_fail("layer %s (line %d): conv needs out > 0, k > 0, stride > 0, pad >= 0", name, s->line);
        return NULL;
    }
    Shape out = {s->out, (in.h + 2 * p - k) / st + 1, (in.w + 2 * p - k) / st + 1};
    if (in.h + 2 * p < k || in.w + 2 * p < k) {
        asym_fail("layer %s (line %d): conv kernel %d is larger than its padded %dx%d input", name, s->line, k, in.h + 2 * p, in.w + 2 * p);
        return NULL;
    }
    Layer *l = layer_new(&conv_ops, s, in, out, ctx, name, sizeof(Conv));
    if (!l) return NULL;
    Conv *c = l->impl;
    c->k = k, c->stride = st, c->pad = p;
    c->mode = p == 0 && k == in.h && k == in.w ? CONV_DENSE : k == 1 && st == 1 && p == 0 ? CONV_POINTWISE : CONV_IM2COL;
    c->wide = c->mode == CONV_IM2COL && st == 1 && p == 0 && out.w < in.w;
    /* dcol = B^T dy then col2im passes over (C k k, P) three times; im2col of
     * dy writes (O k k, P) once and the GEMM reads it: cheaper while O < 1.5 C */
    c->tdx = c->mode == CONV_IM2COL && st == 1 && out.h == in.h && out.w == in.w && 2 * s->out <= 3 * in.c;
    c->rows = in.c * k * k;
    if (c->tdx && s->out * k * k > c->rows) c->rows = s->out * k * k;
    int wshape[4] = {s->out, in.c, k, k};
    if (layer_add_weights(l, s, 4, wshape, in.c * k * k, s->out * k * k)) return layer_free(l);
    if (c->mode != CONV_DENSE) {
        size_t K = conv_K(l), P = conv_Pw(l), per = (size_t)ctx->max_batch;
        c->groups = ctx->max_batch < CONV_GROUPS ? ctx->max_batch : CONV_GROUPS;
        per = (per + c->groups - 1) / c->groups;
        c->chunk = c->mode == CONV_POINTWISE ? 1 : (int)(CONV_COL_FLOATS / (K * P));
        if (c->chunk < 1) c->chunk = 1;
        if ((size_t)c->chunk > per) c->chunk = (int)per;
        while (c->groups > 1 && shared_floats(l) + c->groups * group_floats(l) > CONV_WORK_FLOATS) c->groups /= 2;
        layer_need_work(l, shared_floats(l) + c->groups * group_floats(l));
        c->dnnl = conv_dnnl_create(l, k, st, p);
    }
    return l;
}
