/* config.h: the YAML configuration tree (libyaml). Every node remembers its
 * file and line; the schema marks nodes as it reads them, so keys nobody
 * read are reported as unknown. --set overrides edit the tree by dotted
 * path before the schema runs. */
#ifndef ASYM_CFG_H
#define ASYM_CFG_H

#include <stdio.h>

#include "data/data.h"
#include "net/net.h"

typedef enum CfgKind { CFG_SCALAR = 1, CFG_MAP, CFG_SEQ } CfgKind;

typedef struct CfgNode {
    CfgKind kind;
    char *key;               /* key in the parent map; NULL in sequences and at the root */
    char *value;             /* scalar text (CFG_SCALAR) */
    int line;                /* 1-based source line; 0 when set by an override */
    int used;                /* set when the schema has read this node */
    struct CfgNode **items;  /* map entries (each with key) or sequence elements */
    int n_items;
} CfgNode;

struct AsymConfig {
    char *file;              /* source file name, used in every message */
    CfgNode *root;           /* a map */
};
typedef struct AsymConfig Cfg;

/* A configuration from text; name stands for its file in messages. */
int cfg_parse_string(Cfg **out, const char *text, const char *name);

/* Schema access. Each getter looks up key in map (marking it used), and on a
 * missing key stores the default and returns ASYM_OK. A present but invalid
 * value fails with "FILE:LINE: key 'a.b.c': expected ..., got '...'". The
 * path in messages is built from the node's ancestors; callers pass the
 * dotted prefix of map (e.g. "optimizer") so messages name the full key. */
CfgNode *cfg_child(CfgNode *map, const char *key);   /* marks used; NULL if missing */
/* The node at a dotted path of map keys ("data.path"), without marking it. */
CfgNode *cfg_find(CfgNode *root, const char *dotted);
int cfg_get_int(const Cfg *c, CfgNode *map, const char *prefix, const char *key, long def, long lo, long hi, long *out);
int cfg_get_float(const Cfg *c, CfgNode *map, const char *prefix, const char *key, double def, double lo, double hi, double *out);
int cfg_get_bool(const Cfg *c, CfgNode *map, const char *prefix, const char *key, int def, int *out);
/* choices: NULL-terminated list of accepted values, or NULL for any string;
 * the result points into the tree or at def. */
int cfg_get_str(const Cfg *c, CfgNode *map, const char *prefix, const char *key, const char *def, const char *const *choices, const char **out);
/* A sequence of integers (a scalar counts as a one-element list). */
int cfg_get_int_list(const Cfg *c, CfgNode *map, const char *prefix, const char *key, int *out, int max, int *n);
/* Fails with "FILE:LINE: unknown key 'a.b.c'" for the first unread key. */
int cfg_check_unused(const Cfg *c);
/* Error at a node: "FILE:LINE: key 'path': <message>". */
int cfg_error(const Cfg *c, const CfgNode *n, const char *path, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int cfg_write(const Cfg *c, FILE *f);

/* Schema shorthands: read into dst (any numeric type) or return ASYM_ERR;
 * expect a `const Cfg *c` in scope. */
#define GET_INT(map, pre, key, def, lo, hi, dst)                             \
    do {                                                                     \
        long v_;                                                             \
        if (cfg_get_int(c, map, pre, key, def, lo, hi, &v_)) return ASYM_ERR; \
        dst = (int)v_;                                                       \
    } while (0)
#define GET_FLOAT(map, pre, key, def, lo, hi, dst)                             \
    do {                                                                       \
        double v_;                                                             \
        if (cfg_get_float(c, map, pre, key, def, lo, hi, &v_)) return ASYM_ERR; \
        dst = (float)v_;                                                       \
    } while (0)

/* The `data` map of root into d (data_keys.c; every key checked); sets d->c,
 * h, w and classes to the model input the data will have. */
int data_read_config(const Cfg *c, CfgNode *root, AsymDataSpec *d);

/* Named architectures; layers are allocated into spec->layers. hidden and
 * n_hidden give the MLP's widths; bn adds batch norm after hidden layers. */
int asym_arch_mlp(AsymNetSpec *s, const int *hidden, int n_hidden, int bn, AsymLayerKind act);
int asym_arch_lenet(AsymNetSpec *s);                       /* BioTorch LeNet-5, 32x32 input */
int asym_arch_resnet_cifar(AsymNetSpec *s, int depth, AsymShortcut sc); /* 20, 32, 44, 56, 110 */
int asym_arch_resnet_imagenet(AsymNetSpec *s, int depth);  /* 18, 34, 50, 101, 152 */
void asym_netspec_free(AsymNetSpec *s);

struct AsymExperiment {
    char name[128];
    uint64_t seed;
    int epochs, batch_size, threads;
    /* after each epoch, batch-norm running statistics are recomputed as an
     * exponential moving average (alpha) over the epoch's first bn_batches
     * training batches (Liao et al.); 0: off */
    int bn_batches;
    float bn_alpha;
    /* debug.trap_fp: the training step runs with floating-point traps on
     * (invalid operation, division by zero, overflow raise SIGFPE where
     * they happen) */
    int trap_fp;
    /* log_steps: out_dir/steps.jsonl gets the training loss of every step */
    int log_steps;
    /* log.tensorboard: out_dir/events.out.tfevents.* holds log.jsonl's numbers */
    int tensorboard;
    /* data-parallel training under MPI (docs/MPI.md): model.sync_bn
     * (batch-norm statistics over every rank's share of the batch),
     * dist.check_every (compare the ranks' models every N steps; 0: at the
     * start and after every epoch only), dist.overlap (each layer's
     * gradient allreduce starts during the backward pass), and
     * debug.perturb_rank/perturb_step (that rank alters a weight after
     * that step, for testing the check; -1: off) */
    int sync_bn, dist_check_every, dist_overlap;
    float dist_bucket_mb; /* overlap's bucket size, MB of gradients (0: one layer each) */
    int perturb_rank, perturb_step;
    AsymDataSpec data;
    AsymNetSpec net;
    AsymOptSpec opt;
    AsymSchedSpec sched;
};

/* Reads the configuration into ex; unknown keys and bad values are errors
 * naming the file, line and key. */
int asym_experiment_from_config(AsymExperiment *ex, AsymConfig *cfg);
void asym_experiment_free(AsymExperiment *ex);

#endif
