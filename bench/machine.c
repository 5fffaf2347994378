/* machine.c: what the benchmarks print of the machine they ran on. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "machine.h"

void describe_machine(void) {
    char line[512], model[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f) fclose(f);
    double load = -1;
    f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &load) != 1) load = -1;
    if (f) fclose(f);
    printf("machine: %s, %ld cores, load average %.2f\n", model, sysconf(_SC_NPROCESSORS_ONLN), load);
    if (load > 0.5) printf("warning: the machine is busy (load %.2f before starting): these timings are distorted\n", load);
}
