/**
 * The policy in force: loaded at start (an invalid file stops the start
 * with `file:line`), reloaded when the mounted ConfigMap changes, a bad
 * version rejected with a log line and the last good one kept — the same
 * rules as the routing file.
 *
 * @module
 */

import { formatEvent, type LogSink } from "../observe/log.ts";
import type { PolicyVerdict, WorkloadIdentity } from "../observe/observer.ts";
import type { RequestInfo } from "../kube/request_info.ts";
import { parsePolicy, type Policy } from "./config.ts";
import { evaluator } from "./evaluate.ts";

/** What the pipeline's policy step calls. */
export interface CallPolicy {
  check(input: {
    info: RequestInfo;
    cluster: string;
    namespace?: string;
    identity?: WorkloadIdentity;
    /** The Pod's own namespace as the cluster sees it (mapped), for isolation. */
    ownNamespace?: string;
  }): PolicyVerdict;
}

function read(file: string): { text: string; stamp: string } {
  const text = Deno.readTextFileSync(file);
  const info = Deno.statSync(file);
  return {
    text,
    stamp: `${info.mtime?.getTime()}:${info.size}:${text.length}`,
  };
}

/** One policy version as the pipeline consults it (verdicts remembered). */
function callPolicy(policy: Policy): CallPolicy {
  const check = evaluator(policy);
  return {
    check: (input) =>
      check({
        ...input,
        ownNamespace: input.ownNamespace ?? input.identity?.namespace,
      }),
  };
}

/** A reloadable policy file. */
export class PolicySource {
  #file: string;
  #log: LogSink;
  #policy: Policy;
  #current: CallPolicy;
  #stamp: string;
  #timer: ReturnType<typeof setInterval> | undefined;

  private constructor(
    file: string,
    log: LogSink,
    first: { policy: Policy; stamp: string },
  ) {
    this.#file = file;
    this.#log = log;
    this.#policy = first.policy;
    this.#current = callPolicy(first.policy);
    this.#stamp = first.stamp;
  }

  /** Loads the file; throws `file:line: what` when it is invalid. */
  static open(file: string, log: LogSink): PolicySource {
    let loaded;
    try {
      loaded = read(file);
    } catch (error) {
      throw new Error(
        `cannot read the policy file ${file}: ${(error as Error).message}`,
      );
    }
    return new PolicySource(file, log, {
      policy: parsePolicy(loaded.text, file),
      stamp: loaded.stamp,
    });
  }

  /** The policy as the pipeline consults it. */
  get current(): CallPolicy {
    return this.#current;
  }

  /** Reloads when the file changed; resolves whether a new version is in force. */
  reload(): boolean {
    let loaded;
    try {
      loaded = read(this.#file);
    } catch {
      return false; // between two kubelet swaps: try again next time
    }
    if (loaded.stamp === this.#stamp) return false;
    this.#stamp = loaded.stamp;
    try {
      this.#policy = parsePolicy(loaded.text, this.#file);
      this.#current = callPolicy(this.#policy);
    } catch (error) {
      this.#log(
        formatEvent("error", "policy rejected; keeping the previous one", {
          error: (error as Error).message,
        }),
      );
      return false;
    }
    this.#log(
      formatEvent("info", "policy loaded", {
        rules: this.#policy.rules.length,
        mode: this.#policy.mode,
      }),
    );
    return true;
  }

  start(intervalMs = 2000): void {
    this.#timer = setInterval(() => this.reload(), intervalMs);
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }
}
