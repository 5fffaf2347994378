/* probe.c: `asymbp probe`: one fixed batch through the network, every
 * tensor written as .npy with a manifest (see asym_probe in asymbp.h). */
#include <stdio.h>

#include "cli.h"

int cmd_probe(const CliArgs *a) {
    if (!a->out) return cli_fail(2, "probe: --out DIR is required");
    AsymConfig *cfg;
    AsymExperiment *ex;
    int rc = cli_load_args(a, NULL, 0, &cfg, &ex);
    if (rc) return rc;
    if (asym_probe(ex, a->weights, a->batch, a->steps, a->out)) rc = cli_fail(1, asym_last_error());
    else if (!a->quiet) printf("asymbp: probe of %d images written to %s/manifest.json\n", a->batch, a->out);
    cli_free_experiment(cfg, ex);
    return rc;
}
