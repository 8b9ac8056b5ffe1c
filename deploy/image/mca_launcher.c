/*
 * /usr/local/bin/mca of the test image (deno task image): execs
 * `deno run` on the bundled checkout, so `exec /usr/local/bin/mca --probe`
 * works without a shell. The release image (Dockerfile) has the compiled
 * binary at this path instead. The V8 flag is the one the release binary is
 * compiled with (design/decisions/0023-v8-heap-flags.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  char *fixed[] = {"/usr/local/bin/deno", "run", "--allow-all", "--cached-only",
                   "--no-prompt", "--v8-flags=--max-semi-space-size=8",
                   "--config=/app/deno.json", "--lock=/app/deno.lock",
                   "/app/main.ts"};
  int n = sizeof fixed / sizeof fixed[0];
  char **args = calloc(n + argc, sizeof *args);
  if (!args) return 70;
  for (int i = 0; i < n; i++) args[i] = fixed[i];
  for (int i = 1; i < argc; i++) args[n + i - 1] = argv[i];
  setenv("DENO_DIR", "/deno-dir", 0);
  setenv("DENO_NO_UPDATE_CHECK", "1", 1);
  setenv("DENO_NO_PROMPT", "1", 1);
  execv(args[0], args);
  perror("mca launcher: exec /usr/local/bin/deno");
  return 127;
}
