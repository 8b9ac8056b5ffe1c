/**
 * PyYAML 6.0.3, the independent YAML 1.1 reader of the inject fuzz test.
 * Used from the system python3 when it has it, otherwise pip-installed once
 * into the cache dir (never skipped when missing).
 */
const VERSION = "6.0.3";

function cacheDir(): string {
  const base = Deno.env.get("MCA_CACHE_DIR") ??
    `${Deno.env.get("HOME") ?? "/tmp"}/.cache/mca`;
  return `${base}/pyyaml-${VERSION}`;
}

async function run(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command("python3", {
    args,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { ok: out.success, text: new TextDecoder().decode(out.stdout) };
}

/** The PYTHONPATH under which `import yaml` gives PyYAML (installing it). */
export async function pyyamlEnv(): Promise<Record<string, string>> {
  const probe = ["-c", "import yaml; print(yaml.__version__)"];
  if ((await run(probe)).ok) return {};
  const env = { PYTHONPATH: cacheDir() };
  if ((await run(probe, env)).ok) return env;
  const pip = await run([
    "-m",
    "pip",
    "install",
    "--quiet",
    "--target",
    cacheDir(),
    `pyyaml==${VERSION}`,
  ]);
  if (!pip.ok || !(await run(probe, env)).ok) {
    throw new Error(
      `cannot install PyYAML ${VERSION} into ${cacheDir()}: install python3-pip`,
    );
  }
  return env;
}

/** Case given to the oracle: a stream and what mca --inject made of it. */
export interface OracleCase {
  input: string;
  output: string;
  json: boolean;
}

/** Judges many cases in one python3 process; one verdict ("ok"...) each. */
export async function judge(cases: OracleCase[]): Promise<string[]> {
  const env = await pyyamlEnv();
  const script = new URL("./pyyaml_oracle.py", import.meta.url).pathname;
  const child = new Deno.Command("python3", {
    args: [script],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const body = cases.map((c) => JSON.stringify(c) + "\n").join("");
  const writer = child.stdin.getWriter();
  const written = writer.write(new TextEncoder().encode(body)).then(() =>
    writer.close()
  );
  const [out] = await Promise.all([child.output(), written]);
  const lines = new TextDecoder().decode(out.stdout).split("\n").slice(0, -1);
  if (lines.length !== cases.length) {
    throw new Error(
      `oracle answered ${lines.length} of ${cases.length}: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return lines;
}
