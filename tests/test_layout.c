/* test_layout.c: the source tree keeps the layout of docs/ENGINE.md: src/
 * is folders only, each includes only folders below it (so no include
 * circle), kernels include nothing of the library, and the command (cli/)
 * sees only the public header. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

/* The folders of src/ from the bottom up: a folder may include those of a
 * lower rank (and its own header), never one of its rank or above. */
static const struct {
    const char *dir;
    int rank;
} FOLDERS[] = {
    {"base", 0}, {"kernels", 0}, {"io", 1}, {"layers", 2}, {"data", 2},
    {"rules", 3}, {"net", 4}, {"config", 5}, {"dist", 5}, {"train", 6},
};
enum { N_FOLDERS = sizeof FOLDERS / sizeof FOLDERS[0] };

static int rank_of(const char *dir, size_t n) {
    for (int i = 0; i < N_FOLDERS; i++)
        if (strlen(FOLDERS[i].dir) == n && !strncmp(FOLDERS[i].dir, dir, n)) return FOLDERS[i].rank;
    return -1;
}

/* Appends to report what file includes against the rules; returns how many. */
static int check_file(const char *path, const char *dir, int rank, char *report, size_t cap) {
    char *text = test_read_file(path);
    if (!text) return snprintf(report + strlen(report), cap - strlen(report), "%s: unreadable\n", path), 1;
    int bad = 0;
    for (const char *p = strstr(text, "#include \""); p; p = strstr(p + 1, "#include \"")) {
        const char *name = p + 10, *slash = strchr(name, '/'), *end = strchr(name, '"');
        if (!end) break;
        size_t len = (size_t)(end - name), used = strlen(report);
        if (!dir) { /* cli/: the public header and its own */
            if (!(len == 8 && !strncmp(name, "asymbp.h", 8)) && !(len == 5 && !strncmp(name, "cli.h", 5)))
                bad++, snprintf(report + used, cap - used, "%s: includes %.*s (the command sees only asymbp.h)\n", path, (int)len, name);
            continue;
        }
        if (!slash || slash > end) {
            if (!(len == 8 && !strncmp(name, "asymbp.h", 8)) || !strcmp(dir, "kernels"))
                bad++, snprintf(report + used, cap - used, "%s: includes %.*s, not named by its folder\n", path, (int)len, name);
            continue;
        }
        size_t dn = (size_t)(slash - name);
        int r = rank_of(name, dn);
        int own = dn == strlen(dir) && !strncmp(name, dir, dn);
        if (r < 0 || (!own && r >= rank) || (!own && !strcmp(dir, "kernels")))
            bad++, snprintf(report + used, cap - used, "%s: includes %.*s, %s\n", path, (int)len, name,
                            r < 0 ? "a folder not in the layout" : "not below its own folder");
    }
    free(text);
    return bad;
}

/* Every .c and .h file of the folder at path (dir: its name under src/, or
 * NULL for cli/). */
static int check_folder(const char *path, const char *dir, int rank, char *report, size_t cap) {
    int bad = 0;
    DIR *f = opendir(path);
    for (struct dirent *g; f && (g = readdir(f));) {
        size_t n = strlen(g->d_name);
        if (n < 3 || (strcmp(g->d_name + n - 2, ".c") && strcmp(g->d_name + n - 2, ".h"))) continue;
        char file[4400];
        snprintf(file, sizeof file, "%s/%s", path, g->d_name);
        bad += check_file(file, dir, rank, report, cap);
    }
    if (f) closedir(f);
    return bad;
}

/* Checks the tree at root (src/ and cli/); the report names each breach. */
static int check_tree(const char *root, char *report, size_t cap) {
    char path[4096];
    int bad = 0;
    report[0] = 0;
    snprintf(path, sizeof path, "%s/src", root);
    DIR *d = opendir(path);
    if (!d) return snprintf(report, cap, "%s: cannot open\n", path), 1;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        struct stat st;
        snprintf(path, sizeof path, "%s/src/%s", root, e->d_name);
        size_t used = strlen(report);
        if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
            bad++, snprintf(report + used, cap - used, "%s: a file directly in src/ (every source is in a folder)\n", path);
            continue;
        }
        int rank = rank_of(e->d_name, strlen(e->d_name));
        if (rank < 0) {
            bad++, snprintf(report + used, cap - used, "%s: a folder not in the layout\n", path);
            continue;
        }
        bad += check_folder(path, e->d_name, rank, report, cap);
    }
    closedir(d);
    snprintf(path, sizeof path, "%s/cli", root);
    return bad + check_folder(path, NULL, 0, report, cap);
}

TEST(layout_includes_point_down) {
    static char report[16384];
    int bad = check_tree(test_srcdir(), report, sizeof report);
    CHECK_MSG(bad == 0, "%d includes break the layout (docs/ENGINE.md):\n%s", bad, report);
}

/* The check itself: a small tree with one breach of each kind is caught. */
TEST(layout_check_finds_breaches) {
    static char report[16384];
    char root[512], path[700];
    snprintf(root, sizeof root, "%s/tree", test_tmpdir());
    const char *dirs[] = {"", "/src", "/src/layers", "/src/rules", "/src/kernels", "/src/misc", "/cli"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s%s", root, dirs[i]);
        mkdir(path, 0755);
    }
    snprintf(path, sizeof path, "%s/src/rules/ok.c", root);
    test_write_file(path, "#include \"rules/rules.h\"\n#include \"layers/layers.h\"\n#include <stdio.h>\n");
    CHECK(check_tree(root, report, sizeof report) == 1);   /* src/misc alone */
    CHECK(strstr(report, "misc: a folder not in the layout"));
    snprintf(path, sizeof path, "%s/src/misc", root);
    rmdir(path);
    CHECK_MSG(check_tree(root, report, sizeof report) == 0, "%s", report);
    snprintf(path, sizeof path, "%s/src/layers/up.c", root);
    test_write_file(path, "#include \"rules/rules.h\"\n");
    snprintf(path, sizeof path, "%s/src/kernels/k.c", root);
    test_write_file(path, "#include \"base/base.h\"\n");
    snprintf(path, sizeof path, "%s/src/flat.c", root);
    test_write_file(path, "\n");
    snprintf(path, sizeof path, "%s/cli/x.c", root);
    test_write_file(path, "#include \"cli.h\"\n#include \"layers/layers.h\"\n");
    CHECK(check_tree(root, report, sizeof report) == 4);
    CHECK(strstr(report, "up.c: includes rules/rules.h, not below its own folder"));
    CHECK(strstr(report, "k.c: includes base/base.h"));
    CHECK(strstr(report, "flat.c: a file directly in src/"));
    CHECK(strstr(report, "x.c: includes layers/layers.h (the command sees only asymbp.h)"));
}
