/* stream.c: worker threads that make a streamed split's samples ahead of
 * training. An epoch is a list of jobs (a batch, or this rank's rows of
 * one); job j goes into slot j mod S of a ring of S = workers + 2 slots,
 * each (batch, 3, oh, ow) floats, so memory is fixed whatever the set's
 * size. A worker takes the next job once its slot has been consumed; the
 * consumer takes jobs in order. Every sample is a pure function of (seed,
 * epoch, index) (sample.c), so neither the worker count nor the timing
 * changes a bit.
 *
 * A sample that cannot be made (corrupt, truncated, not an image) is
 * replaced by the next sample of the index that can, label and all, made
 * with the failed sample's draw: deterministic, and the batch keeps its
 * size. The failure is counted for the job and reported once per file. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asymbp.h"
#include "data/data.h"

/* Tries before a job gives up on finding a readable replacement. */
enum { MAX_REPLACE = 64, MSG = 1024 };

typedef struct Slot {
    float *x;
    int32_t *y;
    int job;            /* the job it holds or is filled with (-1: none) */
    int ready;
    int failed;         /* no replacement found: fatal */
    int n_bad;
    int *bad_index;     /* (batch) the samples replaced */
    char *bad_msg;      /* (batch, MSG) why */
} Slot;

struct Stream {
    SampleMaker m;
    int workers, slots, batch;
    size_t in;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    Slot *slot;
    int train, quit;
    uint64_t epoch;
    const int *order;
    StreamJob *jobs;
    int n_jobs, next, consumed, busy;
    uint8_t *reported;  /* (ix->n) a bit per sample named already */
    long bad_files;
};

int stream_workers(const StreamSpec *o, int train_threads) {
    if (o->workers) return o->workers;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int w = (int)(cores > 0 ? cores : 1) - train_threads;
    return w < 1 ? 1 : w > 32 ? 32 : w;
}

/* Sample k of the epoch into x; a replacement when it fails. */
static void make_one(Stream *s, Slot *sl, int k, float *x, int32_t *y) {
    const ImageIndex *ix = s->m.ix;
    int index = s->order ? s->order[k] : k;
    if (!sample_make(&s->m, s->train, s->epoch, index, x)) {
        *y = ix->y[index];
        return;
    }
    int b = sl->n_bad++;
    sl->bad_index[b] = index;
    snprintf(sl->bad_msg + (size_t)b * MSG, MSG, "%s", asym_last_error());
    for (int t = 1; t <= MAX_REPLACE; t++) {
        int r = (int)(((long)index + t) % ix->n);
        if (!sample_make(&s->m, s->train, s->epoch, r, x)) {
            *y = ix->y[r];
            return;
        }
    }
    sl->failed = 1;
}

static void fill(Stream *s, Slot *sl, const StreamJob *j) {
    sl->n_bad = 0, sl->failed = 0;
    for (int q = 0; q < j->n; q++) make_one(s, sl, j->start + q, sl->x + (size_t)q * s->in, sl->y + q);
}

static void *worker(void *arg) {
    Stream *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->quit && (s->next >= s->n_jobs || s->next >= s->consumed + s->slots)) pthread_cond_wait(&s->work, &s->mu);
        if (s->quit) break;
        int j = s->next++;
        Slot *sl = &s->slot[j % s->slots];
        StreamJob job = s->jobs[j];
        sl->job = j, sl->ready = 0;
        s->busy++;
        pthread_mutex_unlock(&s->mu);
        fill(s, sl, &job);
        pthread_mutex_lock(&s->mu);
        sl->ready = 1;
        s->busy--;
        pthread_cond_broadcast(&s->done);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int alloc_slots(Stream *s) {
    if (!(s->slot = calloc((size_t)s->slots, sizeof *s->slot))) return ASYM_ERR;
    for (int i = 0; i < s->slots; i++) {
        Slot *sl = &s->slot[i];
        sl->job = -1;
        sl->x = asym_falloc((size_t)s->batch * s->in);
        sl->y = calloc((size_t)s->batch, sizeof *sl->y);
        sl->bad_index = calloc((size_t)s->batch, sizeof *sl->bad_index);
        sl->bad_msg = calloc((size_t)s->batch, MSG);
        if (!sl->x || !sl->y || !sl->bad_index || !sl->bad_msg) return ASYM_ERR;
    }
    return ASYM_OK;
}

int stream_create(Stream **out, const SampleMaker *m, int workers, int batch) {
    Stream *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s) return asym_fail("out of memory");
    s->m = *m, s->workers = workers, s->slots = workers + 2, s->batch = batch;
    s->in = (size_t)3 * m->oh * m->ow;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->done, NULL);
    s->reported = calloc((size_t)m->ix->n / 8 + 1, 1);
    s->th = calloc((size_t)workers, sizeof *s->th);
    if (!s->reported || !s->th || alloc_slots(s)) {
        stream_free(s);
        return asym_fail("out of memory for %d decoding slots of %d images", workers + 2, batch);
    }
    for (int i = 0; i < workers; i++)
        if (pthread_create(&s->th[i], NULL, worker, s)) {
            s->workers = i;
            stream_free(s);
            return asym_fail("cannot start decoding thread %d", i + 1);
        }
    *out = s;
    return ASYM_OK;
}

void stream_free(Stream *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; s->th && i < s->workers; i++) pthread_join(s->th[i], NULL);
    for (int i = 0; s->slot && i < s->slots; i++) {
        free(s->slot[i].x);
        free(s->slot[i].y);
        free(s->slot[i].bad_index);
        free(s->slot[i].bad_msg);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->done);
    free(s->slot);
    free(s->th);
    free(s->jobs);
    free(s->reported);
    free(s);
}

int stream_begin(Stream *s, int train, uint64_t epoch, const int *order, const StreamJob *jobs, int n_jobs) {
    StreamJob *copy = malloc(sizeof *copy * (size_t)(n_jobs ? n_jobs : 1));
    if (!copy) return asym_fail("out of memory");
    memcpy(copy, jobs, sizeof *copy * (size_t)n_jobs);
    for (int j = 0; j < n_jobs; j++)
        if (jobs[j].n > s->batch || jobs[j].n < 0 || jobs[j].start < 0 || jobs[j].start + jobs[j].n > s->m.ix->n) {
            free(copy);
            return asym_fail("stream job %d: rows %d + %d outside the %d samples or batch %d", j, jobs[j].start, jobs[j].n, s->m.ix->n, s->batch);
        }
    pthread_mutex_lock(&s->mu);
    /* jobs of an epoch left unconsumed (a stopped run) finish first */
    s->n_jobs = s->next;
    while (s->busy) pthread_cond_wait(&s->done, &s->mu);
    free(s->jobs);
    s->jobs = copy, s->n_jobs = n_jobs, s->next = 0, s->consumed = 0;
    s->train = train, s->epoch = epoch, s->order = order;
    for (int i = 0; i < s->slots; i++) s->slot[i].job = -1, s->slot[i].ready = 0;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    return ASYM_OK;
}

/* Names each replaced file the first time it fails. */
static void report(Stream *s, const Slot *sl, void (*note)(void *, const char *), void *user) {
    for (int b = 0; b < sl->n_bad; b++) {
        int i = sl->bad_index[b];
        if (s->reported[i / 8] & (1u << (i % 8))) continue;
        s->reported[i / 8] |= (uint8_t)(1u << (i % 8));
        s->bad_files++;
        if (note) note(user, sl->bad_msg + (size_t)b * MSG);
    }
}

int stream_next(Stream *s, float *x, int32_t *y, int *bad, void (*note)(void *, const char *), void *user) {
    pthread_mutex_lock(&s->mu);
    int j = s->consumed;
    if (j >= s->n_jobs) {
        pthread_mutex_unlock(&s->mu);
        return asym_fail("stream: no job left in the epoch");
    }
    Slot *sl = &s->slot[j % s->slots];
    while (!(sl->ready && sl->job == j)) pthread_cond_wait(&s->done, &s->mu);
    pthread_mutex_unlock(&s->mu);
    int n = s->jobs[j].n, rc = ASYM_OK;
    memcpy(x, sl->x, sizeof(float) * s->in * (size_t)n);
    memcpy(y, sl->y, sizeof(int32_t) * (size_t)n);
    *bad = sl->n_bad;
    report(s, sl, note, user);
    if (sl->failed) rc = asym_fail("no readable image among %d samples after a failed one: %s", MAX_REPLACE, sl->bad_msg);
    pthread_mutex_lock(&s->mu);
    sl->ready = 0, sl->job = -1;
    s->consumed++;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

long stream_bad_files(const Stream *s) { return s->bad_files; }
