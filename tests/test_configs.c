/* test_configs.c: every shipped experiment file under configs/ parses,
 * resolves and builds its network. */
#include <dirent.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "asymbp.h"
#include "test.h"

/* A streamed JPEG set is listed when the experiment is read, and ImageNet
 * cannot ship: its configs are pointed at a tree of the same layout, two
 * classes of one (undecoded) file each. */
static const char *fake_imagenet(void) {
    static char root[600];
    if (!root[0]) {
        snprintf(root, sizeof root, "%s/imagenet", test_tmpdir());
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "for d in train/n01 train/n02 val/n01 val/n02; do mkdir -p '%s'/$d && : > '%s'/$d/a.JPEG; done", root, root);
        if (system(cmd)) return NULL;
    }
    return root;
}

static int check_file(const char *path) {
    AsymConfig *cfg = NULL;
    AsymExperiment ex;
    AsymNet *net = NULL;
    AsymRng rng;
    asym_rng_seed(&rng, 1);
    char *text = test_read_file(path), set[700];
    int streamed = text && strstr(text, "format: imagenet");
    free(text);
    if (streamed) snprintf(set, sizeof set, "data.path=%s", fake_imagenet());
    /* the weight mirror's pre-sweep (3000 mirror steps by default) runs in
     * asym_net_create: without it the same network is built */
    if (asym_config_load(&cfg, path) || asym_config_set(cfg, "feedback.wm.presweep=0") || (streamed && (asym_config_set(cfg, set) || asym_config_set(cfg, "data.cache_dir=false"))) ||
        asym_experiment_from_config(&ex, cfg)) {
        printf("    %s\n", asym_last_error());
        asym_config_free(cfg);
        return 0;
    }
    int ok = asym_net_create(&net, &ex.net, 2, &rng) == 0;
    if (!ok) printf("    %s: %s\n", path, asym_last_error());
    asym_net_free(net);
    asym_experiment_free(&ex);
    asym_config_free(cfg);
    return ok;
}

/* Checks every .yaml below dir; returns the number checked, -1 on a failure. */
static int walk(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n >= 0) {
        char path[1024];
        struct stat sb;
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &sb)) continue;
        if (S_ISDIR(sb.st_mode)) {
            int k = walk(path);
            n = k < 0 ? -1 : n + k;
        } else if (strlen(e->d_name) > 5 && !strcmp(e->d_name + strlen(e->d_name) - 5, ".yaml")) {
            n = check_file(path) ? n + 1 : -1;
        }
    }
    closedir(d);
    return n;
}

TEST(configs_all_parse_and_build) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/configs", test_srcdir());
    int n = walk(dir);
    printf("    %d experiment files\n", n);
    CHECK(n >= 3);
}
