/*
 * The same question as idle_gap_cpu.ts without Deno: does a fixed task cost
 * more CPU time when the process sleeps between runs? The task walks a
 * working set (default 2 MiB, about what one proxied call touches in V8's
 * heap, code and TLS state) and does some arithmetic; CPU time is the
 * process's (getrusage). Build and run:
 *
 *   cc -O2 -o tmp/idle_gap_cpu bench/repro/idle_gap_cpu.c
 *   tmp/idle_gap_cpu [runs=400] [gap_us=5000] [working_set_KiB=2048]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static unsigned char *set;
static size_t set_len;

static unsigned long task(void) {
  unsigned long acc = 0;
  for (int pass = 0; pass < 4; pass++)
    for (size_t i = 0; i < set_len; i += 64) acc += set[i] * (i | 1);
  return acc;
}

static double cpu_us(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec +
         u.ru_stime.tv_usec;
}

static double measure(int runs, long gap_us, volatile unsigned long *sink) {
  struct timespec gap = {gap_us / 1000000, (gap_us % 1000000) * 1000};
  double before = cpu_us();
  for (int i = 0; i < runs; i++) {
    *sink += task();
    if (gap_us > 0) nanosleep(&gap, NULL);
  }
  return (cpu_us() - before) / runs;
}

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : 400;
  long gap_us = argc > 2 ? atol(argv[2]) : 5000;
  set_len = (size_t)(argc > 3 ? atol(argv[3]) : 2048) * 1024;
  set = malloc(set_len);
  for (size_t i = 0; i < set_len; i++) set[i] = (unsigned char)i;
  volatile unsigned long sink = 0;
  measure(50, 0, &sink); /* warm */
  for (int round = 1; round <= 3; round++) {
    double busy = measure(runs, 0, &sink);
    double gapped = measure(runs, gap_us, &sink);
    printf("round %d: back to back %.0f us/task, %ld us apart %.0f us/task "
           "(x%.2f)\n", round, busy, gap_us, gapped, gapped / busy);
  }
  return 0;
}
