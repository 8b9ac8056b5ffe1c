/**
 * The glob syntax of MCA's configuration files (`*` any run, `?` one
 * character), shared so that routing and policy rules match a namespace
 * pattern the same way.
 *
 * @module
 */

/** Turns a glob (`*`, `?`) into an anchored regular expression. */
export function glob(text: string): RegExp {
  const body = text.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}
