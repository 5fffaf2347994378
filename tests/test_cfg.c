/* test_cfg.c: the YAML configuration tree: parsing with line numbers,
 * getters and their messages, unknown keys, --set overrides, writing back,
 * and the errors for bad YAML and files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asymbp.h"
#include "config/config.h"
#include "test.h"

#define HAS(s) (strstr(asym_last_error(), (s)) != NULL)
#define CHECK_ERR(expr, s)                                                       \
    CHECK_MSG((expr) == ASYM_ERR && HAS(s), "%s: want error with \"%s\", got \"%s\"", #expr, (s), asym_last_error())

static const char *SAMPLE =
    "# experiment\n"
    "name: demo\n"
    "epochs: 3\n"
    "optimizer:\n"
    "  type: sgd\n"
    "  lr: 0.1\n"
    "  nesterov: yes\n"
    "model:\n"
    "  layers:\n"
    "    - {type: conv, out: 6, k: 5}\n"
    "    - type: relu\n"
    "    - type: fc\n"
    "      out: 10\n"
    "schedule:\n"
    "  milestones: [50, 75]\n";

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static int tree_equal(const CfgNode *a, const CfgNode *b) {
    if (a->kind != b->kind || a->n_items != b->n_items) return 0;
    if ((a->key || b->key) && (!a->key || !b->key || strcmp(a->key, b->key))) return 0;
    if (a->kind == CFG_SCALAR && strcmp(a->value, b->value)) return 0;
    for (int i = 0; i < a->n_items; i++)
        if (!tree_equal(a->items[i], b->items[i])) return 0;
    return 1;
}

TEST(cfg_parse_nested_lines) {
    Cfg *c;
    CHECK_OK(cfg_parse_string(&c, SAMPLE, "x.yaml"));
    CHECK(c->root->kind == CFG_MAP && c->root->n_items == 5);
    CfgNode *opt = cfg_child(c->root, "optimizer");
    CHECK(opt && opt->kind == CFG_MAP && opt->line == 4 && opt->used);
    CfgNode *lr = cfg_child(opt, "lr");
    CHECK(lr && lr->kind == CFG_SCALAR && !strcmp(lr->value, "0.1") && lr->line == 6);
    CfgNode *layers = cfg_child(cfg_child(c->root, "model"), "layers");
    CHECK(layers && layers->kind == CFG_SEQ && layers->n_items == 3 && layers->line == 9);
    CHECK(layers->items[0]->kind == CFG_MAP && layers->items[0]->line == 10 && layers->items[0]->key == NULL);
    CHECK(layers->items[2]->n_items == 2 && layers->items[2]->items[1]->line == 13);
    CHECK(!strcmp(layers->items[0]->items[1]->key, "out") && !strcmp(layers->items[0]->items[1]->value, "6"));
    CHECK(cfg_child(c->root, "nope") == NULL);
    asym_config_free(c);

    CHECK_OK(cfg_parse_string(&c, "# only a comment\n", "e.yaml"));
    CHECK(c->root->kind == CFG_MAP && c->root->n_items == 0);
    asym_config_free(c);
    CHECK_OK(cfg_parse_string(&c, "", "e.yaml"));
    CHECK(c->root->kind == CFG_MAP && c->root->n_items == 0);
    asym_config_free(c);
    CHECK_OK(cfg_parse_string(&c, "a: !!str 5\nb: ''\nc:\n", "t.yaml")); /* tags ignored */
    CHECK(!strcmp(c->root->items[0]->value, "5") && !strcmp(c->root->items[1]->value, "") && !strcmp(c->root->items[2]->value, ""));
    asym_config_free(c);
}

TEST(cfg_parse_errors) {
    Cfg *c = (Cfg *)1;
    CHECK_ERR(cfg_parse_string(&c, "a: 1\nb: 2\na: 3\n", "d.yaml"), "d.yaml:3: duplicate key 'a' (first at line 1)");
    CHECK(c == NULL);
    CHECK_ERR(cfg_parse_string(&c, "m:\n  x: 1\n  y: 2\n  x: 3\n", "d.yaml"), "d.yaml:4: duplicate key 'x'");
    CHECK_ERR(cfg_parse_string(&c, "a: &x 1\nb: *x\n", "al.yaml"), "al.yaml:2: aliases (*x) are not supported");
    CHECK_ERR(cfg_parse_string(&c, "a: 1\nb: [1, 2\nc: 3\n", "s.yaml"), "s.yaml:");
    CHECK_ERR(cfg_parse_string(&c, "a: 1\nb: c: d\n", "s.yaml"), "s.yaml:2: mapping values are not allowed");
    CHECK_ERR(cfg_parse_string(&c, "- 1\n- 2\n", "l.yaml"), "l.yaml:1: the top level must be a mapping");
    CHECK_ERR(cfg_parse_string(&c, "hello\n", "l.yaml"), "the top level must be a mapping");
    CHECK_ERR(cfg_parse_string(&c, "a: 1\n---\nb: 2\n", "m.yaml"), "m.yaml:2: only one YAML document");
    CHECK_ERR(cfg_parse_string(&c, "? [a, b]\n: 1\n", "k.yaml"), "k.yaml:1: keys must be plain scalars");
    CHECK(c == NULL);
}

TEST(cfg_parse_hostile_nesting) {
    int depth = 100000;
    char *s = malloc((size_t)depth * 2 + 16);
    CHECK(s);
    strcpy(s, "a: ");
    memset(s + 3, '[', (size_t)depth);
    memset(s + 3 + depth, ']', (size_t)depth);
    s[3 + 2 * depth] = 0;
    Cfg *c;
    int rc = cfg_parse_string(&c, s, "deep.yaml");
    free(s);
    CHECK_ERR(rc, "deep.yaml:1: nested deeper than 64 levels");
    /* a long flat map is fine and its duplicate check stays fast */
    size_t n = 200000;
    s = malloc(n * 16 + 32);
    CHECK(s);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += (size_t)sprintf(s + len, "k%zu: %zu\n", i, i);
    CHECK_OK(cfg_parse_string(&c, s, "big.yaml"));
    CHECK(c->root->n_items == (int)n);
    asym_config_free(c);
    sprintf(s + len, "k7: dup\n");
    CHECK_ERR(cfg_parse_string(&c, s, "big.yaml"), "big.yaml:200001: duplicate key 'k7' (first at line 8)");
    free(s);
}

TEST(cfg_get_int_values) {
    Cfg *c;
    CHECK_OK(cfg_parse_string(&c, "a: 12\nb: -3\nc: +4\nd: 1.5\ne: 12abc\nf: 99\ng: {x: 1}\nh: 99999999999999999999\ni: ''\nj: 0x10\n", "i.yaml"));
    long v = 0;
    CHECK_OK(cfg_get_int(c, c->root, NULL, "a", 0, 0, 100, &v));
    CHECK(v == 12);
    CHECK_OK(cfg_get_int(c, c->root, "", "b", 0, -10, 10, &v));
    CHECK(v == -3);
    CHECK_OK(cfg_get_int(c, c->root, NULL, "c", 0, 0, 10, &v));
    CHECK(v == 4);
    CHECK_OK(cfg_get_int(c, c->root, NULL, "missing", 7, 0, 10, &v));
    CHECK(v == 7);
    CHECK_OK(cfg_get_int(c, NULL, "x", "missing", 8, 0, 10, &v));
    CHECK(v == 8);
    CHECK_ERR(cfg_get_int(c, c->root, NULL, "d", 0, 0, 10, &v), "i.yaml:4: key 'd': expected an integer in [0, 10], got '1.5'");
    CHECK_ERR(cfg_get_int(c, c->root, NULL, "e", 0, 0, 100, &v), "i.yaml:5: key 'e': expected an integer in [0, 100], got '12abc'");
    CHECK_ERR(cfg_get_int(c, c->root, NULL, "f", 0, 1, 50, &v), "i.yaml:6: key 'f': expected an integer in [1, 50], got '99'");
    CHECK_ERR(cfg_get_int(c, c->root, NULL, "g", 0, 1, 50, &v), "i.yaml:7: key 'g': expected an integer in [1, 50], got a mapping");
    CHECK_ERR(cfg_get_int(c, c->root, NULL, "h", 0, 1, 50, &v), "i.yaml:8: key 'h'");
    CHECK_ERR(cfg_get_int(c, c->root, NULL, "i", 0, 1, 50, &v), "got ''");
    CHECK_ERR(cfg_get_int(c, c->root, NULL, "j", 0, 0, 50, &v), "got '0x10'");
    CHECK(v == 8);
    CHECK_ERR(cfg_get_int(c, c->root->items[0], "a", "x", 0, 0, 50, &v), "i.yaml:1: key 'a': expected a mapping, got a scalar");
    asym_config_free(c);
}

TEST(cfg_get_float_values) {
    Cfg *c;
    CHECK_OK(cfg_parse_string(&c, "opt:\n  a: 0.1\n  b: 1e-3\n  c: 5E-4\n  d: .5\n  e: -2\n  f: nan\n  g: inf\n  h: 0.1x\n  i: 1e999\n  j: 3\n  k: [1]\n  l: 0x1p3\n", "f.yaml"));
    CfgNode *o = cfg_child(c->root, "opt");
    double v = 0;
    CHECK_OK(cfg_get_float(c, o, "opt", "a", 0, 0, 1, &v));
    CHECK_NEAR(v, 0.1, 1e-15);
    CHECK_OK(cfg_get_float(c, o, "opt", "b", 0, 0, 1, &v));
    CHECK_NEAR(v, 1e-3, 1e-15);
    CHECK_OK(cfg_get_float(c, o, "opt", "c", 0, 0, 1, &v));
    CHECK_NEAR(v, 5e-4, 1e-15);
    CHECK_OK(cfg_get_float(c, o, "opt", "d", 0, 0, 1, &v));
    CHECK_NEAR(v, 0.5, 1e-15);
    CHECK_OK(cfg_get_float(c, o, "opt", "e", 0, -5, 1, &v));
    CHECK_NEAR(v, -2, 1e-15);
    CHECK_OK(cfg_get_float(c, o, "opt", "zz", 0.25, 0, 1, &v));
    CHECK_NEAR(v, 0.25, 1e-15);
    CHECK_ERR(cfg_get_float(c, o, "opt", "f", 0, 0, 1, &v), "f.yaml:7: key 'opt.f': expected a number in [0, 1], got 'nan'");
    CHECK_ERR(cfg_get_float(c, o, "opt", "g", 0, 0, 1, &v), "f.yaml:8: key 'opt.g': expected a number in [0, 1], got 'inf'");
    CHECK_ERR(cfg_get_float(c, o, "opt", "h", 0, 0, 1, &v), "f.yaml:9: key 'opt.h'");
    CHECK_ERR(cfg_get_float(c, o, "opt", "i", 0, 0, 1, &v), "f.yaml:10: key 'opt.i'");
    CHECK_ERR(cfg_get_float(c, o, "opt", "j", 0, 0, 1, &v), "f.yaml:11: key 'opt.j': expected a number in [0, 1], got '3'");
    CHECK_ERR(cfg_get_float(c, o, "opt", "k", 0, 0, 1, &v), "f.yaml:12: key 'opt.k': expected a number in [0, 1], got a sequence");
    CHECK_ERR(cfg_get_float(c, o, "opt", "l", 0, 0, 100, &v), "got '0x1p3'");
    asym_config_free(c);
}

TEST(cfg_get_bool_values) {
    Cfg *c;
    CHECK_OK(cfg_parse_string(&c, "a: true\nb: No\nc: ON\nd: off\ne: 1\nf: 0\ng: YES\nh: maybe\ni: FALSE\n", "b.yaml"));
    const char *keys = "abcdefgi";
    const int want[] = {1, 0, 1, 0, 1, 0, 1, 0};
    for (int i = 0; keys[i]; i++) {
        char k[2] = {keys[i], 0};
        int v = -1;
        CHECK_OK(cfg_get_bool(c, c->root, NULL, k, 5, &v));
        CHECK_MSG(v == want[i], "key %s: %d", k, v);
    }
    int v = -1;
    CHECK_OK(cfg_get_bool(c, c->root, NULL, "missing", 1, &v));
    CHECK(v == 1);
    CHECK_ERR(cfg_get_bool(c, c->root, "top", "h", 0, &v), "b.yaml:8: key 'top.h': expected true or false, got 'maybe'");
    asym_config_free(c);
}

TEST(cfg_get_str_values) {
    static const char *const opts[] = {"sgd", "adam", NULL};
    Cfg *c;
    CHECK_OK(cfg_parse_string(&c, "optimizer:\n  type: sdg\n  name: 'hello world'\n  m: {a: 1}\n  ok: adam\n", "s.yaml"));
    CfgNode *o = cfg_child(c->root, "optimizer");
    const char *s = NULL;
    CHECK_OK(cfg_get_str(c, o, "optimizer", "name", "x", NULL, &s));
    CHECK(!strcmp(s, "hello world"));
    CHECK_OK(cfg_get_str(c, o, "optimizer", "ok", "sgd", opts, &s));
    CHECK(!strcmp(s, "adam"));
    CHECK_OK(cfg_get_str(c, o, "optimizer", "absent", "sgd", opts, &s));
    CHECK(!strcmp(s, "sgd"));
    CHECK_ERR(cfg_get_str(c, o, "optimizer", "type", "sgd", opts, &s),
              "s.yaml:2: key 'optimizer.type': expected one of sgd, adam, got 'sdg'");
    CHECK_ERR(cfg_get_str(c, o, "optimizer", "m", "x", NULL, &s), "s.yaml:4: key 'optimizer.m': expected a string, got a mapping");
    CHECK_ERR(cfg_get_str(c, o, "optimizer", "m", "x", opts, &s), "expected one of sgd, adam, got a mapping");
    asym_config_free(c);
}

TEST(cfg_get_int_list_values) {
    Cfg *c;
    CHECK_OK(cfg_parse_string(&c, "s:\n  a: [50, 75]\n  b: 30\n  c: [1, x, 3]\n  d: [1, 2, 3, 4, 5]\n  e: {a: 1}\n  f: []\n  g:\n    - 4\n    - [5]\n", "l.yaml"));
    CfgNode *s = cfg_child(c->root, "s");
    int v[4] = {9, 9, 9, 9}, n = -1;
    CHECK_OK(cfg_get_int_list(c, s, "s", "a", v, 4, &n));
    CHECK(n == 2 && v[0] == 50 && v[1] == 75);
    CHECK_OK(cfg_get_int_list(c, s, "s", "b", v, 4, &n));
    CHECK(n == 1 && v[0] == 30);
    CHECK_OK(cfg_get_int_list(c, s, "s", "f", v, 4, &n));
    CHECK(n == 0);
    n = 3;
    CHECK_OK(cfg_get_int_list(c, s, "s", "missing", v, 4, &n));
    CHECK(n == 3);
    CHECK_ERR(cfg_get_int_list(c, s, "s", "c", v, 4, &n), "l.yaml:4: key 's.c.1': expected an integer, got 'x'");
    CHECK_ERR(cfg_get_int_list(c, s, "s", "d", v, 4, &n), "l.yaml:5: key 's.d': expected at most 4 integers, got 5");
    CHECK_ERR(cfg_get_int_list(c, s, "s", "e", v, 4, &n), "l.yaml:6: key 's.e': expected a list of integers, got a mapping");
    CHECK_ERR(cfg_get_int_list(c, s, "s", "g", v, 4, &n), "l.yaml:10: key 's.g.1': expected an integer, got a sequence");
    asym_config_free(c);
}

TEST(cfg_unused_keys) {
    Cfg *c;
    CHECK_OK(cfg_parse_string(&c, SAMPLE, "u.yaml"));
    long i;
    double f;
    int b, ms[4], nm;
    const char *s;
    CHECK_OK(cfg_get_str(c, c->root, NULL, "name", "", NULL, &s));
    CHECK_OK(cfg_get_int(c, c->root, NULL, "epochs", 1, 1, 100, &i));
    CfgNode *o = cfg_child(c->root, "optimizer");
    CHECK_OK(cfg_get_str(c, o, "optimizer", "type", "sgd", NULL, &s));
    CHECK_OK(cfg_get_float(c, o, "optimizer", "lr", 0, 0, 1, &f));
    CHECK_ERR(cfg_check_unused(c), "u.yaml:7: unknown key 'optimizer.nesterov'");
    CHECK_OK(cfg_get_bool(c, o, "optimizer", "nesterov", 0, &b));
    CHECK_ERR(cfg_check_unused(c), "u.yaml:8: unknown key 'model'");
    CfgNode *layers = cfg_child(cfg_child(c->root, "model"), "layers");
    CHECK_OK(cfg_get_int_list(c, cfg_child(c->root, "schedule"), "schedule", "milestones", ms, 4, &nm));
    for (int k = 0; k < layers->n_items; k++) {
        char p[64];
        snprintf(p, sizeof p, "model.layers.%d", k);
        CHECK_OK(cfg_get_str(c, layers->items[k], p, "type", "", NULL, &s));
        if (k == 2) break; /* leave layer 2's "out" unread */
        CHECK_OK(cfg_get_int(c, layers->items[k], p, "out", 0, 0, 100, &i));
    }
    CHECK_ERR(cfg_check_unused(c), "u.yaml:10: unknown key 'model.layers.0.k'");
    CHECK_OK(cfg_get_int(c, layers->items[0], "model.layers.0", "k", 0, 0, 100, &i));
    CHECK_ERR(cfg_check_unused(c), "u.yaml:13: unknown key 'model.layers.2.out'");
    CHECK_OK(cfg_get_int(c, layers->items[2], "model.layers.2", "out", 0, 0, 100, &i));
    CHECK_OK(cfg_check_unused(c));
    CHECK_OK(asym_config_set(c, "extra.deep=1"));
    CHECK_ERR(cfg_check_unused(c), "u.yaml: --set: unknown key 'extra'");
    asym_config_free(c);
}

TEST(cfg_set_overrides) {
    Cfg *c;
    CHECK_OK(cfg_parse_string(&c, SAMPLE, "o.yaml"));
    CHECK_OK(asym_config_set(c, "optimizer.lr=0.05"));
    CfgNode *o = cfg_child(c->root, "optimizer");
    CfgNode *lr = cfg_child(o, "lr");
    CHECK(lr && lr->kind == CFG_SCALAR && !strcmp(lr->value, "0.05") && lr->line == 0);
    CHECK(o->n_items == 3 && o->items[1] == lr); /* replaced in place */
    CHECK_OK(asym_config_set(c, "optimizer.momentum=0.9"));
    CHECK(o->n_items == 4 && !strcmp(o->items[3]->key, "momentum"));
    CHECK_OK(asym_config_set(c, "data.random.n = 100"));
    CfgNode *d = cfg_child(c->root, "data");
    CHECK(d && d->kind == CFG_MAP && d->line == 0);
    CfgNode *rn = cfg_child(cfg_child(d, "random"), "n");
    CHECK(rn && !strcmp(rn->value, "100"));
    CHECK_OK(asym_config_set(c, "schedule.milestones=[50,75,90]"));
    CfgNode *m = cfg_child(cfg_child(c->root, "schedule"), "milestones");
    CHECK(m->kind == CFG_SEQ && m->n_items == 3 && !strcmp(m->items[2]->value, "90") && m->items[2]->line == 0);
    CHECK_OK(asym_config_set(c, "model.layers.2.out=32"));
    CfgNode *layers = cfg_child(cfg_child(c->root, "model"), "layers");
    CHECK(!strcmp(cfg_child(layers->items[2], "out")->value, "32"));
    CHECK_OK(asym_config_set(c, "model.layers.3={type: relu}"));
    CHECK(layers->n_items == 4 && layers->items[3]->kind == CFG_MAP && !strcmp(cfg_child(layers->items[3], "type")->value, "relu"));
    CHECK_OK(asym_config_set(c, "model.layers.4.type=flatten"));
    CHECK(layers->n_items == 5 && !strcmp(cfg_child(layers->items[4], "type")->value, "flatten"));
    CHECK_OK(asym_config_set(c, "model.layers.1=dropout"));
    CHECK(layers->items[1]->kind == CFG_SCALAR && layers->items[1]->key == NULL);
    CHECK_OK(asym_config_set(c, "name="));
    CHECK(!strcmp(cfg_child(c->root, "name")->value, ""));
    CHECK_OK(asym_config_set(c, "optimizer=adam")); /* a map replaced by a scalar */
    CHECK(cfg_child(c->root, "optimizer")->kind == CFG_SCALAR);
    long v;
    CHECK_OK(asym_config_set(c, "data.n=abc"));
    CHECK_ERR(cfg_get_int(c, cfg_child(c->root, "data"), "data", "n", 0, 0, 10, &v), "o.yaml: --set: key 'data.n': expected an integer in [0, 10], got 'abc'");

    CHECK_ERR(asym_config_set(c, "epochs"), "--set epochs: expected KEY=VALUE");
    CHECK_ERR(asym_config_set(c, "=3"), "--set =3: empty key");
    CHECK_ERR(asym_config_set(c, "a..b=3"), "--set a..b=3: empty key component");
    CHECK_ERR(asym_config_set(c, "epochs.x=1"), "--set epochs.x=1: 'epochs' is not a map");
    CHECK_ERR(asym_config_set(c, "optimizer.lr.x=1"), "--set optimizer.lr.x=1: 'optimizer' is not a map");
    CHECK_ERR(asym_config_set(c, "model.layers.9.out=1"), "--set model.layers.9.out=1: index 9 out of range: 'model.layers' has 5 elements");
    CHECK_ERR(asym_config_set(c, "model.layers.x=1"), "'model.layers' is a sequence; 'x' is not an index");
    CHECK_ERR(asym_config_set(c, "model.layers.-1=1"), "is not an index");
    CHECK_ERR(asym_config_set(c, "a=[1, 2"), "--set a=[1, 2: ");
    CHECK_ERR(asym_config_set(c, "a=*x"), "--set a=*x: aliases (*x) are not supported");
    CHECK(cfg_child(c->root, "a") == NULL); /* failed overrides leave no trace */
    asym_config_free(c);
}

TEST(cfg_write_round_trip) {
    char path[1024];
    snprintf(path, sizeof path, "%s/cfg_rt.yaml", test_tmpdir());
    Cfg *c, *d;
    CHECK_OK(cfg_parse_string(&c, SAMPLE, "rt.yaml"));
    const char *tricky[] = {"s.colon='a: b'", "s.hash='x # y'", "s.lead='#x'", "s.empty=''", "s.dash='- x'",
                            "s.star='*x'", "s.amp='&x'", "s.brace='{x'", "s.space=' pad '", "s.quote=\"it's\"",
                            "s.nl=\"a\\nb\"", "s.uni=héllo", "s.tab=\"a\\tb\"", "s.at='@x'", "s.pct='%x'",
                            "s.bool=true", "s.list=[a, 'b, c', '']", "s.nest=[[1, 2], {k: v}]", "s.emap={}",
                            "s.eseq=[]", "s.': k'=v", "s.'x'=y"};
    for (size_t i = 0; i < sizeof tricky / sizeof *tricky; i++) CHECK_OK(asym_config_set(c, tricky[i]));
    CHECK_OK(asym_config_write(c, path));
    CHECK_OK(asym_config_load(&d, path));
    CHECK(!strcmp(d->file, path));
    CHECK(tree_equal(c->root, d->root));
    CHECK(!strcmp(cfg_child(cfg_child(d->root, "s"), "colon")->value, "a: b"));
    CHECK(!strcmp(cfg_child(cfg_child(d->root, "s"), "nl")->value, "a\nb"));
    asym_config_free(d);
    /* readable: block mappings, plain scalars, inline scalar lists */
    FILE *f = fopen(path, "r");
    CHECK(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    CHECK_MSG(strstr(buf, "optimizer:\n  type: sgd\n  lr: 0.1\n") != NULL, "%s", buf);
    CHECK_MSG(strstr(buf, "milestones: [50, 75]") != NULL, "%s", buf);
    asym_config_free(c);
    snprintf(path, sizeof path, "%s/no/such/dir/x.yaml", test_tmpdir());
    CHECK_OK(cfg_parse_string(&c, "a: 1\n", "w.yaml"));
    CHECK_ERR(asym_config_write(c, path), "x.yaml: cannot open for writing: No such file");
    asym_config_free(c);
}

TEST(cfg_load_files) {
    char path[1024];
    AsymConfig *c = (AsymConfig *)1;
    snprintf(path, sizeof path, "%s/missing.yaml", test_tmpdir());
    CHECK_ERR(asym_config_load(&c, path), "missing.yaml: cannot open: No such file or directory");
    CHECK(c == NULL);
    CHECK_ERR(asym_config_load(&c, test_tmpdir()), ": cannot read: Is a directory");
    snprintf(path, sizeof path, "%s/bad.yaml", test_tmpdir());
    CHECK(write_file(path, "a: 1\nb:\n  c: 2\n d: 3\n") == 0);
    char want[1100];
    snprintf(want, sizeof want, "%s:4: ", path);
    CHECK_ERR(asym_config_load(&c, path), want);
    CHECK(write_file(path, "a: 1\nb: \"\x01\"\n") == 0);
    CHECK_ERR(asym_config_load(&c, path), "bad.yaml");
    snprintf(path, sizeof path, "%s/good.yaml", test_tmpdir());
    CHECK(write_file(path, SAMPLE) == 0);
    CHECK_OK(asym_config_load(&c, path));
    CHECK(!strcmp(c->file, path) && c->root->n_items == 5);
    long v;
    CHECK_ERR(cfg_get_int(c, c->root, NULL, "name", 0, 0, 1, &v), "good.yaml:2: key 'name'");
    asym_config_free(c);
    asym_config_free(NULL);
    snprintf(path, sizeof path, "%s/huge.yaml", test_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK(f);
    static char line[4096];
    memset(line, '#', sizeof line - 1);
    for (int i = 0; i < (17 << 20) / 4096; i++) fputs(line, f);
    fclose(f);
    CHECK_ERR(asym_config_load(&c, path), "huge.yaml: larger than 16 MiB");
}
