/* test_probe.c: `asymbp probe --weights`: a probe that starts from loaded
 * weights (a probe folder's .npy files, or a run's model.bin) computes its
 * backward pass with the rule's own B for those weights. Sign-concordant B
 * (usf, frsf, brsf) take the loaded W's signs, keeping the loaded B's
 * magnitudes (usf: its scale); fa, kp and wm use a loaded B as it is. The
 * parameters are negated before they are loaded, so that a B that kept the
 * signs it was saved with (those of the saved W) agrees with the loaded W
 * on no entry, and the feedback matrices scaled by 1.5, so that they differ
 * from the B the same configuration and seed make without them. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "asymbp.h"
#include "io/io.h"
#include "test.h"

/* The rules with a feedback matrix B. */
static const char *const RULES[] = {"fa", "usf", "frsf", "brsf", "kp", "wm"};
enum { NRULES = sizeof RULES / sizeof RULES[0] };

static int sign_rule(const char *r) { return !strcmp(r, "usf") || !strcmp(r, "frsf") || !strcmp(r, "brsf"); }

/* A small conv net on random images, three weight layers; one epoch is
 * four steps. */
static const char *probe_cfg(void) {
    static char path[512];
    snprintf(path, sizeof path, "%s/probe.yaml", test_tmpdir());
    test_write_file(path, "name: probe-weights\nseed: 5\nepochs: 1\nbatch_size: 16\n"
                          "data:\n  format: random\n  random: {n: 64, c: 2, h: 8, w: 8, classes: 4}\n"
                          "model:\n  layers:\n    - {type: conv, out: 4, k: 3, pad: 1}\n    - relu\n    - {type: maxpool, k: 2}\n"
                          "    - flatten\n    - {type: fc, out: 8}\n    - relu\n    - {type: fc, out: 4}\n"
                          "optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n");
    return path;
}

/* Named float32 tensors: those a probe folder or a model.bin holds. */
typedef struct {
    char name[64];
    float *v;
    size_t n;
    int ndim;
    int64_t shape[8];
} Tensor;

typedef struct {
    Tensor t[64];
    int n;
} Tensors;

static void tensors_free(Tensors *s) {
    for (int i = 0; i < s->n; i++) free(s->t[i].v);
    s->n = 0;
}

static const Tensor *find(const Tensors *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    return NULL;
}

static int npy_load(const char *dir, const char *file, Tensor *t) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (npy_read_f32(path, &t->v, &t->ndim, t->shape)) return -1;
    t->n = 1;
    for (int d = 0; d < t->ndim; d++) t->n *= (size_t)t->shape[d];
    return 0;
}

static int npy_save(const char *dir, const char *file, const Tensor *t) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return npy_write_f32(path, t->v, t->ndim, t->shape);
}

static json_t *manifest(const char *dir) {
    char path[1200];
    json_error_t err;
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    return json_load_file(path, 0, &err);
}

static const char *str(json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

/* Appends the tensors of manifest list `list` ("params", "buffers",
 * "feedback"), named as there, read from dir. */
static int load_list(json_t *man, const char *list, const char *dir, Tensors *s) {
    json_t *a = json_object_get(man, list);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *e = json_array_get(a, i);
        if (s->n == 64 || !str(e, "name") || !str(e, "value")) return -1;
        Tensor *t = &s->t[s->n];
        snprintf(t->name, sizeof t->name, "%s", str(e, "name"));
        if (npy_load(dir, str(e, "value"), t)) return -1;
        s->n++;
    }
    return 0;
}

/* Writes a weights folder dst from the probe folder src: every parameter
 * (p###.npy) negated, the buffers as they are, and when with_b the
 * feedback matrices (F###.npy) times 1.5. The loaded values, by name, go
 * to *out. */
static int negated_dir(const char *src, const char *dst, int with_b, Tensors *out) {
    char o[256];
    json_t *man = manifest(src);
    out->n = 0;
    if (!man || test_sh(o, sizeof o, "rm -rf '%s' && mkdir -p '%s'", dst, dst) != 0) goto fail;
    if (load_list(man, "params", src, out)) goto fail;
    int np = out->n;
    if (load_list(man, "buffers", src, out)) goto fail;
    int nb = out->n;
    if (with_b && load_list(man, "feedback", src, out)) goto fail;
    for (int i = 0; i < out->n; i++) {
        json_t *e = json_array_get(json_object_get(man, i < np ? "params" : i < nb ? "buffers" : "feedback"), (size_t)(i < np ? i : i < nb ? i - np : i - nb));
        for (size_t j = 0; j < out->t[i].n && i < np; j++) out->t[i].v[j] = -out->t[i].v[j];
        for (size_t j = 0; j < out->t[i].n && i >= nb; j++) out->t[i].v[j] *= 1.5f;
        if (npy_save(dst, str(e, "value"), &out->t[i])) goto fail;
    }
    json_decref(man);
    return 0;
fail:
    json_decref(man);
    tensors_free(out);
    return -1;
}

/* model.bin: "ASYMNET1", uint32 count, per tensor uint32 name length, the
 * name, uint64 float count and the floats; the CRC-32 of all that. */
static int bin_read(const char *path, Tensors *s) {
    size_t len;
    char *buf = test_read_file_n(path, &len);
    size_t off = 12;
    uint32_t count;
    s->n = 0;
    if (!buf || len < 16 || memcmp(buf, "ASYMNET1", 8)) goto fail;
    memcpy(&count, buf + 8, 4);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t nl;
        uint64_t n;
        if (s->n == 64 || off + 4 > len - 4) goto fail;
        memcpy(&nl, buf + off, 4);
        if (nl >= sizeof s->t[0].name || off + 4 + nl + 8 > len - 4) goto fail;
        Tensor *t = &s->t[s->n];
        memcpy(t->name, buf + off + 4, nl);
        t->name[nl] = 0;
        memcpy(&n, buf + off + 4 + nl, 8);
        off += 4 + nl + 8;
        if (n > (len - 4 - off) / sizeof(float) || !(t->v = malloc(n * sizeof(float) + 1))) goto fail;
        memcpy(t->v, buf + off, n * sizeof(float));
        t->n = n, t->ndim = 1, t->shape[0] = (int64_t)n;
        off += n * sizeof(float);
        s->n++;
    }
    free(buf);
    return off == len - 4 ? 0 : -1;
fail:
    free(buf);
    tensors_free(s);
    return -1;
}

static int bin_write(const char *path, const Tensors *s) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint32_t count = (uint32_t)s->n;
    uLong crc = crc32(0, NULL, 0);
#define PUT(p, k) (fwrite((p), 1, (k), f), crc = crc32(crc, (const Bytef *)(p), (uInt)(k)))
    PUT("ASYMNET1", 8);
    PUT(&count, 4);
    for (int i = 0; i < s->n; i++) {
        uint32_t nl = (uint32_t)strlen(s->t[i].name);
        uint64_t n = s->t[i].n;
        PUT(&nl, 4);
        PUT(s->t[i].name, nl);
        PUT(&n, 8);
        PUT(s->t[i].v, n * sizeof(float));
    }
#undef PUT
    uint32_t c32 = (uint32_t)crc;
    fwrite(&c32, 1, 4, f);
    return fclose(f) == 0 ? 0 : -1;
}

/* Checks the probe in dir, started from `loaded` (by name): its
 * parameters are the loaded ones, and each weight layer's B is the rule's
 * own for them. usf, frsf, brsf: sign(B) = sign(W) wherever W != 0; usf:
 * |B| = s, one value; frsf, brsf: |B| as loaded when b_loaded; fa, kp, wm:
 * B is the loaded B when b_loaded. Returns 0 when all holds; otherwise
 * describes the first failure in why. */
static int follows(const char *rule, const char *dir, const Tensors *loaded, int b_loaded, char *why, size_t cap) {
    json_t *man = manifest(dir);
    Tensors got = {.n = 0};
    int rc = -1;
    snprintf(why, cap, "%s: no manifest or unreadable tensors", dir);
    if (!man || load_list(man, "params", dir, &got) || load_list(man, "feedback", dir, &got)) goto done;
    json_t *ps = json_object_get(man, "params"), *fs = json_object_get(man, "feedback"), *wl = json_object_get(man, "weight_layers");
    for (size_t i = 0; i < json_array_size(ps); i++) {
        const Tensor *t = &got.t[i], *l = find(loaded, t->name);
        if (!l || l->n != t->n || memcmp(l->v, t->v, t->n * sizeof(float))) {
            snprintf(why, cap, "rule %s: parameter %s of the probe is not the loaded one", rule, t->name);
            goto done;
        }
    }
    if (json_array_size(wl) == 0) {
        snprintf(why, cap, "%s: no weight layers in the manifest", dir);
        goto done;
    }
    for (size_t k = 0; k < json_array_size(wl); k++) {
        json_t *w = json_array_get(wl, k);
        const char *r = str(w, "rule");
        int wi = (int)json_integer_value(json_object_get(w, "weight")), fi = (int)json_integer_value(json_object_get(w, "feedback"));
        if (!r || strcmp(r, rule) || fi < 0 || (size_t)fi >= json_array_size(fs) || wi < 0 || (size_t)wi >= json_array_size(ps)) {
            snprintf(why, cap, "weight layer %zu: rule %s, feedback %d; expected %s with a B", k, r ? r : "?", fi, rule);
            goto done;
        }
        const Tensor *W = &got.t[wi], *B = &got.t[json_array_size(ps) + fi], *Bl = b_loaded ? find(loaded, B->name) : NULL;
        if (B->n != W->n || (b_loaded && (!Bl || Bl->n != B->n))) {
            snprintf(why, cap, "%s: B has %zu values, W %zu, the loaded B %zu", B->name, B->n, W->n, Bl ? Bl->n : 0);
            goto done;
        }
        if (sign_rule(rule)) {
            size_t live = 0, agree = 0, same = 0;
            int usf = !strcmp(rule, "usf");
            for (size_t j = 0; j < W->n; j++) {
                live += W->v[j] != 0;
                agree += (W->v[j] > 0 && B->v[j] > 0) || (W->v[j] < 0 && B->v[j] < 0);
                same += usf ? W->v[j] == 0 || fabsf(B->v[j]) == fabsf(B->v[0]) : Bl && fabsf(B->v[j]) == fabsf(Bl->v[j]);
            }
            if (agree != live || live == 0) {
                snprintf(why, cap, "rule %s: sign(%s) agrees with the loaded sign(%s) on %zu of %zu entries", rule, B->name, W->name, agree, live);
                goto done;
            }
            if ((usf || Bl) && same != B->n) {
                snprintf(why, cap, "rule %s: |%s| is %s on %zu of %zu entries", rule, B->name, usf ? "one scale s" : "the loaded |B|", same, B->n);
                goto done;
            }
        } else if (Bl && memcmp(B->v, Bl->v, B->n * sizeof(float))) {
            snprintf(why, cap, "rule %s: %s is not the loaded B", rule, B->name);
            goto done;
        } else if (!Bl && !strcmp(rule, "wm")) {
            /* mirrored from the loaded W by a pre-sweep */
            double bw = 0, bb = 0, ww = 0;
            for (size_t j = 0; j < W->n; j++) bw += (double)B->v[j] * W->v[j], bb += (double)B->v[j] * B->v[j], ww += (double)W->v[j] * W->v[j];
            if (!(bw > 0.99 * sqrt(bb * ww))) {
                snprintf(why, cap, "rule wm: %s is not mirrored from the loaded %s (cosine %.3f)", B->name, W->name, bw / sqrt(bb * ww));
                goto done;
            }
        }
    }
    rc = 0;
done:
    json_decref(man);
    tensors_free(&got);
    return rc;
}

/* Negates, in s, the parameters named in the manifest of the probe dir
 * and scales its feedback matrices by 1.5. */
static int alter(const char *dir, Tensors *s) {
    json_t *man = manifest(dir), *ps = json_object_get(man, "params"), *fs = json_object_get(man, "feedback");
    int rc = man && json_array_size(ps) > 0 && json_array_size(fs) > 0 ? 0 : -1;
    for (size_t j = 0; j < json_array_size(ps) + json_array_size(fs); j++) {
        int p = j < json_array_size(ps);
        const char *name = str(json_array_get(p ? ps : fs, p ? j : j - json_array_size(ps)), "name");
        const Tensor *t = find(s, name ? name : "");
        for (size_t e = 0; t && e < t->n; e++) t->v[e] = p ? -t->v[e] : 1.5f * t->v[e];
        if (!t) rc = -1;
    }
    json_decref(man);
    return rc;
}

/* From a probe folder: every rule, with and without the probe's B in the
 * folder (without: sign rules with their own magnitudes, and wm, whose B is
 * then mirrored from the loaded W). */
TEST(probe_weights_dir_feedback_follows) {
    int failed = 0;
    for (int i = 0; i < NRULES; i++) {
        const char *r = RULES[i];
        char a[600], neg[600], out[600], why[512];
        snprintf(a, sizeof a, "%s/%s-a", test_tmpdir(), r);
        int rc = test_cli("probe '%s' --set rule=%s --batch 8 --steps 1 --out '%s'", probe_cfg(), r, a);
        CHECK_MSG(rc == 0, "probe (rule %s) failed:\n%s", r, test_out);
        for (int with_b = 1; with_b >= 0; with_b--) {
            Tensors loaded;
            snprintf(neg, sizeof neg, "%s/%s-neg%d", test_tmpdir(), r, with_b);
            snprintf(out, sizeof out, "%s/%s-b%d", test_tmpdir(), r, with_b);
            CHECK_MSG(negated_dir(a, neg, with_b, &loaded) == 0, "could not write the negated weights of %s into %s", a, neg);
            rc = test_cli("probe '%s' --set rule=%s --weights '%s' --batch 8 --steps 1 --out '%s'", probe_cfg(), r, neg, out);
            int bad = rc == 0 && follows(r, out, &loaded, with_b, why, sizeof why);
            tensors_free(&loaded);
            CHECK_MSG(rc == 0, "probe --weights %s (rule %s) failed:\n%s", neg, r, test_out);
            if (bad) {
                printf("    --weights %s (%s B): %s\n", neg, with_b ? "with its" : "without a", why);
                failed++;
            }
            if (!sign_rule(r) && strcmp(r, "wm")) break; /* fa, kp: nothing to check without a loaded B */
        }
    }
    CHECK_MSG(!failed, "%d probes from negated weights do not use the rule's B for them", failed);
}

/* From a model.bin: one epoch of training, then a probe of the model as
 * saved and of the model with every parameter negated and every B scaled. */
TEST(probe_model_bin_feedback_follows) {
    int failed = 0;
    for (int i = 0; i < NRULES; i++) {
        const char *r = RULES[i];
        char run[600], bin[700], nbin[700], out[600], why[512];
        Tensors saved;
        snprintf(run, sizeof run, "%s/%s-run", test_tmpdir(), r);
        snprintf(bin, sizeof bin, "%s/model.bin", run);
        snprintf(nbin, sizeof nbin, "%s/negated.bin", run);
        int rc = test_cli("train '%s' --set rule=%s --out '%s'", probe_cfg(), r, run);
        CHECK_MSG(rc == 0, "train (rule %s) failed:\n%s", r, test_out);
        CHECK_MSG(bin_read(bin, &saved) == 0, "%s: not a readable model.bin", bin);
        snprintf(out, sizeof out, "%s/%s-saved", test_tmpdir(), r);
        int ok = test_cli("probe '%s' --set rule=%s --weights '%s' --batch 8 --steps 1 --out '%s'", probe_cfg(), r, bin, out) == 0;
        if (ok && follows(r, out, &saved, 1, why, sizeof why)) {
            printf("    --weights %s: %s\n", bin, why);
            failed++;
        }
        ok = ok && alter(out, &saved) == 0 && bin_write(nbin, &saved) == 0;
        snprintf(out, sizeof out, "%s/%s-negated", test_tmpdir(), r);
        ok = ok && test_cli("probe '%s' --set rule=%s --weights '%s' --batch 8 --steps 1 --out '%s'", probe_cfg(), r, nbin, out) == 0;
        if (ok && follows(r, out, &saved, 1, why, sizeof why)) {
            printf("    --weights %s: %s\n", nbin, why);
            failed++;
        }
        tensors_free(&saved);
        CHECK_MSG(ok, "rule %s: a probe of %s failed, or %s could not be written:\n%s", r, bin, nbin, test_out);
    }
    CHECK_MSG(!failed, "%d probes from a model.bin do not use the rule's B for its weights", failed);
}
