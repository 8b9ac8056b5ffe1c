/**
 * kube's `metav1.MicroTime` JSON form for audit events: RFC 3339 in UTC
 * with exactly six fractional digits.
 *
 * @module
 */

/**
 * kube's `metav1.MicroTime` JSON form: RFC 3339 in UTC with exactly six
 * fractional digits. `extraMicros` carries sub-millisecond precision that a
 * `Date` cannot hold.
 */
export function microTime(date: Date, extraMicros = 0): string {
  const iso = date.toISOString(); // 2026-01-02T03:04:05.678Z
  const micros = String(Math.max(0, Math.min(999, Math.floor(extraMicros))))
    .padStart(3, "0");
  return `${iso.slice(0, 23)}${micros}Z`;
}

let secondStart = NaN;
let secondPrefix = "";

function pad3(n: number): string {
  return n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`;
}

/**
 * {@linkcode microTime} of a fractional epoch-milliseconds value, without a
 * `Date` and its ISO formatting per call: the text up to the second is
 * formatted once per second (three timestamps per audited call made this
 * a fifth of the audit's own cost).
 */
export function microTimeAt(ms: number): string {
  const whole = Math.floor(ms);
  const second = whole - (whole % 1000);
  if (second !== secondStart) {
    secondStart = second;
    secondPrefix = new Date(second).toISOString().slice(0, 20);
  }
  const micros = Math.max(0, Math.min(999, Math.floor((ms - whole) * 1000)));
  return `${secondPrefix}${pad3(whole - second)}${pad3(micros)}Z`;
}
