import type { Clock } from "../../util/clock.ts";

/**
 * A token bucket plus a concurrency cap: `acquire` resolves when a request may start and
 * returns the function that ends it. Waiters are served first come, first served.
 */
export class RequestLimiter {
  readonly #qps: number;
  readonly #burst: number;
  readonly #maxConcurrent: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;
  #active = 0;
  readonly #waiters: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: { qps: number; burst: number; maxConcurrent: number; clock: Clock }) {
    this.#qps = opts.qps;
    this.#burst = opts.burst;
    this.#maxConcurrent = opts.maxConcurrent;
    this.#clock = opts.clock;
    this.#tokens = opts.burst;
    this.#last = opts.clock.now();
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

  #refill(): void {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#qps);
    this.#last = now;
  }

  #drain(): void {
    this.#refill();
    while (this.#waiters.length > 0 && this.#active < this.#maxConcurrent && this.#tokens >= 1) {
      this.#tokens -= 1;
      this.#active++;
      this.#waiters.shift()?.();
    }
    if (this.#waiters.length > 0 && this.#active < this.#maxConcurrent && this.#timer === undefined) {
      const wait = Math.max(1, Math.ceil(((1 - this.#tokens) / this.#qps) * 1000));
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        this.#drain();
      }, wait);
    }
  }
}
