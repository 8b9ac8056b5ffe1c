/**
 * The tools the benchmark drives (h2load, nginx, valgrind's callgrind and
 * callgrind_control), installed from Debian when
 * missing, and what the report says about the machine.
 *
 * @module
 */

import { cpus, loadavg, totalmem } from "node:os";
import { runCommand } from "./procs.ts";

/** Debian package providing each command. */
const PACKAGES: Record<string, string> = {
  h2load: "nghttp2-client",
  nginx: "nginx",
  valgrind: "valgrind",
  callgrind_control: "valgrind",
};

async function has(cmd: string): Promise<boolean> {
  const r = await runCommand("bash", ["-c", `command -v ${cmd}`], 5_000);
  return r.code === 0;
}

/**
 * Makes sure h2load, nginx and valgrind exist; installs the Debian packages (as root,
 * with apt-get) when they do not. Throws naming the package otherwise.
 */
export async function ensureTools(log: (line: string) => void): Promise<void> {
  const missing: string[] = [];
  for (const [cmd, pkg] of Object.entries(PACKAGES)) {
    if (!await has(cmd) && !missing.includes(pkg)) missing.push(pkg);
  }
  if (missing.length === 0) return;
  const isRoot = Deno.uid() === 0;
  if (!isRoot || !await has("apt-get")) {
    throw new Error(
      `missing Debian package(s): ${missing.join(", ")} — install them with ` +
        `"apt-get install -y ${missing.join(" ")}" (needs root) and re-run`,
    );
  }
  log(`installing ${missing.join(", ")} with apt-get ...`);
  const update = await runCommand("apt-get", ["update", "-qq"], 300_000);
  if (update.code !== 0) {
    throw new Error(`apt-get update failed: ${update.stderr.trim()}`);
  }
  const install = await runCommand("apt-get", [
    "install",
    "-y",
    "-qq",
    "--no-install-recommends",
    ...missing,
  ], 600_000);
  for (const [cmd, pkg] of Object.entries(PACKAGES)) {
    if (!await has(cmd)) {
      throw new Error(
        `${cmd} still missing after "apt-get install ${pkg}": ${
          install.stderr.trim().split("\n").slice(-3).join(" | ")
        }`,
      );
    }
  }
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const r = await runCommand(cmd, args, 20_000);
    return (r.stdout + r.stderr).trim().split("\n")[0] ?? "";
  } catch (error) {
    return `unavailable (${(error as Error).message})`;
  }
}

/** Machine facts and tool versions for the report. */
export interface MachineInfo {
  date: string;
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  loadavgStart: number[];
  loadavgEnd?: number[];
  kernel: string;
  versions: Record<string, string>;
}

/** Collects machine facts and versions (kubectl/apiserver from the paths). */
export async function machineInfo(
  bins: { kubectl?: string; kubeApiserver?: string },
): Promise<MachineInfo> {
  const versions: Record<string, string> = {
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8})`,
    h2load: await firstLine("h2load", ["--version"]),
    nginx: await firstLine("nginx", ["-v"]),
  };
  if (bins.kubectl) {
    const r = await runCommand(bins.kubectl, [
      "version",
      "--client",
      "-o",
      "json",
    ], 20_000);
    try {
      versions.kubectl = JSON.parse(r.stdout).clientVersion.gitVersion;
    } catch {
      versions.kubectl = r.stdout.trim() || r.stderr.trim();
    }
    versions.kubectlPath = bins.kubectl;
  }
  if (bins.kubeApiserver) {
    versions["kube-apiserver"] = await firstLine(bins.kubeApiserver, [
      "--version",
    ]);
  }
  return {
    date: new Date().toISOString(),
    cores: navigator.hardwareConcurrency,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadavgStart: loadavg().map((x) => Math.round(x * 100) / 100),
    kernel: Deno.osRelease(),
    versions,
  };
}

/** Current 1/5/15-minute load averages. */
export function currentLoad(): number[] {
  return loadavg().map((x) => Math.round(x * 100) / 100);
}
