/** Time as a dependency, so backoff and timing logic can be tested without sleeping. */
export interface Clock {
  /** Wall-clock time in ms (what is written into objects; may jump or be skewed). */
  now(): number;
  /**
   * A monotonic time in ms for measuring durations (leases, grace periods): never jumps with
   * the wall clock, so a node whose clock is off cannot shorten or stretch a lease.
   */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): NodeJS.Timeout;
  clearTimeout(handle: NodeJS.Timeout): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => {
    clearTimeout(handle);
  },
};

/** Resolves after `ms` on the given clock, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const handle = clock.setTimeout(done, ms);
    function done(): void {
      clock.clearTimeout(handle);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
