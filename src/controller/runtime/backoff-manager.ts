import { backoffDelay } from "../../util/backoff.ts";
import { sleep, type Clock } from "../../util/clock.ts";

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** After this long without a failure, the next failure starts again from `initialMs`. */
  resetAfterMs: number;
}

/** client-go's reflector backoff: 800 ms doubling to 30 s, reset after 2 min healthy. */
export const REFLECTOR_BACKOFF: BackoffPolicy = {
  initialMs: 800,
  maxMs: 30_000,
  resetAfterMs: 120_000,
};

/**
 * Exponential backoff that forgets after a healthy period, like client-go's
 * exponentialBackoffManager. `next()` is called on each failure and returns the delay, drawn
 * by the operator's one backoff function (util/backoff.ts).
 */
export class BackoffManager {
  readonly #policy: BackoffPolicy;
  readonly #clock: Clock;
  readonly #random: () => number;
  #failures = 0;
  #lastFailure: number | undefined;

  constructor(policy: BackoffPolicy, clock: Clock, random: () => number = Math.random) {
    this.#policy = policy;
    this.#clock = clock;
    this.#random = random;
  }

  next(): number {
    const now = this.#clock.now();
    if (this.#lastFailure === undefined || now - this.#lastFailure > this.#policy.resetAfterMs) {
      this.#failures = 0;
    }
    this.#lastFailure = now;
    return backoffDelay(this.#failures++, this.#policy.initialMs, this.#policy.maxMs, this.#random);
  }

  /** The nominal (un-jittered) delay of the last failure; 0 before any. */
  get nominalMs(): number {
    if (this.#failures === 0) return 0;
    return backoffDelay(this.#failures - 1, this.#policy.initialMs, this.#policy.maxMs, () => 1);
  }
}

/** Resolves after `ms` on the given clock, or at once when `signal` aborts. */
export function clockSleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, signal, clock);
}
