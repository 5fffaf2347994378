/* machine.h: what the benchmarks print of the machine they ran on. */
#ifndef ASYM_BENCH_MACHINE_H
#define ASYM_BENCH_MACHINE_H

/* The processor, its core count and the load average before starting,
 * with a warning when the machine is busy: timings taken beside other busy
 * processes are not comparable (OpenMP threads wait at barriers for
 * descheduled ones). */
void describe_machine(void);

#endif
