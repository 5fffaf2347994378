/* data.h: internal interface of the data readers (data.c, one file per
 * format). The public readers are
 * declared in asymbp.h; this adds what they share: file checks, the
 * per-class sampling of Liao et al. (N train and M test images per class,
 * a random subset of K classes), and the image-folder listing. */
#ifndef ASYM_DATA_H
#define ASYM_DATA_H

#include <stdint.h>

#include "base/base.h"

/* ---- helpers shared by the readers (data.c) ---- */

/* out = dir/name, failing (with the names) when it does not fit. */
int data_join(char *out, size_t cap, const char *dir, const char *name);
/* 1 when dir/name (or dir itself when name is NULL) is a regular file or,
 * with want_dir, a directory. */
int data_exists(const char *dir, const char *name, int want_dir);
/* Size of the regular file path; fails naming it when missing. */
int data_file_size(const char *path, size_t *size);
/* Allocates d for n images of c x h x w (zeroed) with n labels; fails
 * naming what when the sizes overflow int or memory. */
int data_alloc(AsymDataset *d, const char *what, size_t n, int c, int h, int w, int classes);

/* The class subset and the per-class draws (docs/DATA.md). classes: the
 * set's class count; names (may be NULL) name classes in messages; what
 * names the data set. With a fixed split, y1/y2 are the training and test
 * labels and m1/m2 receive 1 for the images kept. For a pool (y2 == NULL)
 * m1 receives 1 (train), 2 (test) or 0. map (classes entries) receives the
 * new label of every old one, -1 for classes left out; *kept the number of
 * classes kept. Labels outside [0, classes) are an error. */
/* The class subset alone: map[old] = new label or -1; *kept classes. */
int data_class_map(int classes, int k, uint64_t seed, int *map, int *kept);
int data_sample(const char *what, const AsymDataOptions *o, uint64_t seed, int classes, char *const *names,
                const int32_t *y1, int n1, const int32_t *y2, int n2, uint8_t *m1, uint8_t *m2, int *map, int *kept);
/* out = the images of d with mark[i] == which, labels through map (NULL:
 * unchanged), classes set to classes. d is left as it was. */
int data_gather(const AsymDataset *d, const uint8_t *mark, uint8_t which, const int *map, int classes, AsymDataset *out);

/* ---- readers' internals ---- */

/* CIFAR record check over a whole buffer (fuzzing and tests): decodes len
 * bytes of records into x/y, which must hold len / record images. */
int cifar_decode(const char *path, const uint8_t *buf, size_t len, int hundred, int coarse, float *x, int32_t *y);

/* An image-folder tree: classes are the subfolders (name order) of dir,
 * or of dir/train and dir/test when both exist (a fixed split). */
typedef struct FolderList {
    char *dir;          /* as given */
    int fixed;          /* dir/train and dir/test */
    int classes;
    char **names;       /* class folder names */
    int n;              /* images, training (or pool) ones first */
    int n_train;        /* the first n_train images are dir/train's (or the pool) */
    char **files;       /* full paths */
    int32_t *y;         /* class of each file */
} FolderList;
/* Lists dir, leaving out the class folders named in exclude (one per line,
 * may be NULL). An empty class folder or no class at all is an error. */
int folder_list(const char *dir, const char *exclude, FolderList *l);
void folder_list_free(FolderList *l);
/* The class folder names of dir (sorted) without listing the images. */
int folder_class_names(const char *dir, const char *exclude, char ***names, int *classes);
/* Decodes images idx[0..n) of l into d (labels[i] for image i; classes),
 * h x w, 1 or 3 channels. With cache_dir, every image of l is decoded once
 * into a cache file there and later calls read it. */
int folder_decode(const FolderList *l, const int *idx, int n, const int32_t *labels, int classes, int h, int w, int gray,
                  const char *cache_dir, AsymDataset *d);
/* One encoded image (JPEG, PNG, ...) in memory to c x h x w floats in [0, 1]
 * (fuzzing and tests); name is used in messages. */
int folder_decode_image(const char *name, const uint8_t *buf, size_t len, int h, int w, int gray, float *out);
/* Reads a cache file written by folder_decode: n images of c x h x w with
 * the given key; *pix receives n*c*h*w bytes. Any mismatch is an error. */
int folder_cache_read(const char *path, uint64_t key, int n, int c, int h, int w, uint8_t **pix);

/* The .npy layout of a folder: train_x/train_y/test_x/test_y, or x/y (a
 * pool). Fills the x file path of the training (or pool) set. */
int npy_layout(const char *dir, int *pooled, char *x_path, size_t cap);
/* Shape of a feature array without reading it: c, h, w of one item. */
int npy_item_shape(const char *x_path, int *n, int *c, int *h, int *w);
/* Largest label + 1 over the label files of dir. */
int npy_count_classes(const char *dir, int *classes);

#endif
