import type { Clock } from "./clock.ts";

/**
 * A token bucket: `burst` tokens, refilled at `qps` per second. The one refill formula behind
 * both the work queue's overall retry limiter and the provider request limiter.
 */
export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;

  constructor(qps: number, burst: number, clock: Clock) {
    this.#qps = qps;
    this.#burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#last = clock.now();
  }

  /** Takes a token if one is there. */
  tryTake(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Takes a token now or in the future (the bucket goes into debt); returns how long to wait. */
  reserve(): number {
    this.#refill();
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#qps) * 1000);
  }

  /** Tokens there now (fractional; negative while the bucket is in debt). Takes none. */
  available(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Refill rate, tokens per second. */
  get qps(): number {
    return this.#qps;
  }

  /** Size of the bucket. */
  get burst(): number {
    return this.#burst;
  }

  /** Milliseconds until the next whole token (at least 1). */
  msUntilToken(): number {
    this.#refill();
    return Math.max(1, Math.ceil(((1 - this.#tokens) / this.#qps) * 1000));
  }

  #refill(): void {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#qps);
    this.#last = now;
  }
}
