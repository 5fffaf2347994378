/* dist.h: data-parallel training over MPI ranks (docs/MPI.md). Every MPI
 * call of the library is in dist.c; built without ASYM_MPI, dist.c is a
 * single process (rank 0 of 1) and every call here is a no-op. */
#ifndef ASYM_DIST_H
#define ASYM_DIST_H

#include "net/net.h"

/* This process's rank among the processes training one model, and their
 * count (0 and 1 without MPI, or after asym_dist_solo(1)). */
int dist_rank(void);
int dist_size(void);

/* The allreduce traffic of what a caller counts (the run summary counts
 * its training steps'): bytes allreduced by this process, and the seconds
 * it spent waiting for allreduces to finish (transfer and waiting for
 * slower ranks; with overlap, only the wait after the backward pass). */
typedef struct DistCount {
    uint64_t bytes;
    double seconds;
} DistCount;

/* In-place sum over every rank (MPI_Allreduce, MPI_SUM): every rank gets
 * the same bits. The traffic is added to count unless it is NULL. */
void dist_sum_f64(double *v, size_t n, DistCount *count);

/* Compares a hash of every parameter, buffer and feedback matrix across
 * ranks; on a difference every rank fails with a message naming the first
 * tensor and rank that differ from rank 0 (when says where: "at the
 * start", "after epoch 2, step 40"). */
int dist_check_same(AsymNet *net, const char *when);

/* The gradient sum of a training step. With overlap, each top-level
 * layer's gradients start their allreduce (MPI_Iallreduce, in buckets of
 * at least bucket floats) as soon as its backward pass is done; without,
 * one allreduce over the flat gradient array after the backward pass. */
typedef struct DistGrad DistGrad;
/* Its traffic is added to count, which must outlive it. */
DistGrad *dist_grad_new(AsymNet *net, int overlap, size_t bucket, DistCount *count);
void dist_grad_free(DistGrad *d);
/* Before the backward pass: arms the step's per-layer hook when overlapping. */
void dist_grad_begin(DistGrad *d, StepMode *m);
/* After it: every gradient, and every gradient a feedback matrix has of its
 * own (dkp's D, Kunin's B; not kp's B, which is W's), holds the sum over ranks. */
void dist_grad_end(DistGrad *d);

/* ---- a rank's share of a training step (share.c) ---- */

/* The mode of a training step on this rank's share of a global batch of
 * N: all of it (one process), or its rows [*lo, *lo + *n) with their
 * fraction of the gradient (*weight), batch norm synchronized over the
 * ranks when sync_bn (its traffic added to count unless NULL). A batch
 * smaller than the rank count is computed whole by every rank, each
 * weighted 1/P. */
/* This rank's rows lo .. lo + n of a batch of N (share_mode's). */
void share_rows(int N, int *lo, int *n);
StepMode share_mode(AsymNet *net, int N, int sync_bn, DistCount *count, int *lo, int *n, double *weight);
/* Floats of every batch-norm running statistic. */
size_t share_buffer_floats(AsymNet *net);
/* Sums over ranks what a step leaves beside the gradients: v[0] the
 * weighted mean loss, v[1] the hits, v[2] the stop requests, then (with
 * buffers, i.e. per-rank batch norm) every running statistic, which
 * becomes the mean over ranks. v has 3 + share_buffer_floats entries. */
void share_step_sums(AsymNet *net, double *v, int buffers, DistCount *count);
/* Whether flag is set on any rank (a stop request on one stops them all). */
int share_any(int flag);

#endif
