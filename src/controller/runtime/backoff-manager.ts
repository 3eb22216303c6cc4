import type { Clock } from "../../util/clock.ts";

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** After this long without a failure, the next failure starts again from `initialMs`. */
  resetAfterMs: number;
  /** 0..1: the delay is drawn from [d*(1-jitter/2), d*(1+jitter/2)] around the nominal d, capped at maxMs. */
  jitter: number;
}

/** client-go's reflector backoff: 800 ms doubling to 30 s, reset after 2 min healthy. */
export const REFLECTOR_BACKOFF: BackoffPolicy = {
  initialMs: 800,
  maxMs: 30_000,
  resetAfterMs: 120_000,
  jitter: 1,
};

/**
 * Exponential backoff that forgets after a healthy period, like client-go's
 * exponentialBackoffManager. `next()` is called on each failure and returns the delay.
 */
export class BackoffManager {
  readonly #policy: BackoffPolicy;
  readonly #clock: Clock;
  readonly #random: () => number;
  #nominal = 0;
  #lastFailure: number | undefined;

  constructor(policy: BackoffPolicy, clock: Clock, random: () => number = Math.random) {
    this.#policy = policy;
    this.#clock = clock;
    this.#random = random;
  }

  next(): number {
    const now = this.#clock.now();
    if (this.#lastFailure === undefined || now - this.#lastFailure > this.#policy.resetAfterMs) {
      this.#nominal = this.#policy.initialMs;
    } else {
      this.#nominal = Math.min(this.#policy.maxMs, this.#nominal * 2);
    }
    this.#lastFailure = now;
    const spread = this.#nominal * this.#policy.jitter;
    const delay = this.#nominal - spread / 2 + this.#random() * spread;
    return Math.round(Math.min(this.#policy.maxMs, Math.max(0, delay)));
  }

  /** The nominal (un-jittered) delay of the last failure; 0 before any. */
  get nominalMs(): number {
    return this.#nominal;
  }
}

/** Resolves after `ms` on the given clock, or at once when `signal` aborts. */
export function clockSleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
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
