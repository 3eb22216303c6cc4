import type { Metrics } from "../../observability/metrics.ts";
import type { Clock } from "../../util/clock.ts";
import type { RateLimiter } from "./rate-limiter.ts";
import { Fifo } from "../../util/fifo.ts";
import { MinHeap } from "../../util/min-heap.ts";

export interface WorkQueueOptions {
  name: string;
  clock: Clock;
  rateLimiter: RateLimiter;
  metrics?: Metrics | undefined;
}

/**
 * client-go's rate-limited delaying work queue, for string keys.
 * - dedupe: a key waiting in the queue is not added twice ("dirty" set);
 * - stingy: a key being processed is not handed to a second worker; an add during
 *   processing is remembered and the key is queued again when `done` is called;
 * - delays: `addAfter` keeps the earliest due time per key; `addRateLimited` asks the
 *   rate limiter for the delay; `forget` resets the key's backoff. As client-go's delaying
 *   queue, the delayed keys wait in a heap under one timer, not a timer each: a fleet of
 *   100,000 objects holds a requeue per object, and a timer each was as many timer objects
 *   (and a Prometheus scrape walking them all for the active-resources gauge).
 */
export class WorkQueue {
  readonly name: string;
  readonly #clock: Clock;
  readonly #limiter: RateLimiter;
  readonly #metrics: Metrics | undefined;
  readonly #queue = new Fifo<string>();
  readonly #dirty = new Set<string>();
  readonly #processing = new Map<string, number>();
  readonly #addedAt = new Map<string, number>();
  /** Due time (monotonic ms) of each delayed key; the heap may hold older, stale times too. */
  readonly #waiting = new Map<string, number>();
  readonly #due = new MinHeap<string>();
  /** The one timer, set for the earliest due time (`#timerAt`). */
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #getters: ((key: string | undefined) => void)[] = [];
  #shuttingDown = false;

  constructor(opts: WorkQueueOptions) {
    this.name = opts.name;
    this.#clock = opts.clock;
    this.#limiter = opts.rateLimiter;
    this.#metrics = opts.metrics;
    const labels = { name: this.name };
    opts.metrics?.queueDepth.sample(labels, () => this.#queue.length);
    opts.metrics?.longestRunningProcessor.sample(labels, () => this.#longestSeconds());
  }

  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#metrics?.queueAdds.inc({ name: this.name });
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    this.#push(key);
  }

  /** Adds `key` after `ms`; an earlier pending due time for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const now = this.#clock.monotonic();
    const at = now + ms;
    const pending = this.#waiting.get(key);
    if (pending !== undefined && pending <= at) return;
    this.#waiting.set(key, at);
    this.#due.push(at, key);
    if (at < this.#timerAt) this.#arm(at, now);
  }

  #arm(at: number, now: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(() => {
      this.#fire();
    }, at - now);
  }

  /** Queues every key now due (skipping times since replaced by earlier ones) and re-arms. */
  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.monotonic();
    for (;;) {
      const key = this.#due.peekValue();
      const at = this.#due.peekPriority();
      if (key === undefined || at === undefined) return;
      if (this.#waiting.get(key) !== at) {
        this.#due.pop();
        continue;
      }
      if (at > now) {
        this.#arm(at, now);
        return;
      }
      this.#due.pop();
      this.#waiting.delete(key);
      this.add(key);
    }
  }

  /** Re-adds `key` after its rate-limited backoff. */
  addRateLimited(key: string): void {
    this.#metrics?.queueRetries.inc({ name: this.name });
    this.addAfter(key, this.#limiter.when(key));
  }

  forget(key: string): void {
    this.#limiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.#limiter.numRequeues(key);
  }

  /** Next key to process, or undefined once the queue is shut down. Call `done` after. */
  get(): Promise<string | undefined> {
    const key = this.#take();
    if (key !== undefined || this.#shuttingDown) return Promise.resolve(key);
    return new Promise((resolve) => this.#getters.push(resolve));
  }

  done(key: string): void {
    const started = this.#processing.get(key);
    if (started !== undefined) {
      this.#metrics?.workDuration.observe({ name: this.name }, (this.#clock.now() - started) / 1000);
    }
    this.#processing.delete(key);
    if (this.#dirty.has(key) && !this.#shuttingDown) this.#push(key);
  }

  /** Keys waiting to be handed out (not counting delayed or in-process ones). */
  len(): number {
    return this.#queue.length;
  }

  /** Keys waiting for a delayed add. */
  delayedLen(): number {
    return this.#waiting.size;
  }

  isProcessing(key: string): boolean {
    return this.#processing.has(key);
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Stops handing out work: waiting `get`s resolve undefined; in-process keys may still call `done`. */
  shutDown(): void {
    this.#shuttingDown = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#waiting.clear();
    this.#due.clear();
    const getters = this.#getters;
    this.#getters = [];
    for (const g of getters) g(undefined);
  }

  #push(key: string): void {
    this.#addedAt.set(key, this.#clock.now());
    const getter = this.#getters.shift();
    if (getter) {
      this.#queue.push(key);
      getter(this.#take());
      return;
    }
    this.#queue.push(key);
  }

  #take(): string | undefined {
    if (this.#shuttingDown) return undefined;
    const key = this.#queue.shift();
    if (key === undefined) return undefined;
    const now = this.#clock.now();
    const added = this.#addedAt.get(key);
    this.#addedAt.delete(key);
    if (added !== undefined) this.#metrics?.queueDuration.observe({ name: this.name }, (now - added) / 1000);
    this.#processing.set(key, now);
    this.#dirty.delete(key);
    return key;
  }

  /** How long the oldest key in process has been, in seconds (read at scrape time). */
  #longestSeconds(): number {
    const now = this.#clock.now();
    let oldest = now;
    for (const started of this.#processing.values()) oldest = Math.min(oldest, started);
    return (now - oldest) / 1000;
  }
}
