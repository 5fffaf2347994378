/* fuzz_config.c: the configuration: the YAML tree (src/config/cfg.c), a --set
 * override, the experiment schema (src/config/experiment.c, data_keys.c, arch.c)
 * and writing the tree back. The input is split at a 2-byte length: YAML
 * text, then the assignment. The data section is replaced by a small
 * synthetic set first, so that no input makes the schema read files. */
#include "asymbp.h"
#include "config/config.h"
#include "fuzz.h"

static char *text_of(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *a, *b;
    size_t na, nb;
    fuzz_split(data, size, &a, &na, &b, &nb);
    char *yaml = text_of(a, na), *set = text_of(b, nb);
    Cfg *cfg;
    if (cfg_parse_string(&cfg, yaml, "fuzz.yaml") == ASYM_OK) {
        if (nb) asym_config_set(cfg, set);
        if (asym_config_set(cfg, "data={format: random, random: {n: 8, c: 1, h: 4, w: 4, classes: 2}}") == ASYM_OK) {
            AsymExperiment ex;
            if (asym_experiment_from_config(&ex, cfg) == ASYM_OK) {
                fuzz_sink ^= (uint8_t)(ex.epochs + ex.net.n_layers + ex.trap_fp);
                asym_experiment_free(&ex);
            }
        }
        char path[512];
        snprintf(path, sizeof path, "%s/config.yaml", fuzz_dir());
        asym_config_write(cfg, path);
        asym_config_free(cfg);
    }
    free(yaml);
    free(set);
    return 0;
}
