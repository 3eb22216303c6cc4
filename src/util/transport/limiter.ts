import type { Clock } from "../clock.ts";
import { TokenBucket } from "../token-bucket.ts";
import { abortError, QueueWaitRefusedError } from "./errors.ts";
import type { Limiter } from "./layers.ts";

/**
 * A token bucket plus a concurrency cap: `acquire` resolves when a request may start and
 * returns the function that ends it. Waiters are served first come, first served; one whose
 * signal aborts leaves the queue at once, having taken neither a token nor a slot. With
 * `maxConcurrent: Infinity` it is a plain rate limit (the kube client's).
 */
export class RequestLimiter implements Limiter {
  readonly #bucket: TokenBucket;
  readonly #maxConcurrent: number;
  readonly #clock: Clock;
  #active = 0;
  readonly #waiters: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: { qps: number; burst: number; maxConcurrent: number; clock: Clock }) {
    this.#bucket = new TokenBucket(opts.qps, opts.burst, opts.clock);
    this.#maxConcurrent = opts.maxConcurrent;
    this.#clock = opts.clock;
  }

  /** Requests waiting for a token or a slot. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Requests started and not yet ended. */
  get active(): number {
    return this.#active;
  }

  /** Refill rate, tokens per second. */
  get qps(): number {
    return this.#bucket.qps;
  }

  /** Bucket size: the most tokens ever there at once. */
  get burst(): number {
    return this.#bucket.burst;
  }

  /** Tokens in the bucket now, before the queued requests take theirs. Takes none. */
  available(): number {
    return this.#bucket.available();
  }

  /**
   * How long a request asked for now would wait (ms) behind the ones already queued:
   * 0 when it would start at once, Infinity when every slot is busy (a slot frees when a
   * request ends, which no clock says). Takes nothing.
   */
  estimateWaitMs(): number {
    if (this.#active + this.#waiters.length >= this.#maxConcurrent) return Infinity;
    const short = this.#waiters.length + 1 - this.#bucket.available();
    return short <= 0 ? 0 : Math.ceil((short / this.#bucket.qps) * 1000);
  }

  /**
   * `maxWaitMs`: refuse at once, with QueueWaitRefusedError (taking neither token nor slot),
   * rather than wait longer than this; the caller requeues its work for when the budget is
   * there instead of holding a worker in this queue.
   */
  acquire(signal?: AbortSignal, maxWaitMs?: number): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (maxWaitMs !== undefined) {
      const wait = this.estimateWaitMs();
      if (wait > maxWaitMs) return Promise.reject(new QueueWaitRefusedError(wait));
    }
    // Nobody waiting and a slot and a token free: start now, without the abort listener a
    // waiter needs (adding and removing it was most of the limiter's cost per request).
    if (this.#waiters.length === 0 && this.#active < this.#maxConcurrent && this.#bucket.tryTake()) {
      this.#active++;
      return Promise.resolve(this.#release());
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.#waiters.indexOf(serve);
        if (at < 0) return;
        this.#waiters.splice(at, 1);
        reject(abortError(signal as AbortSignal));
      };
      const serve = (): void => {
        signal?.removeEventListener("abort", onAbort);
        resolve(this.#release());
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(serve);
      this.#drain();
    });
  }

  /** The function that ends a started request (once; later calls do nothing). */
  #release(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active--;
      this.#drain();
    };
  }

  #drain(): void {
    while (this.#waiters.length > 0 && this.#active < this.#maxConcurrent && this.#bucket.tryTake()) {
      this.#active++;
      this.#waiters.shift()?.();
    }
    if (this.#waiters.length > 0 && this.#active < this.#maxConcurrent && this.#timer === undefined) {
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        this.#drain();
      }, this.#bucket.msUntilToken());
    }
  }
}
