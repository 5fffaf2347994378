/* base.h: what every module of libasymbp shares: the error buffer behind
 * asym_last_error(), checked allocation, the random generator (xoshiro256**
 * seeded by splitmix64), the clock. */
#ifndef ASYM_BASE_H
#define ASYM_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "asymbp.h"

/* A function that is worth a second copy compiled for AVX2, picked when
 * the library loads on a processor that has it (the build's baseline is
 * x86-64-v2): integer-heavy loops such as hashing, which the baseline runs
 * four lanes wide. The same results on either copy. */
#if defined(__x86_64__) && defined(__GNUC__)
#define ASYM_AVX2_CLONE __attribute__((target_clones("avx2", "default")))
#else
#define ASYM_AVX2_CLONE
#endif

/* An explicit generator state, passed by pointer (xoshiro256**). */
typedef struct AsymRng {
    uint64_t s[4];
} AsymRng;
void asym_rng_seed(AsymRng *r, uint64_t seed);

/* Records a message for asym_last_error() and returns ASYM_ERR. The message
 * should say what and where: "data/x.idx: offset 16: ...". */
int asym_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocation that records an error instead of returning silently: callers
 * still check for NULL and return ASYM_ERR. Memory is zeroed. */
void *asym_calloc(size_t n, size_t size);
/* 64-byte aligned, zeroed; free with free(). */
float *asym_falloc(size_t n);

/* Random numbers: all randomness flows from an explicit AsymRng. */
void rng_seed(AsymRng *r, uint64_t seed);
uint64_t rng_next(AsymRng *r);
uint32_t rng_u32(AsymRng *r);
double rng_uniform(AsymRng *r); /* [0, 1) */
float rng_normal(AsymRng *r);   /* standard normal, Box-Muller */
uint32_t rng_below(AsymRng *r, uint32_t n); /* uniform integer in [0, n) */
void rng_shuffle(AsymRng *r, int *a, int n);
/* An independent stream derived from r without advancing the caller twice. */
AsymRng rng_split(AsymRng *r);
/* A generator that is a pure function of (seed, a, b), drawn from no
 * stream: counter-based choices (a sample's augmentation in an epoch) come
 * out the same in any order, thread or rank. */
AsymRng rng_keyed(uint64_t seed, uint64_t a, uint64_t b);

/* Wall clock in seconds. */
double asym_now(void);

#endif
