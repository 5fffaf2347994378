/* cfg.c: the YAML configuration tree. libyaml's event parser builds a tree
 * of maps, sequences and untyped scalars, each node tagged with its source
 * line; typing happens only in the getters, so every bad value is reported
 * against the key and line it came from. --set overrides are parsed as YAML
 * flow values and spliced in by dotted path; the tree is written back with
 * libyaml's emitter. */
#include "config/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/base.h"

#define CFG_MAX_DEPTH 64          /* nesting, and components of a --set path */
#define CFG_MAX_NODES 1000000L    /* hostile input must not exhaust memory */
#define CFG_MAX_FILE (16L << 20)

/* ---- nodes ---- */

static CfgNode *node_new(CfgKind kind, int line) {
    CfgNode *n = asym_calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->line = line;
    }
    return n;
}

static void node_free(CfgNode *n) {
    if (!n) return;
    for (int i = 0; i < n->n_items; i++) node_free(n->items[i]);
    free(n->items);
    free(n->key);
    free(n->value);
    free(n);
}

/* Appends child; the capacity is implicit (the next power of two), as items
 * only ever grow through here. On failure the caller still owns child. */
static int node_push(CfgNode *n, CfgNode *child) {
    int k = n->n_items;
    if (k == INT_MAX / 2) return asym_fail("configuration: too many entries");
    if ((k & (k - 1)) == 0) {
        CfgNode **p = realloc(n->items, (size_t)(k ? 2 * k : 1) * sizeof *p);
        if (!p) return asym_fail("out of memory building the configuration");
        n->items = p;
    }
    n->items[n->n_items++] = child;
    return ASYM_OK;
}

static CfgNode *node_find(const CfgNode *map, const char *key) {
    for (int i = 0; map && map->kind == CFG_MAP && i < map->n_items; i++)
        if (strcmp(map->items[i]->key, key) == 0) return map->items[i];
    return NULL;
}

static void node_mark(CfgNode *n) {
    n->used = 1;
    for (int i = 0; i < n->n_items; i++) node_mark(n->items[i]);
}

static void node_zero_lines(CfgNode *n) {
    n->line = 0;
    for (int i = 0; i < n->n_items; i++) node_zero_lines(n->items[i]);
}

static char *str_dup_n(const char *s, size_t len) {
    char *d = strndup(s, len);
    if (!d) asym_fail("out of memory building the configuration");
    return d;
}

/* ---- parsing ---- */

typedef struct Builder {
    const char *name;   /* file name, or the whole --set assignment */
    int set;            /* a --set value: messages carry no line */
    long nodes;
    int depth;
    struct { CfgNode *n; char *key; int key_line; } stack[CFG_MAX_DEPTH];
    CfgNode *root;
} Builder;

static int build_fail(const Builder *b, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int build_fail(const Builder *b, int line, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (b->set) return asym_fail("--set %s: %s", b->name, msg);
    return asym_fail("%s:%d: %s", b->name, line, msg);
}

static const char *kind_name(CfgKind k) {
    return k == CFG_MAP ? "a mapping" : k == CFG_SEQ ? "a sequence" : "a scalar";
}

static int cmp_key_line(const void *a, const void *b) {
    const CfgNode *x = *(const CfgNode *const *)a, *y = *(const CfgNode *const *)b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Sorting a copy keeps the check O(n log n) for huge hostile maps. Reports
 * the duplicate that comes first in the file. */
static int build_check_dups(const Builder *b, const CfgNode *map) {
    if (map->n_items < 2) return ASYM_OK;
    CfgNode **s = malloc((size_t)map->n_items * sizeof *s);
    if (!s) return asym_fail("out of memory building the configuration");
    memcpy(s, map->items, (size_t)map->n_items * sizeof *s);
    qsort(s, (size_t)map->n_items, sizeof *s, cmp_key_line);
    const CfgNode *dup = NULL, *first = NULL;
    for (int i = 1; i < map->n_items; i++)
        if (strcmp(s[i]->key, s[i - 1]->key) == 0 && (!dup || s[i]->line < dup->line)) {
            dup = s[i];
            first = s[i - 1];
            while (i + 1 < map->n_items && strcmp(s[i + 1]->key, dup->key) == 0) i++;
        }
    int rc = ASYM_OK;
    if (dup) rc = build_fail(b, dup->line, "duplicate key '%s' (first at line %d)", dup->key, first->line);
    free(s);
    return rc;
}

/* Places a new node under the top of the stack (or as the root); takes
 * ownership of n either way. */
static int build_attach(Builder *b, CfgNode *n) {
    if (!n) return ASYM_ERR;
    if (++b->nodes > CFG_MAX_NODES) {
        int line = n->line;
        node_free(n);
        return build_fail(b, line, "more than %ld nodes", CFG_MAX_NODES);
    }
    if (b->depth == 0) {
        b->root = n;
        return ASYM_OK;
    }
    CfgNode *top = b->stack[b->depth - 1].n;
    if (top->kind == CFG_MAP) {
        n->key = b->stack[b->depth - 1].key;
        n->line = b->stack[b->depth - 1].key_line; /* report entries where the key is */
        b->stack[b->depth - 1].key = NULL;
    }
    if (node_push(top, n) != ASYM_OK) {
        node_free(n);
        return ASYM_ERR;
    }
    return ASYM_OK;
}

static int build_event(Builder *b, const yaml_event_t *ev, int *done) {
    int line = (int)ev->start_mark.line + 1;
    int in_map = b->depth > 0 && b->stack[b->depth - 1].n->kind == CFG_MAP;
    int want_key = in_map && !b->stack[b->depth - 1].key;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (b->root) return build_fail(b, line, "only one YAML document is allowed");
        return ASYM_OK;
    case YAML_ALIAS_EVENT:
        return build_fail(b, line, "aliases (*%s) are not supported; write the value out", (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        if (want_key) {
            if (!(b->stack[b->depth - 1].key = str_dup_n(v, len))) return ASYM_ERR;
            b->stack[b->depth - 1].key_line = line;
            return ASYM_OK;
        }
        /* "---" alone, or a document of only comments, is an empty config */
        if (b->depth == 0 && !b->set && len == 0 && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            return build_attach(b, node_new(CFG_MAP, line));
        if (b->depth == 0 && !b->set) return build_fail(b, line, "the top level must be a mapping, got a scalar");
        CfgNode *n = node_new(CFG_SCALAR, line);
        if (n && !(n->value = str_dup_n(v, len))) {
            node_free(n);
            return ASYM_ERR;
        }
        return build_attach(b, n);
    }
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        CfgKind kind = ev->type == YAML_MAPPING_START_EVENT ? CFG_MAP : CFG_SEQ;
        if (want_key) return build_fail(b, line, "keys must be plain scalars, not %s", kind_name(kind));
        if (b->depth == 0 && !b->set && kind != CFG_MAP) return build_fail(b, line, "the top level must be a mapping, got a sequence");
        if (b->depth == CFG_MAX_DEPTH) return build_fail(b, line, "nested deeper than %d levels", CFG_MAX_DEPTH);
        CfgNode *n = node_new(kind, line);
        if (build_attach(b, n) != ASYM_OK) return ASYM_ERR;
        b->stack[b->depth].n = n;
        b->stack[b->depth].key = NULL;
        b->depth++;
        return ASYM_OK;
    }
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        b->depth--;
        return b->stack[b->depth].n->kind == CFG_MAP ? build_check_dups(b, b->stack[b->depth].n) : ASYM_OK;
    case YAML_STREAM_END_EVENT:
        *done = 1;
        return ASYM_OK;
    default: /* stream start, document end; tags and anchors are ignored */
        return ASYM_OK;
    }
}

static int parse_yaml_error(const Builder *b, const yaml_parser_t *p) {
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_MEMORY_ERROR) return asym_fail("%s: out of memory parsing YAML", b->name);
    if (p->error == YAML_READER_ERROR && !b->set)
        return asym_fail("%s: byte %zu: %s", b->name, p->problem_offset, problem);
    return build_fail(b, (int)p->problem_mark.line + 1, "%s", problem);
}

/* Parses text into a tree. A file's root must be a mapping (an empty file
 * gives an empty one); a --set value (set != 0) may be any node. */
static int parse_yaml(const char *text, size_t len, const char *name, int set, CfgNode **out) {
    Builder *b = asym_calloc(1, sizeof *b);
    yaml_parser_t p;
    if (!b) return ASYM_ERR;
    b->name = name;
    b->set = set;
    if (!yaml_parser_initialize(&p)) {
        free(b);
        return asym_fail("out of memory starting the YAML parser");
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = ASYM_OK, done = 0;
    while (rc == ASYM_OK && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = parse_yaml_error(b, &p);
            break;
        }
        rc = build_event(b, &ev, &done);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    for (int i = 0; i < b->depth; i++) free(b->stack[i].key);
    if (rc == ASYM_OK && !b->root) {
        b->root = node_new(set ? CFG_SCALAR : CFG_MAP, set ? 0 : 1);
        if (b->root && set && !(b->root->value = str_dup_n("", 0))) rc = ASYM_ERR;
        if (!b->root) rc = ASYM_ERR;
    }
    if (rc != ASYM_OK) {
        node_free(b->root);
        b->root = NULL;
    }
    *out = b->root;
    free(b);
    return rc;
}

/* A configuration from len bytes of YAML; name is its file in messages. */
static int cfg_new(Cfg **out, const char *text, size_t len, const char *name) {
    Cfg *c = asym_calloc(1, sizeof *c);
    if (!c) return ASYM_ERR;
    if (!(c->file = str_dup_n(name, strlen(name))) || parse_yaml(text, len, name, 0, &c->root) != ASYM_OK) {
        asym_config_free(c);
        return ASYM_ERR;
    }
    c->root->used = 1;
    *out = c;
    return ASYM_OK;
}

int cfg_parse_string(Cfg **out, const char *text, const char *name) {
    *out = NULL;
    return cfg_new(out, text, strlen(text), name ? name : "config");
}

int asym_config_load(AsymConfig **out, const char *path) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return asym_fail("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    int rc = buf ? ASYM_OK : asym_fail("%s: out of memory reading", path);
    while (rc == ASYM_OK) {
        if (len == cap) {
            if (cap > (size_t)CFG_MAX_FILE) break; /* read one byte past the limit */
            cap = cap * 2 > (size_t)CFG_MAX_FILE ? (size_t)CFG_MAX_FILE + 1 : cap * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                rc = asym_fail("%s: out of memory reading", path);
                break;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    if (rc == ASYM_OK && ferror(f)) rc = asym_fail("%s: cannot read: %s", path, strerror(errno));
    if (rc == ASYM_OK && len > (size_t)CFG_MAX_FILE) rc = asym_fail("%s: larger than 16 MiB; not a configuration file", path);
    fclose(f);
    if (rc == ASYM_OK) rc = cfg_new(out, buf, len, path);
    free(buf);
    return rc;
}

void asym_config_free(AsymConfig *c) {
    if (!c) return;
    node_free(c->root);
    free(c->file);
    free(c);
}

/* ---- overrides ---- */

static int set_index(const char *s, long *idx) {
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 9 || s[n]) return 0;
    *idx = strtol(s, NULL, 10);
    return 1;
}

int asym_config_set(AsymConfig *c, const char *a) {
    const char *eq = strchr(a, '=');
    if (!eq) return asym_fail("--set %s: expected KEY=VALUE", a);
    const char *k0 = a, *k1 = eq;
    while (k0 < k1 && (*k0 == ' ' || *k0 == '\t')) k0++;
    while (k1 > k0 && (k1[-1] == ' ' || k1[-1] == '\t')) k1--;
    if (k0 == k1) return asym_fail("--set %s: empty key", a);
    /* check the whole path first, so a failed override changes nothing */
    int n_comp = 1;
    for (const char *p = k0; p < k1; p++)
        if (*p == '.') {
            if (p == k0 || p + 1 == k1 || p[1] == '.') return asym_fail("--set %s: empty key component", a);
            n_comp++;
        }
    if (n_comp > CFG_MAX_DEPTH) return asym_fail("--set %s: key has more than %d components", a, CFG_MAX_DEPTH);
    char *key = str_dup_n(k0, (size_t)(k1 - k0));
    CfgNode *val = NULL;
    if (!key) return ASYM_ERR;
    if (parse_yaml(eq + 1, strlen(eq + 1), a, 1, &val) != ASYM_OK) {
        free(key);
        return ASYM_ERR;
    }
    node_zero_lines(val);
    int rc = ASYM_OK;
    CfgNode *n = c->root;
    for (char *comp = key;;) {
        char *dot = strchr(comp, '.');
        int plen = comp > key ? (int)(comp - key) - 1 : 0; /* the path up to n, for messages */
        long idx = 0;
        CfgNode **slot = NULL;
        if (dot) *dot = 0;
        if (n->kind == CFG_MAP) {
            for (int i = 0; i < n->n_items && !slot; i++)
                if (strcmp(n->items[i]->key, comp) == 0) slot = &n->items[i];
        } else if (n->kind == CFG_SEQ) {
            if (!set_index(comp, &idx)) {
                rc = asym_fail("--set %s: '%.*s' is a sequence; '%s' is not an index", a, plen, k0, comp);
                break;
            }
            if (idx > n->n_items) {
                rc = asym_fail("--set %s: index %ld out of range: '%.*s' has %d elements", a, idx, plen, k0, n->n_items);
                break;
            }
            if (idx < n->n_items) slot = &n->items[idx];
        } else {
            rc = asym_fail("--set %s: '%.*s' is not a map", a, plen, k0);
            break;
        }
        CfgNode *next = dot ? (slot ? *slot : node_new(CFG_MAP, 0)) : val;
        if (!next) {
            rc = ASYM_ERR;
            break;
        }
        if (slot && !dot) { /* replace, keeping the key */
            val->key = (*slot)->key;
            (*slot)->key = NULL;
            node_free(*slot);
            *slot = val;
            val = NULL;
        } else if (!slot) {
            if (n->kind == CFG_MAP && !(next->key = str_dup_n(comp, strlen(comp)))) rc = ASYM_ERR;
            if (rc == ASYM_OK) rc = node_push(n, next);
            if (rc != ASYM_OK && next != val) node_free(next);
            if (rc == ASYM_OK && !dot) val = NULL;
        }
        if (rc != ASYM_OK || !dot) break;
        n = next;
        comp = dot + 1;
    }
    node_free(val);
    free(key);
    return rc;
}

/* ---- writing ---- */

static int emit_scalar(yaml_emitter_t *e, const char *s) {
    yaml_event_t ev;
    /* implicit in both styles: the emitter quotes only when plain would not
     * read back as the same text */
    return yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1, YAML_ANY_SCALAR_STYLE) &&
           yaml_emitter_emit(e, &ev);
}

static int emit_node(yaml_emitter_t *e, const CfgNode *n) {
    yaml_event_t ev;
    if (n->kind == CFG_SCALAR) return emit_scalar(e, n->value);
    int ok;
    if (n->kind == CFG_MAP) {
        ok = yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) && yaml_emitter_emit(e, &ev);
        for (int i = 0; ok && i < n->n_items; i++) ok = emit_scalar(e, n->items[i]->key) && emit_node(e, n->items[i]);
        return ok && yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
    }
    /* short lists of scalars read best inline: milestones: [50, 75] */
    int flat = 1;
    for (int i = 0; i < n->n_items; i++) flat &= n->items[i]->kind == CFG_SCALAR;
    ok = yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, flat ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE) &&
         yaml_emitter_emit(e, &ev);
    for (int i = 0; ok && i < n->n_items; i++) ok = emit_node(e, n->items[i]);
    return ok && yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
}

int cfg_write(const Cfg *c, FILE *f) {
    yaml_emitter_t e;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&e)) return asym_fail("out of memory starting the YAML emitter");
    yaml_emitter_set_output_file(&e, f);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_indent(&e, 2);
    yaml_emitter_set_width(&e, -1);
    int ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && yaml_emitter_emit(&e, &ev) &&
             yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) && yaml_emitter_emit(&e, &ev) &&
             emit_node(&e, c->root) && yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&e, &ev) &&
             yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&e, &ev) && yaml_emitter_flush(&e);
    int rc = ASYM_OK;
    if (!ok) rc = asym_fail("%s: cannot write YAML: %s", c->file, e.problem ? e.problem : strerror(errno));
    yaml_emitter_delete(&e);
    return rc;
}

int asym_config_write(const AsymConfig *c, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return asym_fail("%s: cannot open for writing: %s", path, strerror(errno));
    int rc = cfg_write(c, f);
    if (rc == ASYM_OK && (fflush(f) != 0 || ferror(f))) rc = asym_fail("%s: cannot write: %s", path, strerror(errno));
    if (fclose(f) != 0 && rc == ASYM_OK) rc = asym_fail("%s: cannot write: %s", path, strerror(errno));
    return rc;
}

/* ---- schema access ---- */

int cfg_error(const Cfg *c, const CfgNode *n, const char *path, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *file = c && c->file ? c->file : "config";
    if (n && n->line > 0) return asym_fail("%s:%d: key '%s': %s", file, n->line, path, msg);
    if (n) return asym_fail("%s: --set: key '%s': %s", file, path, msg);
    return asym_fail("%s: key '%s': %s", file, path, msg);
}

CfgNode *cfg_find(CfgNode *root, const char *dotted) {
    char key[256];
    CfgNode *n = root;
    for (const char *p = dotted; n && *p;) {
        size_t len = strcspn(p, ".");
        if (len >= sizeof key) return NULL;
        memcpy(key, p, len);
        key[len] = 0;
        n = node_find(n, key);
        p += len + (p[len] == '.');
    }
    return n;
}

const char *asym_config_get(const AsymConfig *c, const char *dotted) {
    CfgNode *n = cfg_find(c->root, dotted);
    return n && n->kind == CFG_SCALAR ? n->value : NULL;
}

CfgNode *cfg_child(CfgNode *map, const char *key) {
    CfgNode *n = node_find(map, key);
    if (n) n->used = 1;
    return n;
}

/* Shared start of every getter: full key path, the node (NULL when absent,
 * and then the getter stores its default), an error if map is no map. */
static int get_node(const Cfg *c, CfgNode *map, const char *prefix, const char *key, char *path, size_t cap, CfgNode **n) {
    snprintf(path, cap, "%s%s%s", prefix && *prefix ? prefix : "", prefix && *prefix ? "." : "", key);
    *n = NULL;
    if (map && map->kind != CFG_MAP)
        return cfg_error(c, map, prefix && *prefix ? prefix : "(top level)", "expected a mapping, got %s", kind_name(map->kind));
    if ((*n = node_find(map, key)) != NULL) node_mark(*n);
    return ASYM_OK;
}

/* "'abc'" for a scalar, "a mapping" for the rest: the "got ..." of messages */
static const char *got(const CfgNode *n, char *buf, size_t cap) {
    if (n->kind != CFG_SCALAR) return kind_name(n->kind);
    snprintf(buf, cap, "'%s'", n->value);
    return buf;
}

static int parse_long(const CfgNode *n, long *v) {
    if (n->kind != CFG_SCALAR) return 0;
    const char *s = n->value;
    char *end;
    if (!(*s == '-' || *s == '+' || (*s >= '0' && *s <= '9'))) return 0;
    errno = 0;
    *v = strtol(s, &end, 10);
    return errno == 0 && end != s && *end == 0 && end[-1] >= '0' && end[-1] <= '9';
}

int cfg_get_int(const Cfg *c, CfgNode *map, const char *prefix, const char *key, long def, long lo, long hi, long *out) {
    char path[512], buf[256];
    CfgNode *n;
    if (get_node(c, map, prefix, key, path, sizeof path, &n) != ASYM_OK) return ASYM_ERR;
    long v = def;
    if (n && (!parse_long(n, &v) || v < lo || v > hi))
        return cfg_error(c, n, path, "expected an integer in [%ld, %ld], got %s", lo, hi, got(n, buf, sizeof buf));
    *out = v;
    return ASYM_OK;
}

int cfg_get_float(const Cfg *c, CfgNode *map, const char *prefix, const char *key, double def, double lo, double hi, double *out) {
    char path[512], buf[256];
    CfgNode *n;
    if (get_node(c, map, prefix, key, path, sizeof path, &n) != ASYM_OK) return ASYM_ERR;
    double v = def;
    if (n) {
        /* decimal only: strtod alone would also take hex, inf and nan */
        const char *s = n->kind == CFG_SCALAR ? n->value : "";
        char *end = NULL;
        int ok = *s && strspn(s, "0123456789+-.eE") == strlen(s) && strpbrk(s, "0123456789");
        if (ok) v = strtod(s, &end);
        if (!ok || *end || !isfinite(v) || v < lo || v > hi)
            return cfg_error(c, n, path, "expected a number in [%g, %g], got %s", lo, hi, got(n, buf, sizeof buf));
    }
    *out = v;
    return ASYM_OK;
}

int cfg_get_bool(const Cfg *c, CfgNode *map, const char *prefix, const char *key, int def, int *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    char path[512], buf[256];
    CfgNode *n;
    if (get_node(c, map, prefix, key, path, sizeof path, &n) != ASYM_OK) return ASYM_ERR;
    int v = def;
    if (n) {
        v = -1;
        for (int i = 0; i < 4 && n->kind == CFG_SCALAR; i++) {
            if (strcasecmp(n->value, yes[i]) == 0) v = 1;
            if (strcasecmp(n->value, no[i]) == 0) v = 0;
        }
        if (v < 0) return cfg_error(c, n, path, "expected true or false, got %s", got(n, buf, sizeof buf));
    }
    *out = v;
    return ASYM_OK;
}

int cfg_get_str(const Cfg *c, CfgNode *map, const char *prefix, const char *key, const char *def, const char *const *choices, const char **out) {
    char path[512], buf[256], list[256] = "";
    CfgNode *n;
    if (get_node(c, map, prefix, key, path, sizeof path, &n) != ASYM_OK) return ASYM_ERR;
    if (!n) {
        *out = def;
        return ASYM_OK;
    }
    int ok = n->kind == CFG_SCALAR && !choices;
    for (int i = 0; choices && choices[i]; i++) {
        ok |= n->kind == CFG_SCALAR && strcmp(n->value, choices[i]) == 0;
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", choices[i]);
    }
    if (!ok && choices) return cfg_error(c, n, path, "expected one of %s, got %s", list, got(n, buf, sizeof buf));
    if (!ok) return cfg_error(c, n, path, "expected a string, got %s", kind_name(n->kind));
    *out = n->value;
    return ASYM_OK;
}

int cfg_get_int_list(const Cfg *c, CfgNode *map, const char *prefix, const char *key, int *out, int max, int *n_out) {
    char path[512], epath[540], buf[256];
    CfgNode *n;
    if (get_node(c, map, prefix, key, path, sizeof path, &n) != ASYM_OK) return ASYM_ERR;
    if (!n) return ASYM_OK; /* the default is whatever the caller left in out and *n_out */
    if (n->kind == CFG_MAP) return cfg_error(c, n, path, "expected a list of integers, got a mapping");
    CfgNode *const *el = n->kind == CFG_SEQ ? n->items : &n;
    int count = n->kind == CFG_SEQ ? n->n_items : 1;
    if (count > max) return cfg_error(c, n, path, "expected at most %d integers, got %d", max, count);
    for (int i = 0; i < count; i++) {
        long v;
        snprintf(epath, sizeof epath, n->kind == CFG_SEQ ? "%s.%d" : "%s", path, i);
        if (!parse_long(el[i], &v) || v < INT_MIN || v > INT_MAX)
            return cfg_error(c, el[i], epath, "expected an integer, got %s", got(el[i], buf, sizeof buf));
        out[i] = (int)v;
    }
    *n_out = count;
    return ASYM_OK;
}

/* Map entries must have been read. Sequence elements are judged by their
 * contents only: the schema reaches them by iterating, never by key. */
static const CfgNode *unused_find(const CfgNode *n, char *path, size_t len, size_t cap) {
    for (int i = 0; i < n->n_items; i++) {
        const CfgNode *ch = n->items[i];
        int w = n->kind == CFG_MAP ? snprintf(path + len, cap - len, "%s%s", len ? "." : "", ch->key)
                                   : snprintf(path + len, cap - len, "%s%d", len ? "." : "", i);
        size_t l = len + (w > 0 ? (size_t)w : 0);
        if (l >= cap) l = cap - 1;
        if (n->kind == CFG_MAP && !ch->used) return ch;
        const CfgNode *r = unused_find(ch, path, l, cap);
        if (r) return r;
        path[len] = 0;
    }
    return NULL;
}

int cfg_check_unused(const Cfg *c) {
    char path[1024] = "";
    const CfgNode *n = unused_find(c->root, path, 0, sizeof path);
    if (!n) return ASYM_OK;
    if (n->line > 0) return asym_fail("%s:%d: unknown key '%s'", c->file, n->line, path);
    return asym_fail("%s: --set: unknown key '%s'", c->file, path);
}
