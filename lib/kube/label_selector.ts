/**
 * Kubernetes label selectors: parsing and matching.
 *
 * Routing rules select calls by labels (Phase 2): the selector of a LIST or
 * WATCH request, or the labels of the object a create/update carries. The
 * syntax is Kubernetes' own (`a=b`, `a==b`, `a!=b`, `a in (x,y)`,
 * `a notin (x)`, `a`, `!a`), so rules read like `kubectl -l` arguments.
 *
 * @module
 */

/** One requirement of a selector. */
export interface Requirement {
  key: string;
  operator: "=" | "!=" | "in" | "notin" | "exists" | "!";
  values: string[];
}

/** A parsed selector: every requirement must hold (logical AND). */
export type Selector = Requirement[];

const KEY =
  /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** Raised for a selector that does not parse; the message says where. */
export class SelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SelectorError";
  }
}

/** Splits on commas that are not inside parentheses. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      terms.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  terms.push(current);
  return terms.map((t) => t.trim());
}

function checkKey(key: string, text: string): string {
  if (!KEY.test(key) || key.length > 316) {
    throw new SelectorError(
      `invalid label key ${JSON.stringify(key)} in selector ${
        JSON.stringify(text)
      }`,
    );
  }
  return key;
}

function checkValue(value: string, text: string): string {
  if (!VALUE.test(value) || value.length > 63) {
    throw new SelectorError(
      `invalid label value ${JSON.stringify(value)} in selector ${
        JSON.stringify(text)
      }`,
    );
  }
  return value;
}

function parseTerm(term: string, text: string): Requirement {
  const set = term.match(/^(\S+)\s+(in|notin)\s*\((.*)\)$/);
  if (set) {
    const values = set[3].split(",").map((v) => v.trim());
    if (values.length === 1 && values[0] === "") {
      throw new SelectorError(
        `empty value list in selector ${JSON.stringify(text)}`,
      );
    }
    return {
      key: checkKey(set[1], text),
      operator: set[2] as "in" | "notin",
      values: values.map((v) => checkValue(v, text)).sort(),
    };
  }
  const eq = term.match(/^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/);
  if (eq) {
    return {
      key: checkKey(eq[1], text),
      operator: eq[2] === "!=" ? "!=" : "=",
      values: [checkValue(eq[3], text)],
    };
  }
  if (term.startsWith("!")) {
    return {
      key: checkKey(term.slice(1).trim(), text),
      operator: "!",
      values: [],
    };
  }
  if (/^\S+$/.test(term)) {
    return { key: checkKey(term, text), operator: "exists", values: [] };
  }
  throw new SelectorError(
    `cannot parse ${JSON.stringify(term)} in selector ${JSON.stringify(text)}`,
  );
}

/** Parses a selector; the empty string selects everything. */
export function parseSelector(text: string): Selector {
  if (text.trim() === "") return [];
  return splitTerms(text).map((term) => {
    if (term === "") {
      throw new SelectorError(`empty term in selector ${JSON.stringify(text)}`);
    }
    return parseTerm(term, text);
  });
}

/** True when a set of labels satisfies every requirement. */
export function matchesLabels(
  selector: Selector,
  labels: Record<string, string>,
): boolean {
  return selector.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    const value = labels[r.key];
    switch (r.operator) {
      case "=":
        return has && value === r.values[0];
      case "!=":
        return !has || value !== r.values[0];
      case "in":
        return has && r.values.includes(value);
      case "notin":
        return !has || !r.values.includes(value);
      case "exists":
        return has;
      case "!":
        return !has;
    }
  });
}

function sameRequirement(a: Requirement, b: Requirement): boolean {
  return a.key === b.key && a.operator === b.operator &&
    a.values.join(",") === b.values.join(",");
}

/**
 * True when every object a request selector can return also satisfies the
 * rule selector: each of the rule's requirements appears in the request's,
 * or the request pins the key (`=` or `in`) to values the rule accepts.
 */
export function selectorImplies(request: Selector, rule: Selector): boolean {
  return rule.every((want) =>
    request.some((have) => {
      if (sameRequirement(have, want)) return true;
      if (have.key !== want.key) return false;
      // Values the request allows for this key; every one must satisfy the rule.
      const allowed = have.operator === "=" || have.operator === "in"
        ? have.values
        : undefined;
      return allowed !== undefined &&
        allowed.every((v) => matchesLabels([want], { [have.key]: v }));
    })
  );
}
