/* util.c: error buffer, allocation, random generator (xoshiro256** of
 * Blackman and Vigna, seeded by splitmix64), clock. */
#include "base/base.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local char err_buf[1024];

const char *asym_last_error(void) { return err_buf[0] ? err_buf : "no error"; }

int asym_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return ASYM_ERR;
}

void *asym_calloc(size_t n, size_t size) {
    void *p = (n && size) ? calloc(n, size) : calloc(1, 1);
    if (!p) asym_fail("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

float *asym_falloc(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (n > SIZE_MAX / sizeof(float) / 2) {
        asym_fail("out of memory: %zu floats", n);
        return NULL;
    }
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        asym_fail("out of memory allocating %zu floats", n);
        return NULL;
    }
    memset(p, 0, bytes ? bytes : 64);
    return p;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rng_seed(AsymRng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void asym_rng_seed(AsymRng *r, uint64_t seed) { rng_seed(r, seed); }

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(AsymRng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t rng_u32(AsymRng *r) { return (uint32_t)(rng_next(r) >> 32); }

double rng_uniform(AsymRng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

float rng_normal(AsymRng *r) {
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

uint32_t rng_below(AsymRng *r, uint32_t n) {
    /* Lemire's nearly divisionless method, with rejection for exactness. */
    uint64_t m = (uint64_t)rng_u32(r) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = -n % n;
        while (l < t) {
            m = (uint64_t)rng_u32(r) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void rng_shuffle(AsymRng *r, int *a, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint32_t)i + 1);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

AsymRng rng_split(AsymRng *r) {
    AsymRng c;
    rng_seed(&c, rng_next(r));
    return c;
}

/* Each key is folded in through splitmix64's finalizer, so that nearby
 * (a, b) pairs give unrelated states. */
AsymRng rng_keyed(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ a;
    h = splitmix64(&x);
    x = h ^ b;
    AsymRng r;
    rng_seed(&r, splitmix64(&x));
    return r;
}

double asym_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
