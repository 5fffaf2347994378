/* export.c: `asymbp export CHECKPOINT|RUN_DIR OUT_DIR`: every array of a
 * checkpoint (weights, feedback matrices, batch-norm statistics, optimizer
 * buffers, generator states) as a NumPy .npy file, its texts as files
 * (config.yaml, log.jsonl, arch.txt), and OUT_DIR/manifest.json naming each
 * with its dtype and shape (docs/CHECKPOINT.md). */
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"

int cmd_export(int argc, char **argv) {
    if (argc != 2 || argv[0][0] == '-' || argv[1][0] == '-') {
        fprintf(stderr, "usage: asymbp export CHECKPOINT|RUN_DIR OUT_DIR\n");
        return 2;
    }
    char path[1100];
    struct stat sb;
    if (stat(argv[0], &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(path, sizeof path, "%s/checkpoint.bin", argv[0]);
    else snprintf(path, sizeof path, "%s", argv[0]);
    AsymCheckpoint *ck;
    if (asym_checkpoint_open(&ck, path)) return cli_fail(1, asym_last_error());
    int64_t epoch;
    int rc = asym_checkpoint_export(ck, argv[1]);
    if (rc) cli_fail(1, asym_last_error());
    else if (asym_checkpoint_int(ck, "epoch", &epoch) == 0) printf("asymbp: %s (after epoch %lld) -> %s/manifest.json\n", path, (long long)epoch, argv[1]);
    else printf("asymbp: %s -> %s/manifest.json\n", path, argv[1]);
    asym_checkpoint_close(ck);
    return rc ? 1 : 0;
}
