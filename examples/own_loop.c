/* own_loop.c: a training loop of one's own on the public API alone
 * (include/asymbp.h): an experiment file gives the data, the network with
 * its feedback rules, the optimizer and the schedule; the loop is here.
 * Each epoch visits the training set in order and prints the training
 * loss, the test error and the mean angle between each layer's feedback
 * matrix B and its weights W.
 *
 *     own_loop CONFIG.yaml [KEY=VALUE]...
 *
 * Built with -Iinclude only, so it compiles against nothing else. */
#include <stdio.h>
#include <stdlib.h>

#include "asymbp.h"

/* The library's message names the file, key or value at fault. */
static int fail(void) {
    fprintf(stderr, "own_loop: %s\n", asym_last_error());
    return 1;
}

/* Mean B-W angle over the weight layers that have a B, on the first batch. */
static double mean_angle(AsymNet *net, const AsymDataset *d, int batch) {
    int L = asym_net_n_weight_layers(net), k = 0;
    AsymAlignment *a = calloc((size_t)L, sizeof *a);
    double sum = 0;
    if (a && !asym_net_alignment(net, d->x, d->y, d->n < batch ? d->n : batch, a))
        for (int i = 0; i < L; i++)
            if (a[i].angle == a[i].angle) sum += a[i].angle, k++;
    free(a);
    return k ? sum / k : 0;
}

static int train(AsymExperiment *ex) {
    AsymExperimentInfo info;
    asym_experiment_info(ex, &info);
    AsymDataset tr, va, te;
    AsymNet *net = NULL;
    AsymOptim *opt = NULL;
    if (asym_experiment_data(ex, 1, &tr, &va, &te)) return fail();
    int rc = asym_experiment_net(ex, &net) || asym_experiment_optim(ex, net, &opt) ? fail() : 0;
    size_t in = (size_t)tr.c * tr.h * tr.w;
    for (int e = 0; !rc && e < info.epochs; e++) {
        float lr = asym_experiment_lr(ex, e);
        double loss = 0, test_loss, test_err;
        for (int i = 0; i + info.batch_size <= tr.n; i += info.batch_size) {
            asym_net_forward(net, tr.x + i * in, info.batch_size, 1);
            asym_net_zero_grad(net);
            loss += asym_net_loss(net, tr.y + i, info.batch_size, 1, NULL) * info.batch_size;
            asym_optim_step(opt, lr);
            asym_net_feedback_update(net);
        }
        asym_evaluate(net, &te, info.batch_size, &test_loss, &test_err);
        printf("epoch %d: lr %g, train loss %.4f, test error %.2f%%, mean angle %.1f\n", e + 1, lr,
               loss / (tr.n / info.batch_size * info.batch_size), 100 * test_err, mean_angle(net, &te, info.batch_size));
    }
    asym_optim_free(opt);
    asym_net_free(net);
    asym_dataset_free(&tr);
    asym_dataset_free(&va);
    asym_dataset_free(&te);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: own_loop CONFIG.yaml [KEY=VALUE]...\n");
        return 2;
    }
    AsymConfig *cfg;
    AsymExperiment *ex;
    if (asym_config_load(&cfg, argv[1])) return fail();
    for (int i = 2; i < argc; i++)
        if (asym_config_set(cfg, argv[i])) return fail();
    if (asym_experiment_open(&ex, cfg)) return fail();
    int rc = train(ex);
    asym_experiment_close(ex);
    asym_config_free(cfg);
    return rc;
}
