import { isDeepStrictEqual } from "node:util";

/**
 * Whether writing `next` would change nothing. Undefined fields are ignored on both sides
 * (they are absent after a JSON round trip), so a no-op reconcile makes no API write.
 */
export function statusEqual(current: unknown, next: unknown): boolean {
  const a = current ?? {};
  const b = next ?? {};
  // Every reconcile asks this; statuses are plain JSON data, compared as JSON sees them
  // without a round trip. Anything else (a Date, a class, NaN) takes the round trip.
  const fast = jsonEqual(a, b);
  return fast ?? isDeepStrictEqual(normalize(a), normalize(b));
}

function normalize(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v)) as unknown;
}

/**
 * Equality under JSON serialisation for plain data (undefined object fields absent, undefined
 * array items null); undefined when a value is not plain data and the round trip must decide.
 */
function jsonEqual(a: unknown, b: unknown): boolean | undefined {
  const ta = typeof a;
  const tb = typeof b;
  // NaN and the infinities serialise as null: the round trip decides.
  if ((ta === "number" && !Number.isFinite(a)) || (tb === "number" && !Number.isFinite(b))) return undefined;
  if (a === b) return true;
  if (a === null || b === null)
    return ta === "object" && tb === "object" ? false : jsonValue(a) && jsonValue(b) ? false : undefined;
  if (ta === "number" || tb === "number") return false;
  if (ta !== "object" || tb !== "object") {
    const plain = (t: string): boolean => t === "string" || t === "boolean";
    return plain(ta) && plain(tb) ? false : undefined;
  }
  if (Array.isArray(a)) {
    if (!Array.isArray(b)) return Object.getPrototypeOf(b) === Object.prototype ? false : undefined;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      const x: unknown = a[i];
      const y: unknown = b[i];
      const r = jsonEqual(x === undefined ? null : x, y === undefined ? null : y);
      if (r !== true) return r;
    }
    return true;
  }
  if (Array.isArray(b)) return Object.getPrototypeOf(a) === Object.prototype ? false : undefined;
  if (Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype)
    return undefined;
  const oa = a as Record<string, unknown>;
  const ob = b as Record<string, unknown>;
  let defined = 0;
  for (const k in oa) {
    const x = oa[k];
    if (x === undefined) continue;
    if (!jsonValue(x)) return undefined;
    defined++;
    const y = ob[k];
    if (y === undefined) return false;
    const r = jsonEqual(x, y);
    if (r !== true) return r;
  }
  for (const k in ob) {
    const y = ob[k];
    if (y === undefined) continue;
    if (!jsonValue(y)) return undefined;
    defined--;
  }
  return defined === 0;
}

/** A value JSON.stringify keeps as a field (functions and symbols it drops). */
const jsonValue = (v: unknown): boolean => typeof v !== "function" && typeof v !== "symbol";
