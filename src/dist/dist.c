/* dist.c: data-parallel training over MPI ranks (docs/MPI.md), the only
 * file of the library that calls MPI. Every rank holds the whole model and
 * trains on its contiguous share of each global batch; the gradients are
 * summed with MPI_Allreduce (one call over the flat gradient array, or one
 * MPI_Iallreduce per bucket of layers overlapping the backward pass), so
 * every rank applies the same update. Synchronized batch norm sums its
 * per-channel statistics the same way. A hash of every tensor, compared
 * across ranks, checks that they stay identical.
 *
 * MPI starts only under a launcher (mpirun sets OMPI_COMM_WORLD_SIZE or
 * PMI_RANK); without ASYM_MPI, or without a launcher, this is one process
 * of rank 0 and every collective is a no-op. */
#include "dist/dist.h"
#include "net/net.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef ASYM_MPI
#include <mpi.h>
#endif

static int g_rank, g_size = 1, g_solo;
#ifdef ASYM_MPI
static int g_started;
#endif

int dist_rank(void) { return g_solo ? 0 : g_rank; }
int dist_size(void) { return g_solo ? 1 : g_size; }

int asym_dist_rank(void) { return g_rank; }
int asym_dist_size(void) { return g_size; }
void asym_dist_solo(int on) { g_solo = on; }

int asym_dist_init(int *argc, char ***argv) {
#ifdef ASYM_MPI
    if (g_started || !(getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_RANK") || getenv("PMIX_RANK"))) return ASYM_OK;
    int provided;
    /* OpenMP threads compute; only the main thread calls MPI */
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return asym_fail("MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_started = 1;
#else
    /* several copies of a build without MPI would each train alone and write the same folder */
    const char *n = getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : getenv("PMI_SIZE");
    if (n && atoi(n) > 1)
        return asym_fail("started by mpirun as one of %d processes, but this asymbp was built without MPI: build it with make MPI=1 (docs/MPI.md)", atoi(n));
#endif
    return ASYM_OK;
}

void asym_dist_finalize(void) {
#ifdef ASYM_MPI
    if (g_started) MPI_Finalize();
    g_started = 0;
#endif
}

int asym_dist_agree(int rc) {
#ifdef ASYM_MPI
    if (dist_size() == 1) return rc ? ASYM_ERR : ASYM_OK;
    int mine = rc ? g_rank : INT_MAX, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == INT_MAX) return ASYM_OK;
    /* every rank takes the message of the lowest failing rank */
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", first == g_rank ? asym_last_error() : "");
    MPI_Bcast(msg, sizeof msg, MPI_CHAR, first, MPI_COMM_WORLD);
    msg[sizeof msg - 1] = 0;
    if (first == 0) return asym_fail("%s", msg);
    return asym_fail("rank %d: %s", first, msg);
#else
    return rc ? ASYM_ERR : ASYM_OK;
#endif
}

#ifdef ASYM_MPI
/* MPI counts are ints: long arrays go in pieces. */
#define PIECE ((size_t)1 << 30)

/* Sums n elements of `size` bytes in place over the ranks, counting the traffic. */
static void sum_in_place(void *v, size_t n, MPI_Datatype type, size_t size, DistCount *count) {
    if (dist_size() == 1) return;
    double t = asym_now();
    for (size_t o = 0; o < n; o += PIECE) {
        size_t k = n - o < PIECE ? n - o : PIECE;
        MPI_Allreduce(MPI_IN_PLACE, (char *)v + o * size, (int)k, type, MPI_SUM, MPI_COMM_WORLD);
    }
    if (!count) return;
    count->bytes += size * n;
    count->seconds += asym_now() - t;
}
#endif

void dist_sum_f64(double *v, size_t n, DistCount *count) {
#ifdef ASYM_MPI
    sum_in_place(v, n, MPI_DOUBLE, sizeof(double), count);
#endif
}

/* ---- the check that ranks hold the same model ---- */

#ifdef ASYM_MPI
static uint64_t hash_floats(const float *w, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, w + i, 4);
        h = (h ^ u) * 0x100000001b3ull;
    }
    return h ^ n;
}
#endif

int dist_check_same(AsymNet *net, const char *when) {
#ifdef ASYM_MPI
    if (dist_size() == 1) return ASYM_OK;
    int n = net_n_tensors(net);
    uint64_t *mine = asym_calloc((size_t)n + 1, 2 * sizeof(uint64_t)), *root = mine + n + 1;
    int bad = !mine;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (bad) {
        free(mine);
        return asym_fail("rank check: out of memory");
    }
    for (int i = 0; i < n; i++) root[i] = mine[i] = hash_floats(net_tensor(net, i)->w, net_tensor(net, i)->n);
    MPI_Bcast(root, n, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    struct {
        int index, rank;
    } local = {INT_MAX, g_rank}, first;
    for (int i = 0; i < n && local.index == INT_MAX; i++)
        if (mine[i] != root[i]) local.index = i;
    MPI_Allreduce(&local, &first, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD);
    free(mine);
    if (first.index == INT_MAX) return ASYM_OK;
    return asym_fail("the ranks' models differ %s: rank %d's %s differs from rank 0's (ranks must run the same build, "
                     "thread count and data; see docs/MPI.md)",
                     when, first.rank, net_tensor(net, first.index)->name);
#else
    return ASYM_OK;
#endif
}

/* ---- the gradient allreduce ---- */

struct DistGrad {
    AsymNet *net;
    float *g;        /* the flat gradient array (n) */
    size_t n, bucket;
    int overlap, n_layers;
    size_t *start;   /* (n_layers) offset of top-level layer i's first gradient; SIZE_MAX: none */
    size_t hi;       /* gradients at [hi, n) are on their way */
    DistCount *count;
#ifdef ASYM_MPI
    MPI_Request *req;
    int n_req, cap_req;
#endif
};

#ifdef ASYM_MPI
static void post(DistGrad *d, size_t lo, size_t hi) {
    for (size_t o = lo; o < hi; o += PIECE) {
        size_t k = hi - o < PIECE ? hi - o : PIECE;
        if (d->n_req == d->cap_req) return; /* sized for one request per layer and piece: cannot happen */
        MPI_Iallreduce(MPI_IN_PLACE, d->g + o, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &d->req[d->n_req++]);
    }
    d->count->bytes += sizeof(float) * (hi - lo);
}

/* Called by the backward pass after top-level layer i: the gradients of layers
 * i and after are final. */
static void layer_done(void *arg, int i) {
    DistGrad *d = arg;
    if (d->start[i] != SIZE_MAX && d->hi - d->start[i] >= d->bucket) {
        post(d, d->start[i], d->hi);
        d->hi = d->start[i];
    }
    /* nonblocking collectives move only inside MPI calls */
    int done;
    if (d->n_req) MPI_Testall(d->n_req, d->req, &done, MPI_STATUSES_IGNORE);
}
#endif

DistGrad *dist_grad_new(AsymNet *net, int overlap, size_t bucket, DistCount *count) {
    DistGrad *d = asym_calloc(1, sizeof(DistGrad));
    if (!d) return NULL;
    d->net = net;
    d->n = asym_net_n_weights(net);
    d->g = asym_net_n_params(net) ? asym_net_param(net, 0)->g : NULL;
    d->overlap = overlap && dist_size() > 1;
    d->bucket = bucket ? bucket : 1;
    d->count = count;
    d->n_layers = net_seq(net)->n;
    if (!(d->start = asym_calloc(d->n_layers ? d->n_layers : 1, sizeof(size_t)))) {
        free(d);
        return NULL;
    }
    for (int i = 0; i < d->n_layers; i++) d->start[i] = SIZE_MAX;
    for (int i = 0; i < asym_net_n_params(net); i++) {
        AsymParam *p = asym_net_param(net, i);
        int layer = atoi(p->name); /* "3.W", "4.main.0.W": top-level layer 3, 4 */
        size_t off = (size_t)(p->g - d->g);
        if (layer >= 0 && layer < d->n_layers && off < d->start[layer]) d->start[layer] = off;
    }
#ifdef ASYM_MPI
    d->cap_req = d->n_layers + 1 + (int)(d->n / PIECE) + 1;
    if (!(d->req = asym_calloc(d->cap_req, sizeof(MPI_Request)))) {
        dist_grad_free(d);
        return NULL;
    }
#endif
    return d;
}

void dist_grad_free(DistGrad *d) {
    if (!d) return;
#ifdef ASYM_MPI
    free(d->req);
#endif
    free(d->start);
    free(d);
}

void dist_grad_begin(DistGrad *d, StepMode *m) {
#ifdef ASYM_MPI
    d->hi = d->n;
    d->n_req = 0;
    if (d->overlap) m->done = layer_done, m->done_arg = d;
#endif
}

/* Feedback matrices with a gradient of their own (dkp's D, from each
 * rank's share of the batch; not kp's B, which shares W's, nor pfa's R or
 * B, derived from the averaged gradients before the step): summed like
 * the weights', so that every rank takes the same step. */
#ifdef ASYM_MPI
static void sum_feedback_grads(DistGrad *d) {
    for (int i = 0; i < asym_net_n_feedback(d->net); i++) {
        AsymParam *p = net_feedback_as_is(d->net, i);
        if (p->g && !(p->g >= d->g && p->g < d->g + d->n) && !net_feedback_grad_derived(d->net, i))
            sum_in_place(p->g, p->n, MPI_FLOAT, sizeof(float), d->count);
    }
}
#endif

void dist_grad_end(DistGrad *d) {
#ifdef ASYM_MPI
    if (dist_size() == 1) return;
    if (!d->overlap) {
        sum_in_place(d->g, d->n, MPI_FLOAT, sizeof(float), d->count);
        sum_feedback_grads(d);
        return;
    }
    if (d->hi > 0) post(d, 0, d->hi);
    double t = asym_now();
    MPI_Waitall(d->n_req, d->req, MPI_STATUSES_IGNORE);
    d->count->seconds += asym_now() - t;
    d->n_req = 0;
    sum_feedback_grads(d);
#endif
}
