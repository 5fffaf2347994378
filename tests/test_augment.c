/* test_augment.c: data augmentation (src/data/augment.c). The geometry
 * (pad-crop, flip, resized crop, resize + centre crop) against torchvision's
 * functional transforms on fixed parameters; the random-resized-crop boxes
 * against torchvision's RandomResizedCrop.get_params in distribution
 * (tests/oracle/augment_oracle.py); the pixel statistics of augmented
 * batches; purity in (seed, epoch, index); the config keys; training runs
 * that learn, resume bitwise and agree over two MPI ranks. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"
#include "test.h"

/* torchvision importable by the oracle's Python; else a skip (or a failure
 * under ASYM_REQUIRE_ORACLES), saying why. */
static int have_torchvision(void) {
    if (!test_have_torch()) return 0;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import torchvision' >/dev/null 2>&1", test_python());
    if (test_system(cmd) == 0) return 1;
    TEST_NO_ORACLE("torchvision oracle not run: '%s' cannot import torchvision (python3-torchvision)", test_python());
    return 0;
}

static void fill_random(float *x, size_t n, uint64_t seed) {
    AsymRng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_uniform(&r);
}

static int write_chw(const char *path, const float *x, int c, int h, int w) {
    int64_t shape[3] = {c, h, w};
    return npy_write_f32(path, x, 3, shape);
}

/* Runs augment_oracle.py MODE on dir; its output printed indented. */
static int run_oracle(const char *mode, const char *dir) {
    static char out[16384];
    int rc = test_sh(out, sizeof out, "'%s' '%s/tests/oracle/augment_oracle.py' %s '%s' 2>&1", test_python(), test_srcdir(), mode, dir);
    for (char *line = out, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line) - 1;
        printf("    %.*s\n", (int)(nl - line), line);
        if (!nl[1]) break;
    }
    return rc;
}

/* ---- geometry against torchvision on fixed parameters ---- */

typedef struct Img {
    int c, h, w;
} Img;

/* One case: its input image k, asymbp's output, and the line for the oracle. */
static int geometry_case(FILE *cases, const char *dir, int k, const Img *im, const char *kind, const int *p, float fill) {
    size_t n = (size_t)im->c * im->h * im->w;
    float *x = malloc(n * sizeof *x), *y = malloc((size_t)im->c * 64 * 64 * sizeof *y);
    char path[700];
    int oh = 0, ow = 0, rc = -1;
    fill_random(x, n, 100 + k);
    if (!strcmp(kind, "padcrop")) { /* pad, i, j, oh, ow, flip */
        oh = p[3], ow = p[4];
        augment_crop(y, x, im->c, im->h, im->w, p[1] - p[0], p[2] - p[0], oh, ow, fill, p[5]);
        fprintf(cases, "%d padcrop %d %d %d %d %d %g %d\n", k, p[0], p[1], p[2], oh, ow, fill, p[5]);
    } else if (!strcmp(kind, "rcrop")) { /* i, j, bh, bw, oh, ow, flip */
        oh = p[4], ow = p[5];
        augment_resized_crop(y, x, im->c, im->h, im->w, p[0], p[1], p[2], p[3], oh, ow, p[6]);
        fprintf(cases, "%d rcrop %d %d %d %d %d %d %d\n", k, p[0], p[1], p[2], p[3], oh, ow, p[6]);
    } else { /* eval: resize, crop h, crop w */
        AugmentSpec a = {.eval_resize = p[0], .eval_crop_h = p[1], .eval_crop_w = p[2]};
        if (augment_eval_shape(&a, im->h, im->w, &oh, &ow)) goto done;
        augment_eval(&a, y, x, im->c, im->h, im->w);
        fprintf(cases, "%d eval %d %d %d\n", k, p[0], p[1], p[2]);
    }
    snprintf(path, sizeof path, "%s/case_%d_x.npy", dir, k);
    if (write_chw(path, x, im->c, im->h, im->w)) goto done;
    snprintf(path, sizeof path, "%s/case_%d_ours.npy", dir, k);
    rc = write_chw(path, y, im->c, oh, ow);
done:
    free(x);
    free(y);
    return rc;
}

TEST(augment_geometry_torchvision) {
    if (!have_torchvision()) return;
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/augment_geometry", test_tmpdir());
    CHECK_OK(io_mkdir_p(dir));
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    FILE *cases = fopen(path, "w");
    CHECK(cases);
    /* odd sizes, one channel and two, a square CIFAR-sized image */
    const Img A = {3, 13, 17}, B = {1, 32, 32}, C = {2, 7, 5};
    const struct {
        const Img *im;
        const char *kind;
        int p[7];
        float fill;
    } K[] = {
        {&A, "padcrop", {4, 0, 8, 13, 17, 0}, 0},       /* a corner of the padding */
        {&A, "padcrop", {4, 6, 1, 15, 11, 1}, 0.25f},   /* flipped, a fill of its own */
        {&B, "padcrop", {4, 8, 0, 32, 32, 1}, 0},       /* CIFAR's pad 4, crop 32 */
        {&B, "padcrop", {0, 3, 5, 24, 20, 0}, 0},       /* a crop without padding */
        {&A, "rcrop", {2, 3, 9, 11, 24, 20, 0}, 0},     /* enlarged */
        {&A, "rcrop", {0, 0, 13, 17, 5, 7, 1}, 0},      /* shrunk, flipped */
        {&B, "rcrop", {5, 1, 20, 30, 32, 32, 0}, 0},
        {&C, "rcrop", {1, 0, 6, 5, 3, 9, 1}, 0},
        {&B, "rcrop", {0, 0, 32, 32, 32, 32, 0}, 0},    /* the whole image: unchanged */
        {&A, "eval", {9, 7, 8}, 0},                     /* shrink the shorter side, odd centre offsets */
        {&A, "eval", {20, 0, 0}, 0},                    /* enlarge, no crop */
        {&A, "eval", {0, 8, 12}, 0},                    /* crop alone: offsets 2.5 round to even */
        {&B, "eval", {36, 32, 32}, 0},
        {&C, "eval", {4, 3, 3}, 0},                     /* taller than wide */
    };
    int n = (int)(sizeof K / sizeof K[0]);
    for (int k = 0; k < n; k++)
        if (geometry_case(cases, dir, k, K[k].im, K[k].kind, K[k].p, K[k].fill)) {
            fclose(cases);
            CHECK_MSG(0, "case %d: %s", k, asym_last_error());
        }
    fclose(cases);
    CHECK_MSG(run_oracle("geometry", dir) == 0, "asymbp's geometry differs from torchvision's by more than 1e-5");
}

/* The centre offsets round half to even, as Python's round(). */
TEST(augment_centre_rounding) {
    CHECK(augment_centre(13, 8) == 2 && augment_centre(17, 12) == 2 && augment_centre(14, 11) == 2 && augment_centre(16, 9) == 4);
    CHECK(augment_centre(32, 32) == 0 && augment_centre(36, 32) == 2);
}

/* ---- random-resized-crop boxes against torchvision's sampling ---- */

TEST(augment_rrc_sampling_torchvision) {
    /* the centre-crop fallback when no box can fit (area above the image's) */
    static const double big[2] = {1.5, 2.0}, R[2] = {3.0 / 4.0, 4.0 / 3.0};
    static const int fb[][6] = {{100, 10, 43, 0, 13, 10}, {10, 100, 0, 43, 10, 13}, {30, 30, 0, 0, 30, 30}, {30, 36, 0, 0, 30, 36}};
    AsymRng r;
    rng_seed(&r, 5);
    for (int k = 0; k < 4; k++) {
        int i, j, bh, bw;
        augment_rrc_box(&r, fb[k][0], fb[k][1], big, R, &i, &j, &bh, &bw);
        CHECK_MSG(i == fb[k][2] && j == fb[k][3] && bh == fb[k][4] && bw == fb[k][5], "%dx%d: fallback box (%d, %d, %d, %d)", fb[k][0], fb[k][1], i,
                  j, bh, bw);
    }
    if (!have_torchvision()) return;
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/augment_rrc", test_tmpdir());
    CHECK_OK(io_mkdir_p(dir));
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    FILE *cases = fopen(path, "w");
    CHECK(cases);
    /* the defaults on a CIFAR-like and a 4:3 image; long thin images that
     * fall back often (how often shows the 10 tries); other ranges */
    static const struct {
        int h, w;
        double s0, s1, r0, r1;
    } K[] = {{32, 32, 0.08, 1, 3.0 / 4, 4.0 / 3}, {48, 64, 0.08, 1, 3.0 / 4, 4.0 / 3}, {100, 10, 0.08, 1, 3.0 / 4, 4.0 / 3},
             {12, 60, 0.08, 1, 3.0 / 4, 4.0 / 3}, {40, 40, 0.5, 1, 0.5, 2}, {30, 20, 0.25, 0.9, 1, 1}};
    enum { N = 20000 };
    int32_t *boxes = malloc(sizeof(int32_t) * 4 * N);
    CHECK(boxes);
    for (int k = 0; k < (int)(sizeof K / sizeof K[0]); k++) {
        AugmentSpec a = {.rrc_h = 8, .rrc_w = 8, .scale = {K[k].s0, K[k].s1}, .ratio = {K[k].r0, K[k].r1}};
        for (int n = 0; n < N; n++) {
            AugmentDraw d = augment_draw(&a, K[k].h, K[k].w, 9, 0, (uint64_t)n);
            boxes[4 * n] = d.i, boxes[4 * n + 1] = d.j, boxes[4 * n + 2] = d.bh, boxes[4 * n + 3] = d.bw;
        }
        int64_t shape[2] = {N, 4};
        snprintf(path, sizeof path, "%s/rrc_%d.npy", dir, k);
        CHECK_OK(npy_write_i32(path, boxes, 2, shape));
        fprintf(cases, "%d rrc %d %d %.17g %.17g %.17g %.17g\n", k, K[k].h, K[k].w, K[k].s0, K[k].s1, K[k].r0, K[k].r1);
    }
    free(boxes);
    fclose(cases);
    CHECK_MSG(run_oracle("rrc", dir) == 0, "asymbp's random-resized-crop boxes are not distributed as torchvision's");
}

/* ---- pixel statistics of augmented batches ---- */

/* A spec on a set of n random images, c x h x w, channel k around 0.2 + 0.3 k. */
static int stats_set(AsymDataSpec *s, AsymDataset *d, int n, int c, int h, int w) {
    memset(s, 0, sizeof *s);
    s->normalize = 1;
    if (asym_dataset_random(d, n, c, h, w, 2, 3)) return ASYM_ERR;
    size_t hw = (size_t)h * w;
    for (size_t q = 0; q < (size_t)n * c; q++)
        for (size_t i = 0; i < hw; i++) d->x[q * hw + i] = 0.2f + 0.3f * (float)(q % c) + 0.1f * d->x[q * hw + i];
    return ASYM_OK;
}

/* Per-channel mean and std of n augmented images of a (epochs 0..E-1). */
static void augmented_stats(const Augment *a, const AsymDataset *d, int epochs, double *mean, double *std) {
    size_t in = (size_t)a->c * a->h * a->w, hw = (size_t)a->oh * a->ow;
    float *y = malloc(sizeof(float) * a->c * hw);
    double s[4] = {0}, s2[4] = {0};
    for (int e = 0; e < epochs; e++)
        for (int i = 0; i < d->n; i++) {
            augment_train(a, y, d->x + i * in, (uint64_t)e, (uint64_t)i);
            for (int k = 0; k < a->c; k++)
                for (size_t q = 0; q < hw; q++) s[k] += y[k * hw + q], s2[k] += (double)y[k * hw + q] * y[k * hw + q];
        }
    double cnt = (double)epochs * d->n * hw;
    for (int k = 0; k < a->c; k++) mean[k] = s[k] / cnt, std[k] = sqrt(s2[k] / cnt - mean[k] * mean[k]);
    free(y);
}

TEST(augment_batch_statistics) {
    AsymDataSpec s;
    AsymDataset d;
    Augment a;
    double m[4], sd[4];
    CHECK_OK(stats_set(&s, &d, 64, 3, 16, 16));
    /* flips move pixels, never change them: the normalized batches keep mean 0, std 1 */
    s.aug.hflip = 0.5f;
    CHECK_OK(augment_init(&a, &s, &d, 1));
    augmented_stats(&a, &d, 20, m, sd);
    for (int k = 0; k < 3; k++) CHECK_MSG(fabs(m[k]) < 1e-4 && fabs(sd[k] - 1) < 1e-4, "flip: channel %d mean %g std %g", k, m[k], sd[k]);
    int flips = 0;
    for (int i = 0; i < 20000; i++) flips += augment_draw(&a.spec, 16, 16, 1, (uint64_t)(i % 7), (uint64_t)i).flip;
    augment_free(&a);
    double rate = flips / 20000.0;
    CHECK_MSG(fabs(rate - 0.5) < 0.015, "flip rate %g", rate);
    printf("    hflip 0.5: channel means %.2e %.2e %.2e, stds %.6f %.6f %.6f (normalized), flip rate %.4f\n", m[0], m[1], m[2], sd[0], sd[1], sd[2], rate);

    /* random-resized crops average neighbours: the mean stays, the spread narrows */
    memset(&s.aug, 0, sizeof s.aug);
    s.aug = (AugmentSpec){.rrc_h = 16, .rrc_w = 16, .scale = {0.08, 1}, .ratio = {0.75, 4.0 / 3}};
    CHECK_OK(augment_init(&a, &s, &d, 1));
    augmented_stats(&a, &d, 20, m, sd);
    augment_free(&a);
    for (int k = 0; k < 3; k++) CHECK_MSG(fabs(m[k]) < 0.05 && sd[k] > 0.3 && sd[k] < 1.01, "rrc: channel %d mean %g std %g", k, m[k], sd[k]);
    printf("    random_resized_crop 16: channel means %.4f %.4f %.4f, stds %.4f %.4f %.4f (normalized)\n", m[0], m[1], m[2], sd[0], sd[1], sd[2]);
    asym_dataset_free(&d);

    /* pad 4, crop 32: offsets uniform over 0..8 each way (chi-square over
     * the 81 cells), and on a set of ones the padding's zeros take the
     * expected share: E (32 - |di - 4|)(32 - |dj - 4|) / 1024 */
    AugmentSpec pc = {.crop_h = 32, .crop_w = 32, .crop_pad = 4};
    enum { DRAWS = 81 * 500 };
    int cells[81] = {0};
    for (int i = 0; i < DRAWS; i++) {
        AugmentDraw dr = augment_draw(&pc, 32, 32, 2, 0, (uint64_t)i);
        CHECK(dr.i >= -4 && dr.i <= 4 && dr.j >= -4 && dr.j <= 4 && dr.bh == 32 && dr.bw == 32);
        cells[(dr.i + 4) * 9 + dr.j + 4]++;
    }
    double chi2 = 0;
    for (int k = 0; k < 81; k++) chi2 += (cells[k] - 500.0) * (cells[k] - 500.0) / 500.0;
    CHECK_MSG(chi2 < 124.8, "crop offsets: chi-square %g over 80 degrees of freedom (p < 0.001)", chi2);
    CHECK_OK(asym_dataset_random(&d, 1000, 1, 32, 32, 2, 1));
    for (size_t q = 0; q < (size_t)1000 * 1024; q++) d.x[q] = 1;
    s.normalize = 0;
    s.aug = pc;
    CHECK_OK(augment_init(&a, &s, &d, 2));
    augmented_stats(&a, &d, 4, m, sd);
    augment_free(&a);
    asym_dataset_free(&d);
    double want = (32 - 20.0 / 9) * (32 - 20.0 / 9) / 1024;
    CHECK_MSG(fabs(m[0] - want) < 0.005, "pad-crop of ones: mean %g, expected %g", m[0], want);
    printf("    crop 32, crop_pad 4: offsets chi-square %.1f (80 dof), mean of padded ones %.4f (expected %.4f)\n", chi2, m[0], want);
}

/* ---- purity: an image is a function of (seed, epoch, index) ---- */

TEST(augment_pure_in_seed_epoch_index) {
    AsymRng r1 = rng_keyed(1, 2, 3), r2 = rng_keyed(1, 2, 3), r3 = rng_keyed(1, 3, 2);
    CHECK(rng_next(&r1) == rng_next(&r2) && rng_next(&r1) != rng_next(&r3));
    AsymDataSpec s;
    AsymDataset d;
    CHECK_OK(stats_set(&s, &d, 20, 3, 24, 24));
    const AugmentSpec specs[2] = {{.crop_h = 24, .crop_w = 24, .crop_pad = 4, .hflip = 0.5f},
                                  {.rrc_h = 20, .rrc_w = 20, .scale = {0.08, 1}, .ratio = {0.75, 4.0 / 3}, .hflip = 0.5f, .eval_crop_h = 20, .eval_crop_w = 20}};
    for (int t = 0; t < 2; t++) {
        Augment a, b;
        s.aug = specs[t];
        CHECK_OK(augment_init(&a, &s, &d, 7));
        CHECK_OK(augment_init(&b, &s, &d, 8));
        size_t in = (size_t)a.c * a.h * a.w, out = (size_t)a.c * a.oh * a.ow, all = 3 * (size_t)d.n * out;
        float *x = malloc(sizeof(float) * all), *y = malloc(sizeof(float) * all), *z = malloc(sizeof(float) * out);
        CHECK(x && y && z);
        /* forward order; then backward on threads */
        for (int e = 0; e < 3; e++)
            for (int i = 0; i < d.n; i++) augment_train(&a, x + ((size_t)e * d.n + i) * out, d.x + i * in, (uint64_t)e, (uint64_t)i);
#pragma omp parallel for schedule(dynamic, 1) num_threads(2)
        for (int q = 3 * d.n - 1; q >= 0; q--) augment_train(&a, y + (size_t)q * out, d.x + (q % d.n) * in, (uint64_t)(q / d.n), (uint64_t)(q % d.n));
        int same = !memcmp(x, y, sizeof(float) * all), epoch_same = 0, seed_same = 0;
        for (int i = 0; i < d.n; i++) {
            epoch_same += !memcmp(x + (size_t)i * out, x + ((size_t)d.n + i) * out, sizeof(float) * out);
            augment_train(&b, z, d.x + i * in, 0, (uint64_t)i);
            seed_same += !memcmp(x + (size_t)i * out, z, sizeof(float) * out);
        }
        free(x);
        free(y);
        free(z);
        augment_free(&a);
        augment_free(&b);
        CHECK_MSG(same, "spec %d: the order or the threads changed the images", t);
        CHECK_MSG(epoch_same <= 2 && seed_same <= 2, "spec %d: %d of %d images equal across epochs, %d across seeds", t, epoch_same, d.n, seed_same);
    }
    asym_dataset_free(&d);
}

/* ---- the config keys ---- */

/* The experiment of a random-data config with data lines, 32 x 32 images. */
static int load_aug(const char *data, AsymExperiment *ex) {
    char text[4096], path[700];
    snprintf(text, sizeof text, "seed: 5\ndata:\n  format: random\n  random: {n: 40, c: 3, h: 32, w: 32, classes: 3}\n%smodel:\n  arch: mlp\n  hidden: [4]\n",
             data);
    snprintf(path, sizeof path, "%s/aug.yaml", test_tmpdir());
    test_write_file(path, text);
    AsymConfig *cfg;
    if (asym_config_load(&cfg, path)) return -1;
    int rc = asym_experiment_from_config(ex, cfg);
    asym_config_free(cfg);
    return rc;
}

TEST(augment_config_keys) {
    AsymExperiment ex;
    /* all off by default */
    CHECK_OK(load_aug("", &ex));
    CHECK(!augment_on(&ex.data.aug) && ex.net.in_h == 32);
    asym_experiment_free(&ex);
    /* ImageNet's pairing, scaled down: the model takes the crops' size */
    CHECK_OK(load_aug("  augment: {random_resized_crop: 24, hflip: true, eval_resize: 28, eval_crop: 24}\n", &ex));
    CHECK(ex.data.aug.rrc_h == 24 && ex.data.aug.hflip == 0.5f && ex.data.aug.scale[0] == 0.08 && ex.data.aug.ratio[1] == 4.0 / 3);
    CHECK(ex.data.h == 24 && ex.data.w == 24 && ex.net.in_h == 24 && ex.data.aug.in_h == 32);
    asym_experiment_free(&ex);
    CHECK_OK(load_aug("  pad: 2\n  augment: {crop: [30, 36], crop_pad: 4, hflip: 0.25, eval_crop: [30, 36], fill: 0.5}\n", &ex));
    CHECK(ex.data.aug.crop_h == 30 && ex.data.aug.crop_w == 36 && ex.data.aug.in_h == 36 && ex.net.in_w == 36 && ex.data.aug.hflip == 0.25f);
    asym_experiment_free(&ex);
    static const char *const bad[][2] = {
        {"  augment: {crop: 44, crop_pad: 4}\n", "key 'data.augment.crop': the crop 44 x 44 is larger than the padded image, 40 x 40"},
        {"  augment: {crop: 28}\n", "key 'data.augment.eval_crop': training images are 28 x 28 but evaluation ones 32 x 32"},
        {"  augment: {random_resized_crop: 24, eval_crop: 40}\n", "key 'data.augment.eval_crop': the centre crop 40 x 40 is larger"},
        {"  augment: {crop: 32, random_resized_crop: 32}\n", "key 'data.augment.random_resized_crop': give crop or random_resized_crop"},
        {"  augment: {random_resized_crop: 32, scale: [0.5, 0.2]}\n", "key 'data.augment.scale': low 0.5 is above high 0.2"},
        {"  augment: {random_resized_crop: 32, scale: [0.5, 2]}\n", "key 'data.augment.scale': high 2 is above 1"},
        {"  augment: {random_resized_crop: 32, ratio: [0, 2]}\n", "key 'data.augment.ratio': expected a positive number"},
        {"  augment: {scale: [0.5, 1]}\n", "key 'data.augment.scale': needs data.augment.random_resized_crop"},
        {"  augment: {crop_pad: 4}\n", "key 'data.augment.crop_pad': needs data.augment.crop"},
        {"  augment: {hflip: 1.5}\n", "data.augment.hflip"},
        {"  augment: {crop: 0}\n", "key 'data.augment.crop': sides must be 1 to 4096 pixels"},
        {"  augment: {flip: true}\n", "unknown key 'data.augment.flip'"},
        {"  augment: true\n", "key 'data.augment': expected a map"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int rc = load_aug(bad[k][0], &ex);
        if (rc == 0) asym_experiment_free(&ex);
        CHECK_MSG(rc != 0 && strstr(asym_last_error(), bad[k][1]) && strstr(asym_last_error(), "aug.yaml:"), "%s: %s", bad[k][0],
                  rc ? asym_last_error() : "accepted");
    }
}

/* The sets with augmentation: training images as stored, test and val
 * through the evaluation transform, normalized; the public call gives
 * the training images as evaluation sees them. */
TEST(augment_data_sets) {
    AsymExperiment ex;
    AsymDataset tr, va, te, raw[3];
    CHECK_OK(load_aug("  val_size: 8\n  augment: {random_resized_crop: 24, eval_resize: 28, eval_crop: 24}\n", &ex));
    CHECK_OK(asym_data_load(&ex.data, ex.seed, &tr, &va, &te));
    CHECK(tr.h == 32 && tr.w == 32 && te.h == 24 && va.h == 24 && va.n == 8);
    asym_dataset_free(&tr);
    asym_dataset_free(&va);
    asym_dataset_free(&te);
    CHECK_OK(asym_experiment_data(&ex, 1, &tr, &va, &te));
    CHECK(tr.h == 24 && tr.w == 24 && tr.n == 32);
    CHECK_OK(asym_experiment_data(&ex, 0, &raw[0], &raw[1], &raw[2]));
    CHECK(raw[0].h == 32 && raw[2].h == 32 && raw[2].w == 32);
    /* the test images are the raw ones resized, cropped, normalized */
    Augment a;
    CHECK_OK(augment_init(&a, &ex.data, &raw[0], 0));
    float y[3 * 24 * 24];
    augment_eval_one(&a, y, raw[2].x);
    augment_free(&a);
    CHECK(!memcmp(y, te.x, sizeof y));
    for (int k = 0; k < 3; k++) asym_dataset_free(&raw[k]);
    asym_dataset_free(&tr);
    asym_dataset_free(&va);
    asym_dataset_free(&te);
    asym_experiment_free(&ex);
}

/* ---- training with augmentation ---- */

TEST(augment_train_fmnist_learns) {
    if (!test_have_fmnist()) return;
    E2eRun r, base;
    const char *subset = "--set data.train_limit=6000 --set data.test_limit=2000";
    char sets[512];
    snprintf(sets, sizeof sets, "%s --set data.augment.crop=28 --set data.augment.crop_pad=2 --set data.augment.hflip=true", subset);
    CHECK(test_train(&r, "augment", e2e_mlp_cfg(), sets) == 0);
    CHECK(test_train(&base, "augment_base", e2e_mlp_cfg(), subset) == 0);
    double err = r.err, err0 = base.err;
    test_run_free(&r);
    test_run_free(&base);
    printf("    MLP, 2 epochs of 6000 Fashion-MNIST images: best test error %.2f%% cropped (pad 2) and flipped, %.2f%% as stored\n", 100 * err,
           100 * err0);
    /* chance is 90%; the augmented task is harder for a 2-epoch MLP */
    CHECK_MSG(err < 0.4, "test error %g", err);
}

static const char *const CFG_RESUME =
    "name: aug-resume\nseed: 4\nepochs: 3\nbatch_size: 16\nthreads: 2\n"
    "data:\n  format: random\n  random: {n: 120, c: 3, h: 10, w: 10, classes: 3}\n"
    "  augment: {random_resized_crop: 8, scale: [0.3, 1], hflip: true, eval_crop: 8}\n"
    "bn_recompute: {batches: 2, alpha: 0.1}\n"
    "model:\n  layers:\n    - {type: conv, out: 4, k: 3, pad: 1}\n    - batchnorm\n    - relu\n    - flatten\n    - {type: fc, out: 3, rule: fa}\n"
    "optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n";

/* The stop hook is asked after every step and after each epoch but the
 * last: 8 steps an epoch, so the 12th question comes at epoch 2, step 3. */
static int stop_after(void *u) { return ++*(int *)u >= 12; }

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = test_read_file_n(a, &na), *y = test_read_file_n(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

/* Stopped inside epoch 2 and resumed: the uninterrupted run's model.bin;
 * without the augmentation: another one. */
TEST(augment_resume_bitwise) {
    char path[700], ref[700], dir[700], plain[700], m1[800], m2[800];
    snprintf(path, sizeof path, "%s/aug_resume.yaml", test_tmpdir());
    test_write_file(path, CFG_RESUME);
    AsymConfig *cfg;
    AsymExperiment ex;
    AsymSummary sum;
    CHECK_OK(asym_config_load(&cfg, path));
    CHECK_OK(asym_experiment_from_config(&ex, cfg));
    snprintf(ref, sizeof ref, "%s/aug_ref", test_tmpdir());
    snprintf(dir, sizeof dir, "%s/aug_stop", test_tmpdir());
    CHECK_OK(asym_train(&ex, ref, NULL, &sum));
    int calls = 0;
    AsymTrainHooks h = {.user = &calls, .stop = stop_after};
    CHECK(asym_train(&ex, dir, &h, &sum) != 0 && sum.interrupted && sum.stop_epoch == 2);
    CHECK_MSG(asym_train_resume(&ex, dir, NULL, &sum) == 0, "resume: %s", asym_last_error());
    snprintf(m1, sizeof m1, "%s/model.bin", ref);
    snprintf(m2, sizeof m2, "%s/model.bin", dir);
    CHECK_MSG(same_file(m1, m2), "stopped at epoch 2, step %d and resumed: not the uninterrupted run's model.bin", sum.stop_step);
    asym_experiment_free(&ex);
    asym_config_free(cfg);
    /* the augmentation is on: the same run without flips ends elsewhere */
    CHECK_OK(asym_config_load(&cfg, path));
    CHECK_OK(asym_config_set(cfg, "data.augment.hflip=false"));
    CHECK_OK(asym_experiment_from_config(&ex, cfg));
    snprintf(plain, sizeof plain, "%s/aug_noflip", test_tmpdir());
    CHECK_OK(asym_train(&ex, plain, NULL, &sum));
    snprintf(m2, sizeof m2, "%s/model.bin", plain);
    CHECK(!same_file(m1, m2));
    asym_experiment_free(&ex);
    asym_config_free(cfg);
}

/* Two MPI ranks see the images one process sees: the same losses. */
TEST(augment_mpi_two_ranks) {
    if (!mpi_bin()) return;
    char path[600];
    snprintf(path, sizeof path, "%s/mpi-aug.yaml", test_tmpdir());
    test_write_file(path, "name: mpi-aug\nseed: 7\nepochs: 1\nbatch_size: 32\nthreads: 1\nlog_steps: true\n"
                          "data:\n  format: random\n  random: {n: 3200, c: 1, h: 8, w: 8, classes: 4}\n"
                          "  augment: {crop: 8, crop_pad: 2, hflip: true}\n"
                          "model:\n  arch: mlp\n  hidden: [64, 32]\n  batchnorm: false\n  init: xavier_uniform\n"
                          "optimizer: {name: sgd, lr: 0.02, momentum: 0.9}\n");
    double gap = mpi_curve_gap(path, "augment", "");
    CHECK_MSG(gap <= 1e-5, "two ranks differ from one process by %.3g relative", gap);
}
