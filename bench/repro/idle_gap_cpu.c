/*
 * The same question as idle_gap_cpu.ts without Deno: does a fixed task cost
 * more CPU time when the process sleeps between runs? The task walks a
 * working set (default 2 MiB; a call through Deno likely touches more: V8
 * heap, code, TLS state) and does some arithmetic; CPU time is the
 * process's (getrusage), and separately the thread's CPU time inside the
 * task alone (clock_gettime), also with the gap spent spinning instead of
 * sleeping: that tells the cost of waking up from the cost of running the
 * same work on a core other processes used meanwhile. Build and run:
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

static double thread_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void spin(long us) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do clock_gettime(CLOCK_MONOTONIC, &b);
  while ((b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3 < us);
}

/* Process CPU per run; *in_task gets the thread CPU inside task() alone. */
static double measure(int runs, long gap_us, int spinning, double *in_task,
                      volatile unsigned long *sink) {
  struct timespec gap = {gap_us / 1000000, (gap_us % 1000000) * 1000};
  double before = cpu_us(), inside = 0;
  for (int i = 0; i < runs; i++) {
    double t0 = thread_us();
    *sink += task();
    inside += thread_us() - t0;
    if (gap_us > 0 && spinning) spin(gap_us);
    else if (gap_us > 0) nanosleep(&gap, NULL);
  }
  *in_task = inside / runs;
  return (cpu_us() - before) / runs;
}

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : 400;
  long gap_us = argc > 2 ? atol(argv[2]) : 5000;
  set_len = (size_t)(argc > 3 ? atol(argv[3]) : 2048) * 1024;
  set = malloc(set_len);
  for (size_t i = 0; i < set_len; i++) set[i] = (unsigned char)i;
  volatile unsigned long sink = 0;
  double in_busy, in_sleep, in_spin;
  measure(50, 0, 0, &in_busy, &sink); /* warm */
  for (int round = 1; round <= 3; round++) {
    double busy = measure(runs, 0, 0, &in_busy, &sink);
    double gapped = measure(runs, gap_us, 0, &in_sleep, &sink);
    measure(runs / 4, gap_us, 1, &in_spin, &sink);
    printf("round %d: back to back %.0f us/task, %ld us apart (sleeping) "
           "%.0f us/task (x%.2f); inside the task: %.0f back to back, %.0f "
           "after a sleep, %.0f after spinning\n", round, busy, gap_us,
           gapped, gapped / busy, in_busy, in_sleep, in_spin);
  }
  return 0;
}
