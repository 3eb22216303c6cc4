import type { Clock } from "../../util/clock.ts";
import { TokenBucket } from "../../util/token-bucket.ts";

/**
 * A token bucket plus a concurrency cap: `acquire` resolves when a request may start and
 * returns the function that ends it. Waiters are served first come, first served.
 */
export class RequestLimiter {
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

  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      this.#waiters.push(() => {
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.#active--;
          this.#drain();
        });
      });
      this.#drain();
    });
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
