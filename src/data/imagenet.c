/* imagenet.c: the index of a streamed image set (format imagenet): one
 * entry per image, a file or a member of a tar shard, with its label.
 * Three layouts (docs/DATA.md):
 *   - class folders, PATH/train/CLASS/IMAGE.JPEG (classes in name order, as
 *     torchvision's ImageFolder); PATH/val the same, its class names
 *     matched to train's;
 *   - ILSVRC2012's flat PATH/val/IMAGE.JPEG with data.val_labels, a file of
 *     one class name per line for the images in name order (the
 *     imagenet_2012_validation_synset_labels.txt layout), or the devkit's
 *     ILSVRC2012_validation_ground_truth.txt (ILSVRC2012_IDs), mapped to
 *     WNIDs by the devkit's meta.mat beside it (devkit.c);
 *   - tar shards (data.train_shards, data.val_shards: "train-{0000..0146}
 *     .tar" or a list), members KEY.jpg followed by KEY.cls holding the
 *     label as a decimal number; classes are named by number.
 * The index is built once and kept in data.cache_dir under a name derived
 * from the root and split; it holds a stamp of the listing (the mtime and
 * size of every folder and shard it came from) and a CRC. A stamp that
 * differs or a file that does not check out is rebuilt, and the note
 * says why. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include "asymbp.h"
#include "data/data.h"
#include "io/io.h"

#define INDEX_MAGIC "ASYMIDX1"

void image_index_free(ImageIndex *ix) {
    asym_data_names_free(ix->names, ix->classes);
    asym_data_names_free(ix->files, ix->n_files);
    free(ix->file);
    free(ix->off);
    free(ix->size);
    free(ix->y);
    memset(ix, 0, sizeof *ix);
}

/* Room for one more sample (grows by half). */
static int grow(ImageIndex *ix, int *cap) {
    if (ix->n < *cap) return ASYM_OK;
    int c = *cap ? *cap + *cap / 2 : 1024;
    uint32_t *f = realloc(ix->file, (size_t)c * sizeof *f);
    if (f) ix->file = f;
    uint64_t *o = f ? realloc(ix->off, (size_t)c * sizeof *o) : NULL;
    if (o) ix->off = o;
    uint64_t *z = o ? realloc(ix->size, (size_t)c * sizeof *z) : NULL;
    if (z) ix->size = z;
    int32_t *y = z ? realloc(ix->y, (size_t)c * sizeof *y) : NULL;
    if (!y) return asym_fail("out of memory indexing %d images", c);
    ix->y = y;
    *cap = c;
    return ASYM_OK;
}

static int add_file(ImageIndex *ix, int *fcap, char *path) {
    if (ix->n_files == *fcap) {
        int c = *fcap ? 2 * *fcap : 64;
        char **v = realloc(ix->files, (size_t)c * sizeof *v);
        if (!v) return free(path), asym_fail("out of memory");
        ix->files = v, *fcap = c;
    }
    ix->files[ix->n_files++] = path;
    return ASYM_OK;
}

static int add_sample(ImageIndex *ix, int *cap, uint32_t file, uint64_t off, uint64_t size, int32_t y) {
    if (grow(ix, cap)) return ASYM_ERR;
    ix->file[ix->n] = file, ix->off[ix->n] = off, ix->size[ix->n] = size, ix->y[ix->n] = y;
    ix->n++;
    return ASYM_OK;
}

/* ---- the listing's stamp: FNV-1a over what the index came from ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t stamp_path(uint64_t h, const char *path) {
    struct stat st;
    int64_t v[2] = {-1, -1};
    if (!stat(path, &st)) v[0] = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, v[1] = (int64_t)st.st_size;
    return fnv(fnv(h, path, strlen(path) + 1), v, sizeof v);
}

/* ---- class folders ---- */

static int class_of(char *const *names, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return i;
    return -1;
}

/* dir/CLASS/IMAGE into ix; names NULL: the classes are dir's (ix->names set),
 * else dir's folders must be among names. */
static int index_folders(const char *dir, char **names, int classes, ImageIndex *ix) {
    FolderList l;
    int cap = 0, fcap = 0;
    if (folder_list(dir, NULL, &l)) return ASYM_ERR;
    int rc = ASYM_OK;
    for (int i = 0; !rc && i < l.n; i++) {
        int y = names ? class_of(names, classes, l.names[l.y[i]]) : l.y[i];
        if (y < 0) rc = asym_fail("%s: class folder %s is not one of the training classes", dir, l.names[l.y[i]]);
        char *p = rc ? NULL : strdup(l.files[i]);
        if (!rc && (!p || add_file(ix, &fcap, p) || add_sample(ix, &cap, (uint32_t)(ix->n_files - 1), 0, 0, y))) rc = ASYM_ERR;
    }
    if (!rc && !names) ix->names = l.names, ix->classes = l.classes, l.names = NULL, l.classes = 0;
    folder_list_free(&l);
    return rc;
}

static int stamp_folders(const char *dir, uint64_t *h) {
    char **names, p[4096];
    int n;
    *h = stamp_path(*h, dir);
    if (folder_class_names(dir, NULL, &names, &n)) return ASYM_ERR;
    for (int i = 0; i < n; i++)
        if (!data_join(p, sizeof p, dir, names[i])) *h = stamp_path(*h, p);
    asym_data_names_free(names, n);
    return ASYM_OK;
}

/* ---- flat validation folder with a label file ---- */

static int is_image(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".png"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The image files of dir, sorted, as full paths. */
static int flat_files(const char *dir, char ***out, int *n_out) {
    DIR *d = opendir(dir);
    if (!d) return asym_fail("%s: cannot open the folder", dir);
    char **v = NULL, p[4096];
    int n = 0, cap = 0, rc = ASYM_OK;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        if (!is_image(e->d_name) || data_join(p, sizeof p, dir, e->d_name)) continue;
        if (n == cap) {
            char **w = realloc(v, (size_t)(cap = cap ? 2 * cap : 1024) * sizeof *w);
            if (!w) rc = asym_fail("out of memory");
            else v = w;
        }
        if (!rc && !(v[n] = strdup(p))) rc = asym_fail("out of memory");
        if (!rc) n++;
    }
    closedir(d);
    if (!rc && !n) rc = asym_fail("%s: no .JPEG, .jpg or .png files", dir);
    if (rc) return asym_data_names_free(v, n), ASYM_ERR;
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v, *n_out = n;
    return ASYM_OK;
}

/* One line of the label file: its class name, trimmed. */
static int next_line(const uint8_t *buf, size_t len, size_t *at, char *out, size_t cap) {
    while (*at < len) {
        size_t i = *at, j = i;
        while (j < len && buf[j] != '\n') j++;
        *at = j + 1;
        while (i < j && (buf[i] == ' ' || buf[i] == '\t')) i++;
        size_t e = j;
        while (e > i && (buf[e - 1] == '\r' || buf[e - 1] == ' ' || buf[e - 1] == '\t')) e--;
        if (e > i) {
            size_t n = e - i < cap - 1 ? e - i : cap - 1;
            memcpy(out, buf + i, n), out[n] = 0;
            return 1;
        }
    }
    return 0;
}

/* The devkit's ground truth (lines of ILSVRC2012_IDs, the file's first
 * line a number): its data/meta.mat beside it maps them to WNIDs. */
static int devkit_table(const char *labels, const uint8_t *buf, size_t len, char ***wnid, int *max) {
    char line[512], meta[4096];
    size_t at = 0;
    *wnid = NULL, *max = 0;
    if (!next_line(buf, len, &at, line, sizeof line) || strspn(line, "0123456789") != strlen(line)) return ASYM_OK;
    const char *slash = strrchr(labels, '/');
    snprintf(meta, sizeof meta, "%.*smeta.mat", slash ? (int)(slash - labels + 1) : 0, labels);
    if (devkit_wnids(meta, wnid, max)) {
        char why[1024];
        snprintf(why, sizeof why, "%s", asym_last_error());
        return asym_fail("%s holds ILSVRC2012_IDs, which %s maps to WNIDs: %s", labels, meta, why);
    }
    return ASYM_OK;
}

static int index_flat(const char *dir, const char *labels, char **names, int classes, ImageIndex *ix) {
    uint8_t *buf;
    size_t len, at = 0;
    char line[512], **wnid = NULL;
    int cap = 0, rc = ASYM_OK, max = 0;
    if (io_read_file(labels, &buf, &len, (size_t)1 << 28, 0)) return ASYM_ERR;
    if (devkit_table(labels, buf, len, &wnid, &max) || flat_files(dir, &ix->files, &ix->n_files)) {
        asym_data_names_free(wnid, DEVKIT_TABLE);
        return free(buf), ASYM_ERR;
    }
    for (int i = 0; !rc && i < ix->n_files; i++) {
        if (!next_line(buf, len, &at, line, sizeof line))
            rc = asym_fail("%s: %d labels for the %d images of %s", labels, i, ix->n_files, dir);
        const char *name = line;
        if (!rc && wnid) {
            char *end;
            long id = strtol(line, &end, 10);
            name = *end || id < 1 || id > max ? NULL : wnid[id];
            if (!name) rc = asym_fail("%s: line %d: %s is not an ILSVRC2012_ID of meta.mat's synsets (1 to %d)", labels, i + 1, line, max);
        }
        int y = rc ? 0 : class_of(names, classes, name);
        if (!rc && y < 0) rc = asym_fail("%s: line %d: class %s is not a training class folder", labels, i + 1, name);
        if (!rc) rc = add_sample(ix, &cap, (uint32_t)i, 0, 0, y);
    }
    if (!rc && next_line(buf, len, &at, line, sizeof line)) rc = asym_fail("%s: more labels than the %d images of %s", labels, ix->n_files, dir);
    asym_data_names_free(wnid, DEVKIT_TABLE);
    free(buf);
    return rc;
}

/* ---- tar shards ---- */

/* The shard list: one pattern or path per line, each "{A..B}" expanded
 * (decimal, as wide as A), relative ones under root. */
static int expand_shards(const char *root, const char *spec, ImageIndex *ix) {
    int fcap = 0;
    for (const char *s = spec; *s;) {
        const char *e = strchr(s, '\n');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        char pat[1024], full[4096];
        if (l >= sizeof pat) return asym_fail("shard pattern too long");
        memcpy(pat, s, l), pat[l] = 0;
        s += l + (e != NULL);
        if (!l) continue;
        char *lb = strchr(pat, '{'), *dots = lb ? strstr(lb, "..") : NULL, *rb = dots ? strchr(dots, '}') : NULL;
        long a = 0, b = 0;
        int width = 0;
        if (rb) {
            char *end;
            a = strtol(lb + 1, &end, 10), width = (int)(end - lb - 1);
            if (end != dots || width < 1) return asym_fail("shard pattern %s: expected {FIRST..LAST}", pat);
            b = strtol(dots + 2, &end, 10);
            if (end != rb || b < a || b - a > 1000000) return asym_fail("shard pattern %s: expected {FIRST..LAST} with FIRST <= LAST", pat);
        }
        for (long k = a; k <= b; k++) {
            char one[2048];
            if (rb) snprintf(one, sizeof one, "%.*s%0*ld%s", (int)(lb - pat), pat, width, k, rb + 1);
            else snprintf(one, sizeof one, "%s", pat);
            if (one[0] == '/') snprintf(full, sizeof full, "%s", one);
            else if (data_join(full, sizeof full, root, one)) return ASYM_ERR;
            char *p = strdup(full);
            if (!p || add_file(ix, &fcap, p)) return asym_fail("out of memory");
        }
    }
    if (!ix->n_files) return asym_fail("no shards given");
    return ASYM_OK;
}

/* The members of one shard, paired: KEY.jpg (or .jpeg, .png) then KEY.cls. */
typedef struct ShardScan {
    ImageIndex *ix;
    int cap;
    uint32_t shard;
    char key[4096];
    uint64_t off, size;  /* the image awaiting its label (size 0: none) */
} ShardScan;

static int shard_member(void *u, FILE *f, const char *name, uint64_t off, uint64_t size) {
    ShardScan *s = u;
    const char *path = s->ix->files[s->shard], *dot = strrchr(name, '.'), *slash = strrchr(name, '/');
    if (!dot || (slash && dot < slash)) return ASYM_OK;
    size_t kl = (size_t)(dot - name);
    if (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png")) {
        if (kl >= sizeof s->key) return asym_fail("%s: member name %s too long", path, name);
        memcpy(s->key, name, kl), s->key[kl] = 0;
        s->off = off, s->size = size ? size : 1;
        return ASYM_OK;
    }
    if (strcasecmp(dot, ".cls")) return ASYM_OK;
    if (!s->size || strlen(s->key) != kl || memcmp(s->key, name, kl))
        return asym_fail("%s: member %s at byte %llu follows no image of its key", path, name, (unsigned long long)off);
    char text[32], *end;
    if (size < 1 || size >= sizeof text || tar_read_member(f, path, off, size, (uint8_t *)text)) return asym_fail("%s: member %s is not a label", path, name);
    text[size] = 0;
    long y = strtol(text, &end, 10);
    while (*end == '\n' || *end == '\r' || *end == ' ') end++;
    if (end == text || *end || y < 0 || y >= (1 << 20)) return asym_fail("%s: member %s holds \"%s\", not a label from 0 up", path, name, text);
    int rc = add_sample(s->ix, &s->cap, s->shard, s->off, s->size, (int32_t)y);
    s->size = 0;
    return rc;
}

static int index_shards(const char *root, const char *spec, ImageIndex *ix, int classes) {
    ShardScan s = {.ix = ix};
    if (expand_shards(root, spec, ix)) return ASYM_ERR;
    for (int i = 0; i < ix->n_files; i++) {
        s.shard = (uint32_t)i, s.size = 0;
        if (tar_scan(ix->files[i], shard_member, &s)) return ASYM_ERR;
    }
    if (!ix->n) return asym_fail("%s: the shards hold no KEY.jpg + KEY.cls pairs", ix->files[0]);
    int top = 0;
    for (int i = 0; i < ix->n; i++) top = ix->y[i] > top ? ix->y[i] : top;
    if (classes && top >= classes) return asym_fail("shard label %d, but training has %d classes", top, classes);
    ix->classes = classes ? classes : top + 1;
    if (!(ix->names = calloc((size_t)ix->classes, sizeof *ix->names))) return asym_fail("out of memory");
    for (int k = 0; k < ix->classes; k++) {
        char b[16];
        snprintf(b, sizeof b, "%d", k);
        if (!(ix->names[k] = strdup(b))) return asym_fail("out of memory");
    }
    return ASYM_OK;
}

/* ---- the split's layout ---- */

/* Where split's images are and the stamp of that listing. */
static int layout(const AsymDataSpec *s, int train, char *dir, size_t cap, const char **shards, int *flat, uint64_t *stamp) {
    const StreamSpec *o = &s->stream;
    *shards = train ? o->train_shards : o->val_shards;
    *flat = 0;
    *stamp = fnv(0xcbf29ce484222325ULL, train ? "train" : "val", 4);
    if (**shards) {
        ImageIndex tmp = {0};
        if (expand_shards(s->path, *shards, &tmp)) return ASYM_ERR;
        for (int i = 0; i < tmp.n_files; i++) *stamp = stamp_path(*stamp, tmp.files[i]);
        image_index_free(&tmp);
        return ASYM_OK;
    }
    if (data_join(dir, cap, s->path, train ? "train" : "val")) return ASYM_ERR;
    if (!data_exists(dir, NULL, 1)) return asym_fail("%s: no such folder (format imagenet reads PATH/train and PATH/val, or tar shards)", dir);
    if (!train && o->val_labels[0]) {
        *flat = 1;
        *stamp = stamp_path(stamp_path(*stamp, dir), o->val_labels);
        /* and the devkit's meta.mat beside it, read when the labels are IDs */
        const char *slash = strrchr(o->val_labels, '/');
        char meta[4096];
        snprintf(meta, sizeof meta, "%.*smeta.mat", slash ? (int)(slash - o->val_labels + 1) : 0, o->val_labels);
        *stamp = stamp_path(*stamp, meta);
        return ASYM_OK;
    }
    return stamp_folders(dir, stamp);
}

static int build(const AsymDataSpec *s, int train, const ImageIndex *classes_from, ImageIndex *ix) {
    char dir[4096];
    const char *shards;
    int flat;
    uint64_t stamp;
    memset(ix, 0, sizeof *ix);
    if (layout(s, train, dir, sizeof dir, &shards, &flat, &stamp)) return ASYM_ERR;
    ix->stamp = stamp;
    char **names = classes_from ? classes_from->names : NULL;
    int k = classes_from ? classes_from->classes : 0, rc;
    if (*shards) rc = index_shards(s->path, shards, ix, k);
    else if (flat) rc = index_flat(dir, s->stream.val_labels, names, k, ix);
    else rc = index_folders(dir, names, k, ix);
    if (!rc && names && !ix->names) {
        ix->classes = k;
        if (!(ix->names = calloc((size_t)k, sizeof *ix->names))) rc = asym_fail("out of memory");
        for (int i = 0; !rc && i < k; i++)
            if (!(ix->names[i] = strdup(names[i]))) rc = asym_fail("out of memory");
    }
    if (rc) image_index_free(ix);
    return rc;
}

/* ---- the cache file ---- */

static void cache_path(const AsymDataSpec *s, int train, char *out, size_t cap) {
    uint64_t h = fnv(0xcbf29ce484222325ULL, s->path, strlen(s->path) + 1);
    h = fnv(h, s->stream.train_shards, strlen(s->stream.train_shards) + 1);
    h = fnv(h, s->stream.val_shards, strlen(s->stream.val_shards) + 1);
    h = fnv(h, s->stream.val_labels, strlen(s->stream.val_labels) + 1);
    snprintf(out, cap, "%s/imagenet-%016llx-%s.idx", s->stream.cache_dir, (unsigned long long)h, train ? "train" : "val");
}

int image_index_build(const AsymDataSpec *s, int train, const ImageIndex *classes_from, ImageIndex *ix, char *note, size_t cap) {
    char path[4200], why[600];
    note[0] = 0;
    if (!s->stream.cache_dir[0]) return build(s, train, classes_from, ix);
    cache_path(s, train, path, sizeof path);
    char dir[4096];
    const char *shards;
    int flat;
    uint64_t stamp;
    if (layout(s, train, dir, sizeof dir, &shards, &flat, &stamp)) return ASYM_ERR;
    if (data_exists(path, NULL, 0)) {
        if (!image_index_read(path, stamp, ix)) return ASYM_OK;
        snprintf(why, sizeof why, "%s", asym_last_error());
        snprintf(note, cap, "index cache %s not used (%s): rebuilt", path, why);
    }
    if (build(s, train, classes_from, ix)) return ASYM_ERR;
    if (io_mkdir_p(s->stream.cache_dir) || image_index_write(path, ix)) {
        snprintf(why, sizeof why, "%s", asym_last_error());
        snprintf(note, cap, "index cache not written: %s", why);
    }
    return ASYM_OK;
}

/* ---- the format's entries and the streamed splits ---- */

/* torchvision's ImageNet statistics: the training set cannot be read
 * whole to compute its own. */
static const float IMAGENET_MEAN[3] = {0.485f, 0.456f, 0.406f}, IMAGENET_STD[3] = {0.229f, 0.224f, 0.225f};

enum { IMAGENET_NOMINAL = 4096 };

int imagenet_shape(const AsymDataSpec *s, int *c, int *h, int *w, int *classes) {
    if (s->stream.train_shards[0]) {
        ImageIndex ix;
        char note[700];
        if (image_index_build(s, 1, NULL, &ix, note, sizeof note)) return ASYM_ERR;
        *classes = ix.classes;
        image_index_free(&ix);
    } else {
        char dir[4096], **names;
        if (data_join(dir, sizeof dir, s->path, "train") || folder_class_names(dir, NULL, &names, classes)) return ASYM_ERR;
        asym_data_names_free(names, *classes);
    }
    /* a nominal stored size: the transforms (random_resized_crop and
     * eval_crop, which the configuration requires) give every image the
     * model's size */
    *c = 3, *h = *w = IMAGENET_NOMINAL;
    return ASYM_OK;
}

int imagenet_names(const AsymDataSpec *s, char ***names, int *n) {
    ImageIndex ix;
    char note[700];
    if (!s->stream.train_shards[0]) {
        char dir[4096];
        return data_join(dir, sizeof dir, s->path, "train") || folder_class_names(dir, NULL, names, n);
    }
    if (image_index_build(s, 1, NULL, &ix, note, sizeof note)) return ASYM_ERR;
    *names = ix.names, *n = ix.classes;
    ix.names = NULL, ix.classes = 0;
    image_index_free(&ix);
    return ASYM_OK;
}

static void maker_of(const AsymDataSpec *s, const ImageIndex *ix, uint64_t seed, SampleMaker *m) {
    memset(m, 0, sizeof *m);
    m->ix = ix, m->spec = s->aug, m->oh = s->h, m->ow = s->w, m->seed = seed;
    m->normalize = s->normalize || s->norm_given;
    for (int k = 0; k < 3; k++) {
        m->mean[k] = s->norm_given ? s->mean[k < s->norm_given ? k : 0] : IMAGENET_MEAN[k];
        m->std[k] = s->norm_given ? s->std[k < s->norm_given ? k : 0] : IMAGENET_STD[k];
    }
}

int stream_data_open(const AsymDataSpec *s, uint64_t seed, StreamData *d) {
    memset(d, 0, sizeof *d);
    if (image_index_build(s, 1, NULL, &d->train, d->note[0], sizeof d->note[0]) ||
        image_index_build(s, 0, &d->train, &d->val, d->note[1], sizeof d->note[1])) {
        stream_data_free(d);
        return ASYM_ERR;
    }
    if (s->train_limit && s->train_limit < d->train.n) d->train.n = s->train_limit;
    if (s->test_limit && s->test_limit < d->val.n) d->val.n = s->test_limit;
    maker_of(s, &d->train, seed, &d->train_m);
    maker_of(s, &d->val, seed, &d->val_m);
    return ASYM_OK;
}

void stream_data_free(StreamData *d) {
    image_index_free(&d->train);
    image_index_free(&d->val);
}

int stream_data_labels(const ImageIndex *ix, int c, int h, int w, AsymDataset *d) {
    memset(d, 0, sizeof *d);
    d->n = ix->n, d->c = c, d->h = h, d->w = w, d->classes = ix->classes;
    if (!(d->y = malloc(sizeof *d->y * (size_t)(ix->n ? ix->n : 1)))) return asym_fail("out of memory");
    memcpy(d->y, ix->y, sizeof *d->y * (size_t)ix->n);
    return ASYM_OK;
}
