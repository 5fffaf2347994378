/* tboard.c: TensorBoard's event file beside log.jsonl (log.tensorboard):
 * each line of log.jsonl becomes one Event whose step is the epoch and
 * whose Summary holds every number of the line as a float scalar, tagged
 * by its key ("train_loss") or, for a layer, key/layer ("angle/3"). The
 * messages are TensorBoard's (proto/tensorboard.proto, packed by
 * protobuf-c); the framing is TensorFlow's record format: the length as
 * 8 bytes little-endian, its masked CRC-32C, the message, its masked
 * CRC-32C. */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <tensorboard.pb-c.h> /* made by protoc-c in the build folder */
#include <time.h>
#include <unistd.h>

#include "io/io.h"
#include "train/train.h"

struct TbFile {
    FILE *f;
    char path[4200];
};

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: a few
 * hundred bytes per epoch, and no Debian C library provides it. */
static uint32_t crc32c(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c >> 1 ^ (0x82f63b78u & (0u - (c & 1)));
    }
    return ~c;
}

static uint32_t masked(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

static void put_le(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static int put_event(TbFile *tb, const Tensorboard__Event *ev) {
    size_t n = tensorboard__event__get_packed_size(ev);
    uint8_t *rec = malloc(n + 16);
    if (!rec) return asym_fail("%s: out of memory", tb->path);
    put_le(rec, n, 8);
    put_le(rec + 8, masked(crc32c(rec, 8)), 4);
    tensorboard__event__pack(ev, rec + 12);
    put_le(rec + 12 + n, masked(crc32c(rec + 12, n)), 4);
    int bad = fwrite(rec, 1, n + 16, tb->f) != n + 16 || fflush(tb->f) != 0;
    free(rec);
    return bad ? asym_fail("%s: write failed", tb->path) : ASYM_OK;
}

static double wall_time(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The scalars of one line: tags and values, at most cap. */
typedef struct Scalars {
    Tensorboard__Summary__Value *v, **pv;
    char (*tag)[96];
    size_t n, cap;
} Scalars;

static void add(Scalars *s, const char *key, const char *layer, json_t *x) {
    if (!json_is_number(x) || s->n == s->cap) return;
    Tensorboard__Summary__Value *v = &s->v[s->n];
    tensorboard__summary__value__init(v);
    snprintf(s->tag[s->n], sizeof s->tag[0], layer ? "%s/%s" : "%s", key, layer);
    v->tag = s->tag[s->n];
    v->value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    v->simple_value = (float)json_number_value(x);
    s->pv[s->n++] = v;
}

/* Numbers of the line itself, then of each layer of its "layers" list. */
static size_t collect(Scalars *s, json_t *line) {
    const char *key, *k2;
    json_t *v, *x, *layer;
    size_t i;
    json_object_foreach(line, key, v) {
        if (strcmp(key, "epoch")) add(s, key, NULL, v);
        json_array_foreach(json_is_array(v) ? v : NULL, i, layer) {
            const char *name = json_string_value(json_object_get(layer, "name"));
            json_object_foreach(layer, k2, x) add(s, k2, name ? name : "?", x);
        }
    }
    return s->n;
}

int tb_write_line(TbFile *tb, json_t *line) {
    json_t *epoch = json_object_get(line, "epoch");
    if (!tb || !json_is_integer(epoch)) return ASYM_OK;
    Scalars s = {.cap = 4096};
    s.v = calloc(s.cap, sizeof *s.v);
    s.pv = calloc(s.cap, sizeof *s.pv);
    s.tag = calloc(s.cap, sizeof *s.tag);
    int rc = ASYM_ERR;
    if (!s.v || !s.pv || !s.tag) {
        asym_fail("%s: out of memory", tb->path);
    } else {
        Tensorboard__Summary sum = TENSORBOARD__SUMMARY__INIT;
        Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
        sum.n_value = collect(&s, line);
        sum.value = s.pv;
        ev.wall_time = wall_time();
        ev.step = json_integer_value(epoch);
        ev.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY;
        ev.summary = &sum;
        rc = put_event(tb, &ev);
    }
    free(s.v);
    free(s.pv);
    free(s.tag);
    return rc;
}

/* Event files of an earlier start of this run: the new one replaces them. */
static int remove_old(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4200];
    int rc = ASYM_OK;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "events.out.tfevents.", 20)) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink(path)) rc = asym_fail("%s: cannot remove", path);
        }
    if (d) closedir(d);
    return rc;
}

/* Rewrites every line already in log.jsonl (a resumed run's). */
static int replay_log(TbFile *tb, const char *dir) {
    char path[4200];
    uint8_t *text;
    size_t len;
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    if (access(path, F_OK) != 0) return ASYM_OK;
    if (io_read_file(path, &text, &len, (size_t)1 << 30, 0)) return ASYM_ERR;
    int rc = ASYM_OK;
    for (char *line = (char *)text, *end; !rc && line < (char *)text + len; line = end + 1) {
        end = memchr(line, '\n', (size_t)((char *)text + len - line));
        if (!end) end = (char *)text + len;
        json_t *o = json_loadb(line, (size_t)(end - line), 0, NULL);
        if (o) rc = tb_write_line(tb, o);
        json_decref(o);
    }
    free(text);
    return rc;
}

int tb_open(TbFile **out, const char *dir) {
    char host[256] = "localhost";
    TbFile *tb = asym_calloc(1, sizeof *tb);
    *out = NULL;
    if (!tb || remove_old(dir)) {
        free(tb);
        return ASYM_ERR;
    }
    gethostname(host, sizeof host - 1);
    snprintf(tb->path, sizeof tb->path, "%s/events.out.tfevents.%010ld.%s", dir, (long)time(NULL), host);
    if (!(tb->f = fopen(tb->path, "wb"))) {
        free(tb);
        return asym_fail("%s/events.out.tfevents.*: cannot create", dir);
    }
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.wall_time = wall_time();
    ev.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION;
    ev.file_version = "brain.Event:2";
    if (put_event(tb, &ev) || replay_log(tb, dir)) {
        tb_close(tb);
        return ASYM_ERR;
    }
    *out = tb;
    return ASYM_OK;
}

int tb_close(TbFile *tb) {
    if (!tb) return ASYM_OK;
    int bad = fclose(tb->f) != 0;
    int rc = bad ? asym_fail("%s: write failed", tb->path) : ASYM_OK;
    free(tb);
    return rc;
}
