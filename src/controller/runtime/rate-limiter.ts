import { backoffDelay } from "../../util/backoff.ts";
import type { Clock } from "../../util/clock.ts";
import { TokenBucket } from "../../util/token-bucket.ts";

/** Decides how long an item waits before it is retried (client-go's workqueue.RateLimiter). */
export interface RateLimiter {
  /** Delay for this retry of `item`; counts the retry. */
  when(item: string): number;
  /** Stop tracking `item` (it succeeded). */
  forget(item: string): void;
  numRequeues(item: string): number;
}

/** Per-item exponential backoff: base, 2*base, 4*base … capped at max. */
export class ItemExponentialRateLimiter implements RateLimiter {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #failures = new Map<string, number>();

  constructor(baseMs: number, maxMs: number) {
    this.#baseMs = baseMs;
    this.#maxMs = maxMs;
  }

  when(item: string): number {
    const n = this.#failures.get(item) ?? 0;
    this.#failures.set(item, n + 1);
    // client-go's item limiter has no jitter: random fixed at 1 is the plain doubling.
    return backoffDelay(n, this.#baseMs, this.#maxMs, () => 1);
  }

  forget(item: string): void {
    this.#failures.delete(item);
  }

  numRequeues(item: string): number {
    return this.#failures.get(item) ?? 0;
  }
}

/**
 * An overall token bucket (qps, burst) shared by all items: each retry reserves a token,
 * possibly in the future, and waits until it is due.
 */
export class BucketRateLimiter implements RateLimiter {
  readonly #bucket: TokenBucket;

  constructor(qps: number, burst: number, clock: Clock) {
    this.#bucket = new TokenBucket(qps, burst, clock);
  }

  when(_item: string): number {
    return this.#bucket.reserve();
  }

  forget(_item: string): void {
    // The bucket is shared: nothing per item to forget.
  }

  numRequeues(_item: string): number {
    return 0;
  }
}

/** The longest delay of several limiters (every limiter counts the retry). */
export class MaxOfRateLimiter implements RateLimiter {
  readonly #limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.#limiters = limiters;
  }

  when(item: string): number {
    let max = 0;
    for (const l of this.#limiters) max = Math.max(max, l.when(item));
    return max;
  }

  forget(item: string): void {
    for (const l of this.#limiters) l.forget(item);
  }

  numRequeues(item: string): number {
    let max = 0;
    for (const l of this.#limiters) max = Math.max(max, l.numRequeues(item));
    return max;
  }
}

/** controller-runtime's default: 5 ms doubling to 1000 s per item, max'ed with a 10 qps / 100 burst bucket. */
export function defaultControllerRateLimiter(
  clock: Clock,
  opts: { qps?: number; burst?: number; baseMs?: number; maxMs?: number } = {},
): RateLimiter {
  return new MaxOfRateLimiter(
    new ItemExponentialRateLimiter(opts.baseMs ?? 5, opts.maxMs ?? 1_000_000),
    new BucketRateLimiter(opts.qps ?? 10, opts.burst ?? 100, clock),
  );
}
