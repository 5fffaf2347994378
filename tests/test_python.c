/* test_python.c: the Python package (python/asymbp, cffi on the shared
 * library) run by tests/python/test_package.py with test_python(): records,
 * errors, weights and logits against the command's own files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

TEST(python_package) {
    const char *bin = getenv("ASYM_BIN") ? getenv("ASYM_BIN") : "build/asymbp";
    static char out[16384];
    if (test_sh(out, sizeof out, "'%s' -c 'import cffi, numpy' 2>&1", test_python())) {
        TEST_NO_ORACLE("%s lacks cffi or numpy (python3-cffi, python3-numpy): %s", test_python(), out);
        return;
    }
    /* the shared library beside the command (made here when missing) */
    int rc = test_sh(out, sizeof out, "cd %s && b=$(basename $(dirname %s)) && make -s BUILD=$b $b/libasymbp.so.%s 2>&1", test_srcdir(), bin, ASYM_VERSION);
    if (rc) printf("%s", out);
    CHECK(rc == 0);
    rc = test_sh(out, sizeof out, "cd %s && ASYMBP_LIB=$(dirname %s)/libasymbp.so.%s PYTHONPATH=python '%s' tests/python/test_package.py %s 2>&1",
                 test_srcdir(), bin, ASYM_VERSION, test_python(), test_tmpdir());
    printf("%s", out);
    CHECK(rc == 0 && strstr(out, "every check passed"));
}
