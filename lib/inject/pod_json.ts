/**
 * Reading a Pod's JSON: the object type, list fields checked before use, and
 * the one error the injector raises for input it cannot inject.
 *
 * Kept apart so that every inject module reports bad input the same way (one
 * line saying what to do) instead of crashing on a non-list field.
 *
 * @module
 */

/** A JSON object as found in a Kubernetes manifest. */
export type JsonObject = { [key: string]: unknown };

/** Raised for input that cannot be injected; the message says what to do. */
export class InjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InjectError";
  }
}

/**
 * A list field of objects (absent reads as empty), so the injector can walk
 * it; anything else is refused with the field's name.
 */
export function listOf(value: unknown, what: string): JsonObject[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    throw new InjectError(`${what} must be a list, got ${typeof value}`);
  }
  for (const item of value) {
    if (item === null || typeof item !== "object" || Array.isArray(item)) {
      throw new InjectError(`${what} must be a list of objects`);
    }
  }
  return value as JsonObject[];
}
