/* loader.c: throughput of the streamed JPEG loader (format imagenet,
 * src/data/stream.c) against torchvision's ImageFolder DataLoader
 * (bench/loader_torch.py) with the same transforms on the same files, and
 * the single-core libjpeg-turbo decode speed of those files beside it.
 *
 *   bench-loader [--data DIR] [--classes C] [--per-class N] [--workers 1,2]
 *                [--epochs E] [--repeat K] [--python PY] [--srcdir DIR]
 *   bench-loader --asymbp W [--data DIR ...]   (one measurement, JSON)
 *   bench-loader --ceiling [--data DIR ...]
 *
 * The driver makes the synthetic set once (scripts/make_fake_imagenet.py,
 * C classes of N training JPEGs of 300-500 px, kept under DIR), then for
 * each worker count W measures both sides, every measurement in a child
 * process of its own pinned to the first W cores it may use (the PyTorch
 * process and its workers likewise), so both sides have the same cores.
 * asymbp: stream_data_open, stream_create with W workers, batches of 64 of
 * a shuffled epoch through stream_begin / stream_next, as training takes
 * them: the workers read, decode (only the crop's rows, at a DCT scale),
 * random-resized-crop to 224 x 224, flip and normalize; the consumer
 * copies every batch out. torchvision: ImageFolder, RandomResizedCrop(224),
 * RandomHorizontalFlip, ToTensor, Normalize, DataLoader(batch_size=64,
 * shuffle=True, num_workers=W, persistent_workers=True), one intra-op
 * thread. Each side runs one warm-up epoch, then E epochs timed whole.
 * The ceiling: every file, already in memory, decoded once at full scale
 * by jpeg_decode_box on one core. Every measurement is repeated K times
 * (default 3), interleaved, asymbp and torchvision taking turns to go
 * first; the fastest is kept and the range printed. The target (the issue
 * tracker's): at least 2x torchvision's images/s at equal W, that is per
 * core. Not a test: nothing depends on the timings. */
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "asymbp.h"
#include "data/data.h"
#include "machine.h"

enum { BATCH = 64, SIDE = 224, MAX_W = 8, ROOT_CAP = 900 };

typedef struct Opts {
    const char *data, *python, *srcdir, *workers;
    int classes, per_class, epochs, repeat;
} Opts;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Pins this process (and the threads it starts) to the first n cores it
 * may run on, so that a measurement with W workers has W cores. */
static int pin_cores(int n) {
    cpu_set_t have, want;
    CPU_ZERO(&want);
    if (sched_getaffinity(0, sizeof have, &have)) return ASYM_ERR;
    for (int c = 0, k = 0; c < CPU_SETSIZE && k < n; c++)
        if (CPU_ISSET(c, &have)) CPU_SET(c, &want), k++;
    return sched_setaffinity(0, sizeof want, &want) ? ASYM_ERR : ASYM_OK;
}

/* Where the synthetic set of o lies (ROOT_CAP bytes): one folder per size. */
static void set_root(const Opts *o, char *out) { snprintf(out, ROOT_CAP, "%s/c%d-n%d", o->data, o->classes, o->per_class); }

/* Makes the synthetic set unless an earlier run did: written into a
 * .tmp folder, renamed when complete, so a folder of that name is whole. */
static int make_set(const Opts *o) {
    char root[ROOT_CAP], cmd[8192];
    struct stat st;
    set_root(o, root);
    if (!stat(root, &st) && S_ISDIR(st.st_mode)) return ASYM_OK;
    printf("making the synthetic set in %s (%d classes x %d JPEGs) ...\n", root, o->classes, o->per_class);
    fflush(stdout);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' 2>/dev/null", o->data);
    if (system(cmd) != 0) {
        fprintf(stderr, "asymbp-bench-loader: cannot make the synthetic set: cannot create the folder %s\n", o->data);
        return ASYM_ERR;
    }
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s.tmp' && '%s' '%s/scripts/make_fake_imagenet.py' '%s.tmp' --classes %d --train %d --val 1 --no-hostile "
             ">'%s.log' 2>&1 && mv '%s.tmp' '%s'",
             root, o->python, o->srcdir, root, o->classes, o->per_class, root, root, root);
    if (system(cmd) == 0) return ASYM_OK;
    fprintf(stderr, "asymbp-bench-loader: cannot make the synthetic set %s: make_fake_imagenet.py failed (it needs %s with numpy and PIL; see %s.log)\n",
            root, o->python, root);
    return ASYM_ERR;
}

/* The experiment's data section for the set: format imagenet, training's
 * transforms (RandomResizedCrop(224) with torchvision's scale and ratio,
 * a flip with probability 1/2, ImageNet's mean and std). */
static void spec_of(const Opts *o, AsymDataSpec *s) {
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    char root[ROOT_CAP];
    set_root(o, root);
    memset(s, 0, sizeof *s);
    snprintf(s->format, sizeof s->format, "imagenet");
    snprintf(s->path, sizeof s->path, "%s", root);
    snprintf(s->stream.val_labels, sizeof s->stream.val_labels, "%s/val_labels.txt", root);
    s->stream.max_bad = -1;
    s->c = 3, s->h = s->w = SIDE, s->norm_given = 3;
    memcpy(s->mean, mean, sizeof mean), memcpy(s->std, std, sizeof std);
    s->aug = (AugmentSpec){.rrc_h = SIDE, .rrc_w = SIDE, .scale = {0.08, 1}, .ratio = {0.75, 4.0 / 3}, .hflip = 0.5f,
                           .eval_resize = 256, .eval_crop_h = SIDE, .eval_crop_w = SIDE};
}

/* ---- asymbp's side (a child: --asymbp W) ---- */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* One training epoch through the prefetcher, as the training loop runs
 * it: a shuffled order, one job per batch, every batch copied out. */
static int stream_epoch(Stream *st, int n, int *order, uint64_t ep, uint64_t *rng, float *x, int32_t *y) {
    int nb = (n + BATCH - 1) / BATCH, bad, bad_sum = 0;
    StreamJob jobs[4096];
    if (nb > 4096) return asym_fail("more than %d batches", 4096);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(splitmix(rng) % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    for (int b = 0; b < nb; b++) jobs[b] = (StreamJob){b * BATCH, n - b * BATCH < BATCH ? n - b * BATCH : BATCH};
    if (stream_begin(st, 1, ep, order, jobs, nb)) return ASYM_ERR;
    for (int b = 0; b < nb; b++) {
        if (stream_next(st, x, y, &bad, NULL, NULL)) return ASYM_ERR;
        bad_sum += bad;
    }
    /* a replaced sample is another one's work: the set must be clean */
    return bad_sum ? asym_fail("%d samples could not be made", bad_sum) : ASYM_OK;
}

/* Opens the set, starts W workers on W cores, one warm-up epoch, then E
 * epochs timed; prints images/s as a JSON line. */
static int run_asymbp(const Opts *o, int W) {
    AsymDataSpec s;
    StreamData d;
    Stream *st = NULL;
    spec_of(o, &s);
    if (pin_cores(W) || stream_data_open(&s, 1, &d)) return fprintf(stderr, "asymbp-bench-loader: %s\n", asym_last_error()), 1;
    int n = d.train.n, *order = malloc(sizeof *order * (size_t)n), rc = 1;
    float *x = malloc(sizeof *x * (size_t)BATCH * 3 * SIDE * SIDE);
    int32_t *y = malloc(sizeof *y * BATCH);
    uint64_t rng = 12345;
    if (order && x && y && !stream_create(&st, &d.train_m, W, BATCH)) {
        for (int i = 0; i < n; i++) order[i] = i;
        double t0 = 0;
        int ep = 0;
        for (; ep <= o->epochs; ep++) {
            if (ep == 1) t0 = now();
            if (stream_epoch(st, n, order, (uint64_t)ep, &rng, x, y)) break;
        }
        double dt = now() - t0;
        if (ep > o->epochs) {
            printf("{\"images_per_s\": %.3f, \"images\": %d, \"seconds\": %.4f, \"workers\": %d}\n", (double)n * o->epochs / dt, n * o->epochs, dt, W);
            rc = 0;
        }
    }
    if (rc) fprintf(stderr, "asymbp-bench-loader: %s\n", asym_last_error());
    stream_free(st);
    stream_data_free(&d);
    free(order), free(x), free(y);
    return rc;
}

/* ---- the ceiling (a child: --ceiling) ---- */

/* Every training file read into memory, then each decoded once at full
 * scale on one core; images/s, MB/s of JPEG bytes, Mpixel/s. */
static int run_ceiling(const Opts *o) {
    AsymDataSpec s;
    ImageIndex ix;
    char note[700];
    spec_of(o, &s);
    if (pin_cores(1) || image_index_build(&s, 1, NULL, &ix, note, sizeof note)) return fprintf(stderr, "asymbp-bench-loader: %s\n", asym_last_error()), 1;
    uint8_t **buf = calloc((size_t)ix.n, sizeof *buf);
    size_t *len = calloc((size_t)ix.n, sizeof *len), bytes = 0;
    int rc = !buf || !len;
    for (int i = 0; !rc && i < ix.n; i++) {
        FILE *f = fopen(ix.files[ix.file[i]], "rb");
        rc = !f || fseek(f, 0, SEEK_END) || (len[i] = (size_t)ftell(f)) == 0 || fseek(f, 0, SEEK_SET) || !(buf[i] = malloc(len[i])) ||
             fread(buf[i], 1, len[i], f) != len[i];
        if (f) fclose(f);
        if (rc) asym_fail("%s: cannot read", ix.files[ix.file[i]]);
        bytes += len[i];
    }
    double pixels = 0, t0 = now();
    for (int i = 0; !rc && i < ix.n; i++) {
        JpegRegion r;
        int H, W;
        rc = jpeg_header("jpeg", buf[i], len[i], &H, &W) || jpeg_decode_box(ix.files[ix.file[i]], buf[i], len[i], 0, 0, H, W, 0, 0, &r);
        if (!rc) pixels += (double)H * W, jpeg_region_free(&r);
    }
    double dt = now() - t0;
    if (!rc)
        printf("{\"images_per_s\": %.3f, \"mb_per_s\": %.3f, \"mpix_per_s\": %.3f, \"images\": %d, \"mb\": %.3f}\n", ix.n / dt, bytes / 1e6 / dt,
               pixels / 1e6 / dt, ix.n, bytes / 1e6);
    else fprintf(stderr, "asymbp-bench-loader: %s\n", asym_last_error());
    for (int i = 0; buf && i < ix.n; i++) free(buf[i]);
    free(buf), free(len);
    image_index_free(&ix);
    return rc;
}

/* ---- the driver ---- */

typedef struct Best {
    int ok;
    double ips, lo, mbs, mpix;
} Best;

/* The number after "key": in a JSON line, or NAN. */
static double json_get(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* Runs cmd, keeps its last stdout line holding images_per_s in best (the
 * fastest so far) and the slowest rate in best->lo. */
static void measure(const char *cmd, Best *b) {
    FILE *p = popen(cmd, "r");
    char buf[4096], line[4096] = "";
    if (!p) return;
    while (fgets(buf, sizeof buf, p))
        if (strstr(buf, "images_per_s")) snprintf(line, sizeof line, "%s", buf);
    if (pclose(p) != 0 || !line[0]) return;
    double ips = json_get(line, "images_per_s");
    if (!b->ok || ips > b->ips) b->ips = ips, b->mbs = json_get(line, "mb_per_s"), b->mpix = json_get(line, "mpix_per_s");
    if (!b->ok || ips < b->lo) b->lo = ips;
    b->ok = 1;
}

/* The options every child gets, so that it opens the same set. */
static void child_args(const Opts *o, char *out, size_t cap) {
    snprintf(out, cap, "--data '%s' --classes %d --per-class %d --epochs %d", o->data, o->classes, o->per_class, o->epochs);
}

/* The interpreter imports torchvision (and PIL through it); else a line. */
static int have_torchvision(const Opts *o) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import torch, torchvision, PIL' >/dev/null 2>&1", o->python);
    if (system(cmd) == 0) return 1;
    fprintf(stderr, "asymbp-bench-loader: %s cannot import torch, torchvision and PIL (install python3-torchvision and python3-pil)\n", o->python);
    return 0;
}


/* The worker counts of the comma-separated list s (at most MAX_W). */
static int parse_workers(const char *s, int *w) {
    int n = 0;
    for (const char *p = s; *p && n < MAX_W; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
        w[n] = atoi(p);
        if (w[n] < 1 || w[n] > 64) return 0;
        n++;
    }
    return n;
}

static void print_table(const int *ws, int nw, const Best *us, const Best *them, const Best *ceil) {
    printf("\n  %2s | %12s %15s | %12s %15s | %8s %8s | %7s\n", "W", "asymbp im/s", "(min-max)", "torch im/s", "(min-max)", "asymbp/W", "torch/W", "x torch");
    for (int i = 0; i < nw; i++) {
        printf("  %2d | ", ws[i]);
        if (us[i].ok) printf("%12.1f (%6.1f-%6.1f) | ", us[i].ips, us[i].lo, us[i].ips);
        else printf("%12s %15s | ", "failed", "");
        if (them[i].ok) printf("%12.1f (%6.1f-%6.1f) | ", them[i].ips, them[i].lo, them[i].ips);
        else printf("%12s %15s | ", "failed", "");
        printf("%8.1f %8.1f | %7.2f", us[i].ok ? us[i].ips / ws[i] : NAN, them[i].ok ? them[i].ips / ws[i] : NAN,
               us[i].ok && them[i].ok ? us[i].ips / them[i].ips : NAN);
        printf("  %s\n", us[i].ok && them[i].ok ? (us[i].ips >= 2 * them[i].ips ? "PASS" : "FAIL") : "-");
    }
    if (ceil->ok)
        printf("\ndecode ceiling (libjpeg-turbo, full scale, 1 core, files in memory): %.1f images/s (%.1f-%.1f), %.1f MB/s of JPEG, %.1f Mpixel/s\n",
               ceil->ips, ceil->lo, ceil->ips, ceil->mbs, ceil->mpix);
    else printf("\ndecode ceiling: failed\n");
}

/* Makes the set, then K interleaved passes over the worker counts (asymbp
 * and torchvision alternating who goes first) and the ceiling; the table. */
static int drive(const Opts *o, const char *self) {
    int ws[MAX_W], nw = parse_workers(o->workers, ws);
    char cmd[4096], args[2048];
    if (!nw) return fprintf(stderr, "asymbp-bench-loader: --workers wants a list such as 1,2\n"), 2;
    if (!have_torchvision(o) || make_set(o)) return 1;
    Best us[MAX_W] = {{0}}, them[MAX_W] = {{0}}, ceil = {0};
    char root[ROOT_CAP];
    set_root(o, root);
    child_args(o, args, sizeof args);
    printf("asymbp %s loader bench: %s, batch %d, %dx%d random-resized crop + flip + normalize; %d timed epochs after 1 warm-up, fastest of %d runs\n",
           ASYM_VERSION, root, BATCH, SIDE, SIDE, o->epochs, o->repeat);
    describe_machine();
    fflush(stdout);
    for (int k = 0; k < o->repeat; k++) {
        for (int i = 0; i < nw; i++)
            for (int side = 0; side < 2; side++) {
                if ((side ^ (k & 1)) == 0) {
                    snprintf(cmd, sizeof cmd, "'%s' --asymbp %d %s", self, ws[i], args);
                    measure(cmd, &us[i]);
                } else {
                    snprintf(cmd, sizeof cmd, "'%s' '%s/bench/loader_torch.py' '%s' --workers %d --epochs %d --batch %d", o->python, o->srcdir, root, ws[i],
                             o->epochs, BATCH);
                    measure(cmd, &them[i]);
                }
            }
        snprintf(cmd, sizeof cmd, "'%s' --ceiling %s", self, args);
        measure(cmd, &ceil);
    }
    print_table(ws, nw, us, them, &ceil);
    printf("target: asymbp at least 2x torchvision's images/s at equal W (equal cores)\n");
    return 0;
}

int main(int argc, char **argv) {
    Opts o = {.data = "build/bench-imagenet", .python = "/usr/bin/python3", .srcdir = ".", .workers = "1,2", .classes = 8, .per_class = 64, .epochs = 3,
              .repeat = 3};
    int one = 0, ceiling = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--asymbp") && more) one = atoi(argv[++i]);
        else if (!strcmp(a, "--ceiling")) ceiling = 1;
        else if (!strcmp(a, "--data") && more) o.data = argv[++i];
        else if (!strcmp(a, "--python") && more) o.python = argv[++i];
        else if (!strcmp(a, "--srcdir") && more) o.srcdir = argv[++i];
        else if (!strcmp(a, "--workers") && more) o.workers = argv[++i];
        else if (!strcmp(a, "--classes") && more) o.classes = atoi(argv[++i]);
        else if (!strcmp(a, "--per-class") && more) o.per_class = atoi(argv[++i]);
        else if (!strcmp(a, "--epochs") && more) o.epochs = atoi(argv[++i]);
        else if (!strcmp(a, "--repeat") && more) o.repeat = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench-loader [--data DIR] [--classes C] [--per-class N] [--workers 1,2] [--epochs E] [--repeat K]\n"
                            "                    [--python PY] [--srcdir DIR]\n"
                            "       bench-loader --asymbp W | --ceiling [--data DIR --classes C --per-class N --epochs E]\n");
            return 2;
        }
    }
    if (o.classes < 1 || o.per_class < 1 || o.epochs < 1) return fprintf(stderr, "asymbp-bench-loader: --classes, --per-class and --epochs want 1 or more\n"), 2;
    if (o.repeat < 1) o.repeat = 1;
    if (strlen(o.data) > ROOT_CAP - 40) return fprintf(stderr, "asymbp-bench-loader: --data: a path of at most %d bytes\n", ROOT_CAP - 40), 2;
    if (one) return run_asymbp(&o, one);
    if (ceiling) return run_ceiling(&o);
    char self[1024];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return 1;
    self[len] = 0;
    return drive(&o, self);
}
