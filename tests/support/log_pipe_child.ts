/**
 * A child for `tests/observe/log_test.ts`: logs a line through the batched
 * stdout sink, waits until its parent has closed the pipe (a line on stdin),
 * logs on, and says on stderr that it is still running.
 *
 * @module
 */

import { batchedStdoutSink } from "../../lib/observe/log.ts";

const sink = batchedStdoutSink({ intervalMs: 1 });
sink.log("first");
sink.flush();
await Deno.stdin.read(new Uint8Array(16));
for (let i = 0; i < 3; i++) {
  sink.log(`after the close ${i}`);
  sink.flush();
}
Deno.stderr.writeSync(new TextEncoder().encode("still running\n"));
