import { TtlCache } from "../ttl-cache.ts";
import { abortable, cancelled } from "./api.ts";

/**
 * An account-wide list or catalogue, loaded by whichever call needs it first and shared by
 * the calls that come while it loads. The load's requests carry the signal of the call that
 * started it, so a cancelled reconcile leaves no request of its own running; a call that
 * joined it and is not cancelled itself loads again once instead of failing for another's
 * cancellation. Every caller stops waiting as soon as its own signal aborts.
 */
export class SharedLoad<T> {
  readonly #cache: TtlCache<T>;
  /** The signal of the call whose load is under way (the account's, never an object's). */
  #startedBy: AbortSignal | undefined;

  constructor(now: () => number = Date.now) {
    this.#cache = new TtlCache(now);
  }

  clear(): void {
    this.#cache.clear();
  }

  async get(
    ttlMs: number,
    load: (signal: AbortSignal | undefined) => Promise<T>,
    signal: AbortSignal | undefined,
    operation: string,
  ): Promise<T> {
    // Cancelled already: start no load (it would send a request for nobody).
    if (signal?.aborted === true) throw cancelled(operation, signal);
    let mine = false;
    const start = (): Promise<T> => {
      mine = true;
      this.#startedBy = signal;
      return load(signal);
    };
    const pending = this.#cache.get(ttlMs, start);
    const starter = mine ? undefined : this.#startedBy;
    try {
      return await abortable(pending, signal, operation);
    } catch (err) {
      if (mine || starter?.aborted !== true || aborted(signal)) throw err;
      return abortable(this.#cache.get(ttlMs, start), signal, operation);
    }
  }
}

/** Read through a call: an abort may come while the load is awaited (no stale narrowing). */
const aborted = (signal: AbortSignal | undefined): boolean => signal?.aborted === true;
