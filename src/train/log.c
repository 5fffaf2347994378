/* log.c: the JSON a run writes, built with jansson: a line of log.jsonl
 * per epoch, of steps.jsonl per step, summary.json and version.json; and
 * the checks on every write. A number keeps the precision it is logged
 * with (6 significant digits in log.jsonl, an angle in summary.json to 4
 * decimals, a step's loss to 9 digits); NaN and Inf, which JSON cannot
 * hold, are null. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"
#include "train/train.h"

/* Every number below is rounded to at most 10 significant digits before it
 * is stored, so that printing it with 10 gives the rounded digits back. */
#define DIGITS JSON_REAL_PRECISION(10)

json_t *log_num(double v, const char *fmt) {
    if (!isfinite(v)) return json_null();
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    return json_real(strtod(buf, NULL));
}

static json_t *g6(double v) { return log_num(v, "%.6g"); }

/* o (taken) as one line of l; a line that cannot be built or written is lost. */
static int put_line(Log *l, json_t *o, size_t flags) {
    char *text = o ? json_dumps(o, flags) : NULL;
    json_decref(o);
    if (!text || fputs(text, l->f) == EOF || fputc('\n', l->f) == EOF) l->lost = 1;
    free(text);
    return l->lost ? asym_fail("%s/%s: a line could not be written", l->dir, l->name) : ASYM_OK;
}

int log_epoch(Log *l, const AsymEpochStats *st, int has_val) {
    json_t *layers = json_array();
    json_t *o = json_pack("{s:i, s:o, s:o, s:o, s:o, s:o}", "epoch", st->epoch, "lr", g6(st->lr), "train_loss", g6(st->train_loss), "train_err", g6(st->train_err),
                          "test_loss", g6(st->test_loss), "test_err", g6(st->test_err));
    if (st->test_err5 >= 0) json_object_set_new(o, "test_err5", g6(st->test_err5));
    if (has_val) json_object_update_new(o, json_pack("{s:o, s:o}", "val_loss", g6(st->val_loss), "val_err", g6(st->val_err)));
    if (has_val && st->val_err5 >= 0) json_object_set_new(o, "val_err5", g6(st->val_err5));
    json_object_update_new(o, json_pack("{s:o, s:o, s:o}", "seconds", log_num(st->seconds, "%.3f"), "images_per_s", log_num(st->images_per_s, "%.1f"), "mean_angle",
                                        g6(st->mean_angle)));
    if (st->wm_fallbacks) json_object_set_new(o, "wm_fallbacks", json_integer(st->wm_fallbacks));
    if (st->skipped_files) json_object_set_new(o, "skipped_files", json_integer(st->skipped_files));
    if (st->data_wait_s >= 0) json_object_set_new(o, "data_wait_s", log_num(st->data_wait_s, "%.3f"));
    for (int i = 0; i < st->n_align; i++) {
        const AsymAlignment *a = &st->align[i];
        json_array_append_new(layers, json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "name", a->name, "rule", asym_rule_name(a->rule), "angle", g6(a->angle),
                                                "norm_ratio", g6(a->norm_ratio), "sign_agree", g6(a->sign_agree), "delta_angle", g6(a->delta_angle),
                                                "grad_angle", g6(a->grad_angle)));
    }
    json_object_set_new(o, "layers", layers);
    if (l->tb && tb_write_line(l->tb, o)) l->tb_lost = 1;
    return put_line(l, o, DIGITS);
}

int log_step(Log *l, int epoch, int step, float loss) {
    return put_line(l, json_pack("{s:i, s:i, s:f}", "epoch", epoch, "step", step, "loss", (double)loss), JSON_REAL_PRECISION(9));
}

static json_t *angle_list(const AsymAlignment *a, int n) {
    json_t *list = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(list, log_num(a[i].angle, "%.4f"));
    return list;
}

/* A run that stopped before its first test error has null for
 * best_test_err and final_test_err. */
static json_t *summary(const AsymExperiment *ex, const AsymSummary *s, const AsymAlignment *initial, const AsymAlignment *final, int n, double comm_per_step,
                       double comm_seconds) {
    json_t *o = json_pack("{s:s, s:o, s:i, s:o, s:i, s:o, s:o, s:I, s:s, s:b}", "name", ex->name, "best_test_err", log_num(s->best_test_err, "%.6f"), "best_epoch",
                          s->best_epoch, "final_test_err", log_num(s->final_test_err, "%.6f"), "epochs", s->epochs, "seconds", log_num(s->seconds, "%.3f"),
                          "images_per_s", log_num(s->images_per_s, "%.1f"), "seed", (json_int_t)s->seed, "rule",
                          asym_rule_name(ex->net.rule ? ex->net.rule : ASYM_RULE_BP), "diverged", s->diverged);
    if (!o) return NULL;
    if (s->diverged)
        json_object_update_new(o, json_pack("{s:s, s:i, s:i}", "diverged_in", s->diverged_in, "diverged_epoch", s->stop_epoch, "diverged_step", s->stop_step));
    if (s->final_test_err5 >= 0) json_object_set_new(o, "final_test_err5", log_num(s->final_test_err5, "%.6f"));
    if (isfinite(s->final_mean_angle)) json_object_set_new(o, "final_mean_angle", log_num(s->final_mean_angle, "%.4f"));
    json_object_set_new(o, "initial_angles", angle_list(initial, n));
    if (s->epochs > 0) json_object_set_new(o, "final_angles", angle_list(final, n));
    if (dist_size() > 1) {
        char bytes[32];
        snprintf(bytes, sizeof bytes, "%.0f", comm_per_step);
        json_object_update_new(o, json_pack("{s:i, s:I, s:o}", "ranks", dist_size(), "allreduce_bytes_per_step", (json_int_t)strtoll(bytes, NULL, 10), "allreduce_seconds",
                                            log_num(comm_seconds, "%.3f")));
    }
    if (s->best_val_epoch > 0)
        json_object_update_new(o, json_pack("{s:o, s:i, s:o}", "best_val_err", log_num(s->best_val_err, "%.6f"), "best_val_epoch", s->best_val_epoch,
                                            "test_err_at_best_val", log_num(s->test_err_at_best_val, "%.6f")));
    return o;
}

/* text and a newline, written atomically to dir/name */
static int write_text(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const void *parts[2] = {text, "\n"};
    size_t lens[2] = {strlen(text), 1};
    return io_write_atomic(path, parts, lens, 2);
}

int log_summary(const char *dir, const AsymExperiment *ex, const AsymSummary *s, const AsymAlignment *initial, const AsymAlignment *final, int n,
                double comm_per_step, double comm_seconds, const char *version) {
    json_t *o = summary(ex, s, initial, final, n, comm_per_step, comm_seconds);
    if (o && version) json_object_set_new(o, "version", json_loads(version, 0, NULL));
    char *text = o ? json_dumps(o, DIGITS) : NULL;
    json_decref(o);
    if (!text) return asym_fail("%s/summary.json: out of memory", dir);
    int rc = write_text(dir, "summary.json", text);
    free(text);
    return rc;
}

int log_version(const char *dir, int resume, int threads, char **text) {
    char path[4200], now[2048];
    int n = asym_version_json(now, sizeof now, threads);
    if (n >= (int)sizeof now) return asym_fail("version.json: more than %zu bytes", sizeof now);
    snprintf(path, sizeof path, "%s/version.json", dir);
    json_t *o = json_loads(now, 0, NULL);
    if (!o) return asym_fail("version.json: this build's description is not JSON");
    if (resume) {
        /* the build that made the run so far: the same build keeps what its
         * file said; another one's object goes under resumed_from (null when
         * the run predates version.json) */
        json_t *old = access(path, F_OK) == 0 ? json_load_file(path, 0, NULL) : NULL, *from = json_null();
        if (json_is_object(old)) {
            json_t *was = json_object_get(old, "resumed_from"), *base = json_deep_copy(old);
            json_object_del(base, "resumed_from");
            json_decref(from);
            from = !json_equal(base, o) ? json_incref(old) : was ? json_incref(was) : NULL;
            json_decref(base);
        }
        if (from) json_object_set_new(o, "resumed_from", from);
        json_decref(old);
    }
    *text = json_dumps(o, DIGITS);
    json_decref(o);
    if (!*text) return asym_fail("%s: out of memory", path);
    int rc = write_text(dir, "version.json", *text);
    if (rc) free(*text), *text = NULL;
    return rc;
}

int log_open(Log *l, const char *dir, const char *name, int resume) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    l->dir = dir, l->name = name, l->lost = 0;
    if (!(l->f = fopen(path, resume ? "a" : "w"))) return asym_fail("%s: cannot write: %s", path, strerror(errno));
    return ASYM_OK;
}

int log_keep_lines(const char *dir, const char *name, long done) {
    char path[4200];
    uint8_t *text = NULL;
    size_t len = 0, keep = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (access(path, F_OK) == 0 && io_read_file(path, &text, &len, (size_t)1 << 30, 0)) return ASYM_ERR;
    for (long k = 0; keep < len && k < done; keep++)
        if (text[keep] == '\n') k++;
    const void *parts[1] = {text ? (const void *)text : ""};
    size_t lens[1] = {keep};
    int rc = io_write_atomic(path, parts, lens, 1);
    free(text);
    return rc;
}

static const char *write_error(int err) { return err ? strerror(err) : "an earlier write did not reach the file"; }

int log_flush(Log *l) {
    errno = 0;
    if (!l->lost && fflush(l->f) == 0 && !ferror(l->f)) return ASYM_OK;
    return asym_fail("%s/%s: write failed: %s", l->dir, l->name, write_error(errno));
}

int log_close(Log *l, int failed) {
    int tb_bad = tb_close(l->tb) || (l->tb_lost && asym_fail("%s/events.out.tfevents.*: an event could not be written", l->dir));
    l->tb = NULL;
    if (tb_bad) failed = 1;
    if (!l->f) return tb_bad ? ASYM_ERR : ASYM_OK;
    errno = 0;
    int bad = ferror(l->f) != 0 || l->lost;
    if (fclose(l->f) != 0) bad = 1;
    int err = errno;
    l->f = NULL;
    if (!bad) return tb_bad ? ASYM_ERR : ASYM_OK;
    char first[1024];
    snprintf(first, sizeof first, "%s", failed ? asym_last_error() : "");
    return asym_fail("%s%s%s/%s: write failed: %s", first, failed ? "; and " : "", l->dir, l->name, write_error(err));
}
