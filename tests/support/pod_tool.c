/*
 * /tool of the node tier's app image (tests/support/node_apps.ts): the few
 * things a test needs inside a Pod that has no shell. Static, so the image
 * needs no libc. Every mode prints errors on stderr and exits non-zero.
 *
 *   tool echo PORT             serve 127.0.0.1:PORT, echo every byte back
 *   tool cat                   stdin -> stdout until EOF (for attach -i)
 *   tool tick N MS PORT        wait for one connection on 127.0.0.1:PORT,
 *                              then print N lines "tick I EPOCH_MS", one
 *                              every MS ms, and exit 0 (for logs -f)
 *   tool poke PORT             connect to 127.0.0.1:PORT and close
 *   tool pf PORT CMD...        read stdin, run CMD (a port-forward; its
 *                              stdout goes to stderr), send
 *                              stdin through 127.0.0.1:PORT once it
 *                              listens, write what comes back to stdout,
 *                              then SIGINT CMD
 *   tool run-for MS CMD...     run CMD, stop it with SIGINT after MS ms;
 *                              exit 0 only if it was still running then
 *   tool on-term CMD...        wait for SIGTERM, then run CMD, exit with
 *                              its exit code
 *   tool write PATH            stdin -> PATH;  tool read PATH: PATH -> stdout
 *   tool sleep                 block until SIGTERM
 *   tool spy SUFFIX            for every /proc/PID: try PID's root/SUFFIX and
 *                              environ; print what was readable as lengths
 *                              and FNV-1a hashes, never the content
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "tool: %s: %s\n", what, strerror(errno));
  exit(2);
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void bye(int s) {
  (void)s;
  _exit(0);
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int listen_on(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = loopback(port);
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(s, 16) < 0) die("listen");
  return s;
}

static int dial(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = loopback(port);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
    close(s);
    return -1;
  }
  return s;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static char *read_all(int fd, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (n == cap) buf = realloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      free(buf);
      return NULL;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  *len = n;
  return buf;
}

static int copy(int in, int out) {
  char buf[65536];
  for (;;) {
    ssize_t r = read(in, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) return 0;
    if (write_all(out, buf, (size_t)r) < 0) return -1;
  }
}

static int echo_server(int port) {
  int s = listen_on(port);
  signal(SIGCHLD, SIG_IGN);
  printf("echo listening on %d\n", port);
  fflush(stdout);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    if (fork() == 0) {
      close(s);
      copy(c, c);
      _exit(0);
    }
    close(c);
  }
}

static int tick(int count, int ms, int port) {
  int s = listen_on(port), c = accept(s, NULL, NULL);
  if (c < 0) die("accept");
  close(c);
  close(s);
  for (int i = 1; i <= count; i++) {
    printf("tick %d %lld\n", i, now_ms());
    fflush(stdout);
    if (i < count) usleep((useconds_t)ms * 1000);
  }
  return 0;
}

/* Runs argv; its stdout goes to our stderr when `quiet` (stdout is data). */
static pid_t spawn(char **argv, int quiet) {
  pid_t pid = fork();
  if (pid == 0) {
    if (quiet) dup2(2, 1);
    execv(argv[0], argv);
    perror("tool: exec");
    _exit(127);
  }
  if (pid < 0) die("fork");
  return pid;
}

/* Sends `out` through 127.0.0.1:port and reads as many bytes back. */
static int exchange(int port, const char *out, size_t n) {
  int s = -1;
  for (long long end = now_ms() + 30000; s < 0 && now_ms() < end;) {
    s = dial(port);
    if (s < 0) usleep(100000);
  }
  if (s < 0) {
    fprintf(stderr, "tool: nothing listens on %d after 30 s\n", port);
    return 3;
  }
  fcntl(s, F_SETFL, O_NONBLOCK);
  size_t sent = 0, got = 0;
  char buf[65536];
  long long end = now_ms() + 60000;
  while (got < n && now_ms() < end) {
    struct pollfd p = {s, (short)(POLLIN | (sent < n ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    if (p.revents & POLLOUT) {
      ssize_t w = write(s, out + sent, n - sent);
      if (w > 0) sent += (size_t)w;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(s, buf, sizeof buf);
      if (r == 0) break;
      if (r > 0) {
        write_all(1, buf, (size_t)r);
        got += (size_t)r;
      }
    }
  }
  close(s);
  fprintf(stderr, "tool: sent %zu, received %zu of %zu bytes\n", sent, got, n);
  return got == n ? 0 : 4;
}

static int port_forward(int port, char **cmd) {
  size_t n;
  char *out = read_all(0, &n);
  if (!out) die("read stdin");
  pid_t child = spawn(cmd, 1);
  int rc = exchange(port, out, n);
  kill(child, SIGINT);
  waitpid(child, NULL, 0);
  return rc;
}

static int run_for(int ms, char **cmd) {
  pid_t child = spawn(cmd, 0);
  int status;
  for (long long end = now_ms() + ms; now_ms() < end;) {
    if (waitpid(child, &status, WNOHANG) == child) {
      fprintf(stderr, "tool: command ended before %d ms (status %d)\n", ms,
              status);
      return 5;
    }
    usleep(50000);
  }
  kill(child, SIGINT);
  waitpid(child, &status, 0);
  fprintf(stderr, "tool: stopped the command after %d ms\n", ms);
  return 0;
}

static volatile sig_atomic_t termed;
static void on_term_signal(int s) {
  (void)s;
  termed = 1;
}

static int on_term(char **cmd) {
  signal(SIGTERM, on_term_signal);
  printf("waiting for SIGTERM\n");
  fflush(stdout);
  while (!termed) usleep(20000);
  printf("SIGTERM at %lld, calling\n", now_ms());
  fflush(stdout);
  int status;
  waitpid(spawn(cmd, 0), &status, 0);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  printf("call exited %d at %lld\n", code, now_ms());
  return code;
}

static uint64_t fnv1a(const char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
  return h;
}

/* Prints "what=read len=N fnv=H" or "what=ERRNO_TEXT" for one file. */
static void try_read(const char *what, const char *path) {
  int fd = open(path, O_RDONLY);
  size_t n = 0;
  char *text = fd < 0 ? NULL : read_all(fd, &n);
  if (!text) {
    printf(" %s=%s", what, strerror(errno));
  } else {
    int jwt = memmem(text, n, "eyJ", 3) != NULL;
    printf(" %s=read len=%zu fnv=%016llx jwt=%d", what, n,
           (unsigned long long)fnv1a(text, n), jwt);
    free(text);
  }
  if (fd >= 0) close(fd);
}

static int spy(const char *suffix) {
  DIR *d = opendir("/proc");
  if (!d) die("opendir /proc");
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[4096], comm[64] = "?";
    snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (f) {
      if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = 0;
      fclose(f);
    }
    printf("pid=%s comm=%s", e->d_name, comm);
    snprintf(path, sizeof path, "/proc/%s/root%s", e->d_name, suffix);
    try_read("root", path);
    snprintf(path, sizeof path, "/proc/%s/environ", e->d_name);
    try_read("environ", path);
    printf("\n");
  }
  closedir(d);
  return 0;
}

static int file_mode(const char *mode, const char *path) {
  int out = strcmp(mode, "write") == 0;
  int fd = out ? open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)
               : open(path, O_RDONLY);
  if (fd < 0) die(path);
  if ((out ? copy(0, fd) : copy(fd, 1)) < 0) die(path);
  return close(fd) < 0 ? 2 : 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  const char *m = argc > 1 ? argv[1] : "";
  if (strcmp(m, "on-term") && strcmp(m, "sleep")) signal(SIGTERM, bye);
  if (!strcmp(m, "echo") && argc == 3) return echo_server(atoi(argv[2]));
  if (!strcmp(m, "cat")) return copy(0, 1) < 0 ? 2 : 0;
  if (!strcmp(m, "tick") && argc == 5)
    return tick(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
  if (!strcmp(m, "poke") && argc == 3) {
    int s = dial(atoi(argv[2]));
    if (s < 0) die("connect");
    return close(s);
  }
  if (!strcmp(m, "pf") && argc > 3) return port_forward(atoi(argv[2]), argv + 3);
  if (!strcmp(m, "run-for") && argc > 3) return run_for(atoi(argv[2]), argv + 3);
  if (!strcmp(m, "on-term") && argc > 2) return on_term(argv + 2);
  if ((!strcmp(m, "write") || !strcmp(m, "read")) && argc == 3)
    return file_mode(m, argv[2]);
  if (!strcmp(m, "sleep")) {
    signal(SIGTERM, bye);
    for (;;) pause();
  }
  if (!strcmp(m, "spy") && argc == 3) return spy(argv[2]);
  fprintf(stderr, "tool: unknown mode or arguments (see pod_tool.c)\n");
  return 64;
}
