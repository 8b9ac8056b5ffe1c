/**
 * kube-apiserver's field selector syntax (k8s.io/apimachinery's
 * `fields.ParseSelector`), ported with its escaping rules, so that
 * `fieldSelector=metadata.name=X` on a list names the same object for MCA as
 * for the API server, and a selector Go rejects is rejected here too. Split
 * from `request_info.ts`, its only user.
 *
 * @module
 */

/** One `field=value`, `field==value` or `field!=value` term. */
export type FieldTerm = { field: string; equals: boolean; value: string };

/** fields.ParseSelector: sorted terms, or undefined where Go errors. */
export function parseFieldSelector(selector: string): FieldTerm[] | undefined {
  const terms: FieldTerm[] = [];
  for (const part of splitTerms(selector).sort()) {
    if (part === "") continue;
    const term = splitTerm(part);
    if (term === undefined) return undefined;
    terms.push(term);
  }
  return terms;
}

/** Splits on commas not escaped by a backslash. */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (inSlash) inSlash = false;
    else if (c === "\\") inSlash = true;
    else if (c === ",") {
      terms.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(selector.slice(start));
  return terms;
}

/** One term, split at the first `!=`, `==` or `=` (no escaping in the lhs). */
function splitTerm(term: string): FieldTerm | undefined {
  for (let i = 0; i < term.length; i++) {
    const op = ["!=", "==", "="].find((op) => term.startsWith(op, i));
    if (op === undefined) continue;
    const value = unescapeFieldValue(term.slice(i + op.length));
    if (value === undefined) return undefined;
    return { field: term.slice(0, i), equals: op !== "!=", value };
  }
  return undefined;
}

/** fields.UnescapeValue: `\\`, `\,`, `\=` only; bare `,` or `=` is an error. */
function unescapeFieldValue(s: string): string | undefined {
  let out = "";
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c !== "\\" && c !== "," && c !== "=") return undefined;
      out += c;
      inSlash = false;
    } else if (c === "\\") inSlash = true;
    else if (c === "," || c === "=") return undefined;
    else out += c;
  }
  return inSlash ? undefined : out;
}
