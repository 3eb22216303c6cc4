import { isDeepStrictEqual } from "node:util";

/**
 * Whether writing `next` would change nothing. Undefined fields are ignored on both sides
 * (they are absent after a JSON round trip), so a no-op reconcile makes no API write.
 */
export function statusEqual(current: unknown, next: unknown): boolean {
  return isDeepStrictEqual(normalize(current ?? {}), normalize(next ?? {}));
}

function normalize(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v)) as unknown;
}
