import { TransientError } from "../errors.ts";

/**
 * What a call whose signal was aborted rejects with. A TransientError, as the HTTP client's own
 * aborted request is: the reconciler knows the reconcile was cancelled from its own signal.
 */
export function cancelled(operation: string, signal: AbortSignal): TransientError {
  return new TransientError(`zomro ${operation}: cancelled`, {
    provider: "zomro",
    operation,
    cause: signal.reason,
  });
}

interface Run<T> {
  promise: Promise<T>;
  controller: AbortController;
  waiting: number;
}

/**
 * A value every call on the account needs (the session, the order form's choices), loaded once
 * and kept for `ttlMs`. A load runs under a signal of its own, aborted only when the last call
 * waiting on it is cancelled: one cancelled call rejects at once without failing the calls
 * that share its load, and a load nobody waits for any more stops sending. (The shared
 * TtlCache cannot do this: its load runs under whichever call started it.)
 */
export class SharedValue<T> {
  readonly #ttlMs: number;
  readonly #now: () => number;
  #value: { at: number; data: T } | undefined;
  #run: Run<T> | undefined;

  constructor(ttlMs: number, now: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  get(
    signal: AbortSignal | undefined,
    operation: string,
    load: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    if (signal?.aborted) return Promise.reject(cancelled(operation, signal));
    const value = this.#value;
    if (value && this.#now() - value.at < this.#ttlMs) return Promise.resolve(value.data);
    const run = this.#current(load);
    run.waiting++;
    return new Promise<T>((resolve, reject) => {
      let left = false;
      const leave = (): boolean => {
        if (left) return false;
        left = true;
        signal?.removeEventListener("abort", onAbort);
        run.waiting--;
        return true;
      };
      const onAbort = (): void => {
        if (!leave() || signal === undefined) return;
        if (run.waiting === 0) run.controller.abort(signal.reason);
        reject(cancelled(operation, signal));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      run.promise.then(
        (data) => {
          if (leave()) resolve(data);
        },
        (err: unknown) => {
          if (leave()) reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /** Forgets the value, if it is still `data` (a session BILLmanager says expired). */
  forget(data: T): void {
    if (this.#value?.data === data) this.#value = undefined;
  }

  #current(load: (signal: AbortSignal) => Promise<T>): Run<T> {
    const live = this.#run;
    // A load whose callers all left is doomed: a new caller starts its own.
    if (live && !live.controller.signal.aborted) return live;
    const controller = new AbortController();
    const run: Run<T> = {
      controller,
      waiting: 0,
      promise: load(controller.signal).then((data) => {
        this.#value = { at: this.#now(), data };
        return data;
      }),
    };
    this.#run = run;
    const done = (): void => {
      if (this.#run === run) this.#run = undefined;
    };
    run.promise.then(done, done);
    return run;
  }
}
