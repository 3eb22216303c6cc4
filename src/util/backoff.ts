/**
 * The one exponential backoff of the operator (HTTP retries, the reflector, the work queue):
 * base·2^attempt capped at `maxMs`, with "equal jitter" — drawn from [exp/2, exp] so retries
 * of many clients spread out yet never wait less than half the nominal delay. `random` is
 * injectable so tests can pin it; `() => 1` gives the plain un-jittered doubling.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** Parses Retry-After (seconds or HTTP date) into milliseconds from now. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
