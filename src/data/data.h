/* data.h: internal interface of the data readers (data.c, one file per
 * format, formats.c, load.c): the readers, the table of formats and
 * what the readers share: file
 * checks, the per-class sampling of Liao et al. (N train and M test images
 * per class, a random subset of K classes), and the image-folder listing. */
#ifndef ASYM_DATA_H
#define ASYM_DATA_H

#include <stdint.h>
#include <stdio.h>

#include "base/base.h"

/* Augmentation of the training images (the `data.augment` keys; zero
 * everywhere: none) and the evaluation transform that gives the test and
 * validation images the same size (augment.c, docs/DATA.md). Sizes are
 * height, width in pixels. */
typedef struct AugmentSpec {
    int crop_h, crop_w;          /* random crop of the image padded by crop_pad (0: none) */
    int crop_pad;                /* padding on each side before the crop */
    float fill;                  /* the padding's pixel value, before normalization */
    float hflip;                 /* probability of a horizontal flip */
    int rrc_h, rrc_w;            /* random-resized crop to this size (0: none) */
    double scale[2], ratio[2];   /* its area fraction and aspect-ratio (w / h) ranges */
    int eval_resize;             /* evaluation: shorter side resized to this (0: none) */
    int eval_crop_h, eval_crop_w; /* then a centre crop (0: none) */
    int in_h, in_w;              /* the stored images (after data.pad): set by asym_data_spec_resolve */
} AugmentSpec;

/* The streamed format's own keys (format imagenet, docs/DATA.md). */
typedef struct StreamSpec {
    char train_shards[1024], val_shards[1024]; /* tar shard patterns or paths, one per line ("": class folders) */
    char val_labels[1024];  /* a flat PATH/val: one class name per image in name order ("": class folders) */
    char cache_dir[1024];   /* where the index is kept ("": rebuilt every run) */
    int workers;            /* decoding threads (0: the default, stream_workers) */
    long max_bad;           /* unreadable files allowed (-1: 0.1% of the set, at least 10) */
} StreamSpec;

/* Where the data comes from and how it is prepared (the `data` section). */
typedef struct AsymDataSpec {
    char format[16];        /* "idx" or "random" */
    char path[1024];
    int pad;                /* zero padding on each side */
    int normalize;          /* 1: per-channel mean/std of the training set */
    int norm_given;         /* channels in mean/std when given explicitly */
    float mean[4], std[4];
    int train_limit, test_limit, val_size;
    int random_n, random_c, random_h, random_w, random_classes;
    int c, h, w, classes;   /* the model's input (after padding and augmentation) and classes */
    AsymDataOptions opt;    /* the readers' options (asymbp.h) */
    AugmentSpec aug;
    StreamSpec stream;
} AsymDataSpec;

/* Loads the data sets described by spec: train (minus a seeded validation
 * split of val_size images), val, test; padded and normalized. With
 * augmentation (augment_on), train holds the stored images, padded but
 * neither augmented nor normalized (augment_train makes each batch's), and
 * val and test went through the evaluation transform, then normalization. */
int asym_data_load(const AsymDataSpec *spec, uint64_t seed, AsymDataset *train, AsymDataset *val, AsymDataset *test);
/* Whether spec's format is streamed (stream_data_open instead). */
int data_streamed(const AsymDataSpec *spec);
/* The per-channel mean and std (train->c entries) normalization uses:
 * data.mean/std, or the training set's (a constant channel's std is 1). */
void data_norm_values(const AsymDataSpec *spec, const AsymDataset *train, float *mean, float *std);

/* ---- augmentation (augment.c) ---- */

/* Whether spec asks for a random training transform; for an evaluation one. */
int augment_on(const AugmentSpec *a);
int augment_eval_on(const AugmentSpec *a);
/* The training and evaluation output of images of h x w, which must agree
 * (the model takes both); on failure, a message and in *key the
 * data.augment key to blame ("crop", "eval_crop", ...). */
int augment_shape(const AugmentSpec *a, int h, int w, int *oh, int *ow, const char **key);
/* The evaluation transform's output for images of h x w (a centre crop
 * larger than the image fails). */
int augment_eval_shape(const AugmentSpec *a, int h, int w, int *oh, int *ow);

/* One sample's random choices: a box (i, j) top-left, bh x bw, in the
 * image's coordinates (the pad-crop's may reach outside by crop_pad) and a
 * flip. Pure in (seed, epoch, index). */
typedef struct AugmentDraw {
    int i, j, bh, bw;
    int flip;
} AugmentDraw;
AugmentDraw augment_draw(const AugmentSpec *a, int h, int w, uint64_t seed, uint64_t epoch, uint64_t index);
/* torchvision's RandomResizedCrop.get_params on r: up to 10 boxes of area
 * in scale * h * w and log-uniform aspect ratio, then the centre crop. */
void augment_rrc_box(AsymRng *r, int h, int w, const double scale[2], const double ratio[2], int *i, int *j, int *bh, int *bw);
/* torchvision's centre-crop offset of size n in an image of size, which
 * rounds half to even as Python's round(). */
int augment_centre(int size, int n);
/* out (c, oh, ow) = the box (i, j, oh, ow) of x (c, h, w), pixels outside
 * x set to fill, mirrored left-right when flip. */
void augment_crop(float *out, const float *x, int c, int h, int w, int i, int j, int oh, int ow, float fill, int flip);
/* out (c, oh, ow) = the box (i, j, bh, bw) of x (c, h, w), which must lie
 * inside x, resized bilinearly (torch's interpolate with
 * align_corners=False, no antialiasing: torchvision's resize of a tensor),
 * mirrored when flip. */
void augment_resized_crop(float *out, const float *x, int c, int h, int w, int i, int j, int bh, int bw, int oh, int ow, int flip);
/* Rows oi.. and columns oj.. (oh x ow of them) of the box (i, j, bh, bw)
 * of x (c, h, w) resized to fh x fw, into out; mirrored when flip. The
 * evaluation transform takes its centre crop as such a window. */
void augment_window(float *out, const float *x, int c, int h, int w, int i, int j, int bh, int bw, int fh, int fw, int oi, int oj,
                    int oh, int ow, int flip);
/* augment_window of a box of 8-bit RGB (bh rows stride bytes apart, 3
 * interleaved channels) read as u8 / 255, into out (3, oh, ow), then
 * (x - mean) / std per channel unless mean is NULL: bit for bit what
 * converting the box to floats, augment_window and normalizing give, at
 * one horizontal pass per source row read. Fails only out of memory. */
int augment_window_rgb(float *out, const uint8_t *rgb, size_t stride, int bh, int bw, int fh, int fw, int oi, int oj, int oh, int ow,
                       int flip, const float *mean, const float *std);
/* The evaluation transform: shorter side resized (eval_resize), then the
 * centre crop (eval_crop), x (c, h, w) into out (c, oh, ow) as
 * augment_shape gives them. */
void augment_eval(const AugmentSpec *a, float *out, const float *x, int c, int h, int w);
/* Every image of d through augment_eval (d replaced; nothing when the
 * spec has no evaluation transform). */
int augment_eval_set(const AugmentSpec *a, AsymDataset *d);

/* A training set's augmentation, ready to run: the spec, the sizes in and
 * out, the seed, and the normalization that follows, as torchvision's
 * ToTensor and Normalize would (NULL mean: none). */
typedef struct Augment {
    AugmentSpec spec;
    int c, h, w, oh, ow;
    uint64_t seed;
    float *mean, *std;     /* (c) */
} Augment;
/* For the stored training images train of spec (asym_data_load's). */
int augment_init(Augment *a, const AsymDataSpec *spec, const AsymDataset *train, uint64_t seed);
void augment_free(Augment *a);
/* out (c, oh, ow): sample index (its place in the training set) of epoch
 * (0-based), from its stored image x (c, h, w), normalized. */
void augment_train(const Augment *a, float *out, const float *x, uint64_t epoch, uint64_t index);
/* The same image through the evaluation transform, normalized. */
void augment_eval_one(const Augment *a, float *out, const float *x);
/* The stored training images of spec (asym_data_load's train) as
 * evaluation sees them: the evaluation transform, then normalization. */
int augment_prepare_set(const AsymDataSpec *spec, AsymDataset *train);

/* ---- the readers: one per format (each file's top comment gives the
 * layout it reads), and the transforms; pixels are scaled to [0, 1] ---- */
/* MNIST-format IDX files (raw or gzip) under their standard names in dir. */
int asym_dataset_load_idx(AsymDataset *d, const char *dir, int train);
/* Gaussian images with random labels, for tests and benchmarks. */
int asym_dataset_random(AsymDataset *d, int n, int c, int h, int w, int classes, uint64_t seed);
/* Keeps the first n images (n <= d->n). */
void asym_dataset_truncate(AsymDataset *d, int n);
/* Zero-pads every image by p pixels on each side (28x28 -> 32x32 for p=2). */
int asym_dataset_pad(AsymDataset *d, int p);
/* Resizes every image to h x w, each channel bilinearly (stb_image_resize's
 * triangle filter, edges clamped: torchvision's Resize of a PIL image). */
int asym_dataset_resize(AsymDataset *d, int h, int w);
/* x <- (x - mean[c]) / std[c]; mean/std have d->c entries. */
void asym_dataset_normalize(AsymDataset *d, const float *mean, const float *std);
/* Moves a seeded random subset of n images of d into val. */
int asym_dataset_split(AsymDataset *d, AsymDataset *val, int n, uint64_t seed);

/* CIFAR-10, or CIFAR-100 (hundred; coarse: its 20 superclasses), binary. */
int asym_dataset_load_cifar(AsymDataset *d, const char *dir, int hundred, int coarse, int train);
/* STL-10 binary (labels 1..10 become 0..9). */
int asym_dataset_load_stl10(AsymDataset *d, const char *dir, int train);
/* SVHN cropped digits: path is a .mat file, or a folder holding
 * train_32x32.mat and test_32x32.mat. */
int asym_dataset_load_svhn(AsymDataset *d, const char *path, int train);
/* x.npy of shape (N, F), (N, H, W) or (N, C, H, W) and y.npy of N integer
 * labels; F features become F channels of 1 x 1 images. */
int asym_dataset_load_npy(AsymDataset *d, const char *x_path, const char *y_path);
/* Every image under dir/CLASS/ (classes in name order; with dir/train/ and
 * dir/test/, the images of both, training ones first), resized to h x w,
 * 1 or 3 channels; cache_dir (may be NULL) keeps decoded copies. */
int asym_dataset_load_folder(AsymDataset *d, const char *dir, int h, int w, int grayscale, const char *cache_dir);

/* Sets spec->c, h, w and classes from its format, path and options (image
 * folders and .npy files are looked at, nothing is decoded); format "auto"
 * becomes the one asym_data_detect finds. The calls below and
 * asym_data_load take a spec resolved so. */
int asym_data_spec_resolve(AsymDataSpec *spec);
/* The data set's own splits, read whole, before any sampling, grayscale
 * conversion, padding or normalization (image folders are decoded at the
 * options' size and channels): a fixed split gives train and test
 * (*pooled = 0); a pool (an image folder without train/ and test/, an npy
 * folder with x.npy and y.npy, a single SVHN .mat file) gives every image
 * in train and an empty test (*pooled = 1). */
int asym_data_load_splits(const AsymDataSpec *spec, AsymDataset *train, AsymDataset *test, int *pooled);
/* Class names of the data set spec describes, in label order after the
 * class subset drawn with seed (the experiment seed unless sample_seed is
 * given): folder names, or the names files shipped with CIFAR and STL-10,
 * or "0", "1", ...; free with asym_data_names_free. */
int asym_data_class_names(const AsymDataSpec *spec, uint64_t seed, char ***names, int *n);

/* ---- streamed image sets: format imagenet (imagenet.c, index.c, tar.c,
 * jpeg.c, sample.c, stream.c) ---- */

/* One split's images: sample i is bytes off .. off + size of files[file[i]]
 * (size 0: the whole file), labelled y[i]. */
typedef struct ImageIndex {
    int n, classes, n_files;
    char **names;            /* (classes) class names */
    char **files;            /* (n_files) image files or tar shards */
    uint32_t *file;          /* (n) */
    uint64_t *off, *size;    /* (n) */
    int32_t *y;              /* (n) */
    uint64_t stamp;          /* of the listing it came from */
} ImageIndex;
/* The index of the training (train) or validation split of s, from
 * s->stream.cache_dir when the cache there matches the listing, else
 * built (and cached). classes_from (the training index, for val): the
 * classes val's folder names and labels are matched to. note receives a
 * line to show when a cache was refused or not written ("": none). */
int image_index_build(const AsymDataSpec *s, int train, const ImageIndex *classes_from, ImageIndex *ix, char *note, size_t cap);
void image_index_free(ImageIndex *ix);
/* The cache file (index.c): written atomically; read back only when its
 * stamp is stamp and every field checks out. */
int image_index_write(const char *path, const ImageIndex *ix);
int image_index_read(const char *path, uint64_t stamp, ImageIndex *ix);

/* A tar member: name, its data's offset and size in the open file f. */
typedef int (*TarMember)(void *user, FILE *f, const char *name, uint64_t off, uint64_t size);
/* Calls cb for every regular file of the tar file path, in order. */
int tar_scan(const char *path, TarMember cb, void *user);
int tar_read_member(FILE *f, const char *path, uint64_t off, uint64_t size, uint8_t *buf);

/* A decoded part of an image: h x w RGB pixels (rows stride bytes apart)
 * holding the box bh x bw at (bi, bj), decoded at 1/scale. */
typedef struct JpegRegion {
    uint8_t *rgb;
    int h, w, stride, scale;
    int bi, bj, bh, bw;
} JpegRegion;
int jpeg_is_jpeg(const uint8_t *buf, size_t len);
/* The size of a JPEG in memory from its header; name is used in messages. */
int jpeg_header(const char *name, const uint8_t *buf, size_t len, int *h, int *w);
/* The box (i, j, bh, bw) of the JPEG buf, to be resized to need_h x
 * need_w (0: decode at full scale), decoded at the largest DCT scale that
 * keeps it at least that size, only its rows and (whole iMCU) columns. */
int jpeg_decode_box(const char *name, const uint8_t *buf, size_t len, int i, int j, int bh, int bw, int need_h, int need_w, JpegRegion *r);
/* A box and the size it is resized to, as jpeg_decode_box takes them. */
typedef struct JpegBox {
    int i, j, bh, bw, need_h, need_w;
} JpegBox;
/* The box to decode of an image of h x w, or a failure (with its message). */
typedef int (*JpegBoxOf)(void *user, int h, int w, JpegBox *b);
/* jpeg_header then jpeg_decode_box of the box box_of gives for the size
 * found, with the header read once: the same checks, messages and pixels. */
int jpeg_decode_fit(const char *name, const uint8_t *buf, size_t len, JpegBoxOf box_of, void *user, JpegRegion *r);
void jpeg_region_free(JpegRegion *r);
/* The region's box as (3, bh, bw) floats in [0, 1]. */
void jpeg_region_floats(const JpegRegion *r, float *out);

/* How a streamed split's samples are made (sample.c). */
typedef struct SampleMaker {
    const ImageIndex *ix;
    AugmentSpec spec;
    int oh, ow;           /* the model's input */
    uint64_t seed;
    float mean[3], std[3];
    int normalize;
} SampleMaker;
/* Sample index of the split as training (train: the random-resized crop
 * and flip drawn from (seed, epoch, index)) or evaluation sees it, into
 * out (3, oh, ow), normalized. On failure a message naming the file. */
int sample_make(const SampleMaker *m, int train, uint64_t epoch, int index, float *out);

/* The prefetcher (stream.c): worker threads make the rows of the jobs of
 * an epoch (a job: rows start .. start + n of the epoch's order) into a
 * ring of fixed size, ahead of the consumer. A sample that cannot be made
 * is replaced by the next one of the index that can (its label too), and
 * reported once. */
typedef struct Stream Stream;
typedef struct StreamJob {
    int start, n;
} StreamJob;
/* The decoding threads: data.workers, or by default the cores left beside
 * train_threads (at least 1, at most 32). */
int stream_workers(const StreamSpec *o, int train_threads);
int stream_create(Stream **s, const SampleMaker *m, int workers, int batch);
void stream_free(Stream *s);
/* Starts an epoch's jobs (copied); order (the index's n entries, kept by
 * the caller until the next begin) or NULL: the index order. */
int stream_begin(Stream *s, int train, uint64_t epoch, const int *order, const StreamJob *jobs, int n_jobs);
/* The next job's rows into x (n, 3, oh, ow) and y; *bad receives the
 * number of its rows replaced. A message for each file not reported
 * before goes to note (may be NULL). */
int stream_next(Stream *s, float *x, int32_t *y, int *bad, void (*note)(void *, const char *), void *user);
/* Distinct files found unreadable so far. */
long stream_bad_files(const Stream *s);

/* A streamed data set (format imagenet): the indexes of train and val
 * (the test set) and how their samples are made; note: what to show of
 * the index caches. */
typedef struct StreamData {
    ImageIndex train, val;
    SampleMaker train_m, val_m;
    char note[2][700];
} StreamData;
int stream_data_open(const AsymDataSpec *s, uint64_t seed, StreamData *d);
/* ---- MAT 5 files (mat5.c; MAT-File Format, MathWorks) ---- */

/* Data types of a data element's tag. */
enum { MI_INT8 = 1, MI_UINT8, MI_INT16, MI_UINT16, MI_INT32, MI_UINT32, MI_SINGLE, MI_DOUBLE = 9, MI_INT64 = 12, MI_UINT64,
       MI_MATRIX, MI_COMPRESSED, MI_UTF8, MI_UTF16, MI_UTF32 };
/* Where elements are read: the file (for messages), its byte order, the
 * file offset of the buffer's first byte and how many of its bytes are in
 * memory (SIZE_MAX: all the bounds given). */
typedef struct Mat5 {
    const char *path;
    int swap;       /* big-endian file */
    size_t base, avail;
} Mat5;
/* The 128-byte header h of a file of len bytes: a MAT 5/7 file (MATLAB
 * 7.3's HDF5 refused with how to re-save it); *swap its byte order. */
int mat5_header(const char *path, const uint8_t *h, size_t len, int *swap);
uint32_t mat5_u32(const Mat5 *m, const uint8_t *p);
/* Bytes per element of a numeric data type; 0 for the others. */
int mat5_type_size(uint32_t t);
/* The data element at buf[at] within [at, end): its type and data
 * [*d, *d + *n); *next the element after it (8-byte aligned, or end). */
int mat5_elem(const Mat5 *m, const uint8_t *buf, size_t at, size_t end, uint32_t *type, size_t *d, size_t *n, size_t *next);

/* devkit.c: the ILSVRC2012 devkit's data/meta.mat as a table wnid[1..max]
 * of ILSVRC2012_ID -> WNID (NULL where no synset has the ID; free with
 * asym_data_names_free(wnid, DEVKIT_TABLE)). */
#define DEVKIT_TABLE 100001
int devkit_wnids(const char *meta_mat, char ***wnid, int *max);
void stream_data_free(StreamData *d);
/* A data set of ix's labels alone (x NULL) with the model's shape. */
int stream_data_labels(const ImageIndex *ix, int c, int h, int w, AsymDataset *d);
/* DataFormat.shape and .class_names of imagenet. */
int imagenet_shape(const AsymDataSpec *s, int *c, int *h, int *w, int *classes);
int imagenet_names(const AsymDataSpec *s, char ***names, int *n);

/* ---- the formats (formats.c, the only list of them) ---- */

/* DataFormat.flags: needs no data.path (a default one, or none); drawn,
 * not read (no sampling or grayscale); decoded at data.size (nothing to
 * resize after); feature vectors (data.size refused); streamed during
 * training, never loaded whole (asym_data_load refuses it). */
enum { DATA_PATHLESS = 1, DATA_DRAWN = 2, DATA_SIZED = 4, DATA_FEATURES = 8, DATA_STREAMED = 16 };

/* A data format. Its functions return nonzero on failure, with a message. */
typedef struct DataFormat {
    const char *name;
    int flags;
    const char *keys[8];            /* the data keys of this format alone */
    const char *marks[5];           /* files whose presence in a folder tells the format */
    const char *suffix;             /* how a single file holding the set ends */
    int (*detect)(const char *dir); /* tried once no format's marks are found */
    int c, h, w, classes;           /* a fixed shape, or shape() */
    int coarse_classes;             /* classes with data.label coarse (0: no such labels) */
    int (*shape)(const AsymDataSpec *s, int *c, int *h, int *w, int *classes);
    int (*pooled)(const char *path, int *pooled); /* no train/test split of its own (NULL: never) */
    /* The set's own splits, read whole; or read() each (the test one
     * unless pooled); neither: nothing to read. */
    int (*splits)(const AsymDataSpec *s, AsymDataset *train, AsymDataset *test, int *pooled);
    int (*read)(AsymDataset *d, const char *path, int train);
    /* Train and test, sampled already (NULL: splits(), then the sampling). */
    int (*load)(const AsymDataSpec *s, uint64_t seed, uint64_t sample_seed, AsymDataset *train, AsymDataset *test);
    /* Class names (NULL: names_file, or coarse_names_file with data.label
     * coarse, else names, else numbers). */
    int (*class_names)(const AsymDataSpec *s, char ***names, int *n);
    const char *names_file, *coarse_names_file;
    const char *const *names;
} DataFormat;

/* The format called name, or NULL with a message listing the formats. */
const DataFormat *data_format_find(const char *name);
/* The only place "auto" becomes a format: detected from s->path, its name
 * written into s->format. */
const DataFormat *data_format_resolve(AsymDataSpec *s);
/* The images and classes as read: before grayscale, subset, resize, pad. */
int data_format_shape(const DataFormat *f, const AsymDataSpec *s, int *c, int *h, int *w, int *classes);
/* The format that alone takes the data key key, or NULL when all do. */
const char *data_format_of_key(const char *key);

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

/* The class subset alone: map (classes entries) receives the new label of
 * every old one, -1 for classes left out; *kept the number of classes kept. */
int data_class_map(int classes, int k, uint64_t seed, int *map, int *kept);
/* The class subset and the per-class draws (docs/DATA.md). classes: the
 * set's class count; names (may be NULL) name classes in messages; what
 * names the data set. With a fixed split, y1/y2 are the training and test
 * labels and m1/m2 receive 1 for the images kept. For a pool (y2 == NULL)
 * m1 receives 1 (train), 2 (test) or 0. map and kept as data_class_map's.
 * Labels outside [0, classes) are an error. */
int data_sample(const char *what, const AsymDataOptions *o, uint64_t seed, int classes, char *const *names,
                const int32_t *y1, int n1, const int32_t *y2, int n2, uint8_t *m1, uint8_t *m2, int *map, int *kept);
/* out = the images of d with mark[i] == which, labels through map (NULL:
 * unchanged), classes set to classes. d is left as it was. */
int data_gather(const AsymDataset *d, const uint8_t *mark, uint8_t which, const int *map, int classes, AsymDataset *out);

/* ---- readers' internals ---- */

/* Parses an IDX file held in memory (idx.c). Only unsigned-byte data (type
 * 0x08) is accepted. ndim and dims receive the header; *payload points
 * into data. */
int idx_parse(const char *path, const uint8_t *data, size_t len, int *ndim, uint32_t dims[4], const uint8_t **payload);

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
/* Decodes the images i of l with mark[i] == which (all when mark is NULL)
 * into d, in list order, labels through map (NULL: as listed); h x w, 1 or
 * 3 channels. With cache_dir, every image of l is decoded once into a
 * cache file there and later calls read it. */
int folder_decode(const FolderList *l, const uint8_t *mark, uint8_t which, const int *map, int classes, int h, int w, int gray,
                  const char *cache_dir, AsymDataset *d);
/* One encoded image (JPEG, PNG, ...) in memory to c x h x w floats in [0, 1]
 * (fuzzing and tests); name is used in messages. */
int folder_decode_image(const char *name, const uint8_t *buf, size_t len, int h, int w, int gray, float *out);
/* One encoded image, checked as folder_decode checks it, to h x w pixels
 * of c interleaved channels (free with folder_pixels_free). */
int folder_load_pixels(const char *name, const uint8_t *buf, size_t len, int c, uint8_t **pixels, int *h, int *w);
void folder_pixels_free(uint8_t *pixels);
/* Reads a cache file written by folder_decode: n images of c x h x w with
 * the given key; *pix receives n*c*h*w bytes. Any mismatch is an error. */
int folder_cache_read(const char *path, uint64_t key, int n, int c, int h, int w, uint8_t **pix);

/* The .npy layout of a folder: train_x/train_y/test_x/test_y, or x/y (a
 * pool). Fills the x file path of the training (or pool) set. */
int npy_layout(const char *dir, int *pooled, char *x_path, size_t cap);
/* DataFormat.shape and .splits of npy: features as channels, the classes
 * the largest label + 1 over the label files, or data.classes. */
int npy_shape(const AsymDataSpec *s, int *c, int *h, int *w, int *classes);
int npy_splits(const AsymDataSpec *s, AsymDataset *train, AsymDataset *test, int *pooled);

#endif
