import { backoffDelay, parseRetryAfter } from "../backoff.ts";
import type { Clock } from "../clock.ts";
import { abortError, isTransportFailure, neverSent } from "./errors.ts";
import type { Controller, Dispatch, Handler, Interceptor, TransportOptions } from "./types.ts";

/**
 * What a client may repeat. The mechanics (backoff, Retry-After, "never sent", aborts) are
 * the transport's; each client states only its policy here.
 */
export interface RetryRules {
  /** Attempts after the first. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Answers an idempotent request is repeated on (a 429 is repeated for every verb). */
  retryStatus: (status: number) => boolean;
  /**
   * A Retry-After longer than this is not waited for: the answer goes back to the caller, who
   * requeues rather than holding a worker (and a limiter slot) that long.
   */
  maxRetryAfterMs: number;
  /** Repeat once after a 401: the auth interceptor dropped the cached credential. */
  refreshOn401?: boolean;
}

/** The failure the retry decision looks at: an answer (status, headers) or no answer at all. */
export type Failure = { status: number; headers: Record<string, unknown> } | { error: unknown };

const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/**
 * How long to wait before attempt `retry + 1` (retry 0 is the first repeat), or undefined to
 * give up and hand the failure to the caller.
 */
export function retryDelay(
  rules: RetryRules,
  failure: Failure,
  request: { method: string; idempotent: boolean | undefined; retry: number },
  random: () => number,
  now: number = Date.now(),
): number | undefined {
  if (request.retry >= rules.retries) return undefined;
  const idempotent = request.idempotent ?? IDEMPOTENT_METHODS.has(request.method);
  const backoff = backoffDelay(request.retry, rules.baseDelayMs, rules.maxDelayMs, random);
  if ("error" in failure) {
    // Nothing reached the server: any verb may repeat. Otherwise only what is safe twice.
    return neverSent(failure.error) || (idempotent && isTransportFailure(failure.error))
      ? backoff
      : undefined;
  }
  const { status } = failure;
  // A 401 means the server refused before acting: once, with fresh credentials, for any verb.
  if (status === 401) return rules.refreshOn401 === true && request.retry === 0 ? 0 : undefined;
  // A 429 too was refused unprocessed, so even a create may repeat.
  if (status !== 429 && !(idempotent && rules.retryStatus(status))) return undefined;
  const header = failure.headers["retry-after"];
  const retryAfter = parseRetryAfter(typeof header === "string" ? header : undefined, now);
  if (retryAfter === undefined) return backoff;
  return retryAfter > rules.maxRetryAfterMs ? undefined : Math.max(retryAfter, backoff);
}

/**
 * Repeats a request as `retryDelay` says: a refused answer's body is drained and dropped, the
 * wait runs on the clock (ended at once when the caller aborts or its signal does), and the
 * request is dispatched again through the layers below — the limiter, fresh credentials, a
 * fresh signature, a deadline and a byte count of its own. The last answer of a request that
 * is not repeated reaches the caller as an ordinary response.
 *
 * Written here rather than with undici's RetryHandler, which built an error with a stack for
 * every answer ≥ 300 (a 404 or a 409 is an everyday answer here), copied the options three
 * times per request and held the response paused — and its limiter slot — through the
 * backoff. Never repeated: anything after an answer's headers went to the caller (undici
 * would resume with a Range request, which neither the API server nor the providers answer
 * as such), and a failure the caller caused (an abort, an answer past the size cap).
 */
export function retry(
  rules: RetryRules,
  deps: { clock: Clock; random?: (() => number) | undefined },
): Interceptor {
  const policy: RetryPolicy = { rules, clock: deps.clock, random: deps.random ?? Math.random };
  if (rules.retries <= 0) return (dispatch) => dispatch;
  return (dispatch) => (opts, handler) =>
    new RetryingHandler(dispatch, opts as TransportOptions, handler, policy).start();
}

interface RetryPolicy {
  rules: RetryRules;
  clock: Clock;
  random: () => number;
}

type ResponseHeaders = Parameters<NonNullable<Handler["onResponseStart"]>>[2];
type ResponseTrailers = Parameters<NonNullable<Handler["onResponseEnd"]>>[1];

/**
 * One request and its repeats. It is the handler of every attempt, and gives the layer above
 * one controller for the whole call (RetryController), through which an abort reaches the
 * attempt in flight or ends the wait.
 */
class RetryingHandler implements Handler {
  readonly #dispatch: Dispatch;
  readonly #opts: TransportOptions;
  readonly #next: Handler;
  readonly #policy: RetryPolicy;
  readonly #proxy: RetryController;
  /** Repeats made so far. */
  #repeats = 0;
  /** The attempt in flight's controller (null until it started). */
  #controller: Controller | null = null;
  /** The answer's headers went up: from here on, nothing is repeated. */
  #forwarded = false;
  /** This attempt's answer was refused: its body is dropped, then the repeat waits `#delay`. */
  #discarding = false;
  #delay = 0;
  #timer: NodeJS.Timeout | undefined;
  #aborted: Error | undefined;
  #done = false;

  constructor(dispatch: Dispatch, opts: TransportOptions, next: Handler, policy: RetryPolicy) {
    this.#dispatch = dispatch;
    this.#opts = opts;
    this.#next = next;
    this.#policy = policy;
    this.#proxy = new RetryController(this);
  }

  start(): boolean {
    return this.#dispatch(this.#opts, this);
  }

  /** An abort from above (the caller, a call deadline): the attempt in flight or the wait ends. */
  abort(reason: Error): void {
    if (this.#done || this.#aborted) return;
    this.#aborted = reason;
    if (this.#timer !== undefined) this.#finish(reason);
    else this.#controller?.abort(reason);
    // No controller yet (the attempt is queued below): onRequestStart aborts it.
  }

  get controller(): Controller | null {
    return this.#controller;
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#controller = controller;
    if (this.#aborted) {
      controller.abort(this.#aborted);
      return;
    }
    if (this.#proxy.paused) controller.pause();
    this.#next.onRequestStart?.(this.#proxy, context);
  }

  onRequestUpgrade(...args: Parameters<NonNullable<Handler["onRequestUpgrade"]>>): void {
    const [, statusCode, headers, socket] = args;
    this.#next.onRequestUpgrade?.(this.#proxy, statusCode, headers, socket);
  }

  onResponseStart(
    _controller: Controller,
    statusCode: number,
    headers: ResponseHeaders,
    statusMessage?: string,
  ): void {
    // 1xx answers are informational: the final one follows.
    if (statusCode >= 300 && !this.#forwarded) {
      const delay = this.#decide({ status: statusCode, headers });
      if (delay !== undefined) {
        this.#discarding = true;
        this.#delay = delay;
        return;
      }
    }
    if (statusCode >= 200) this.#forwarded = true;
    this.#next.onResponseStart?.(this.#proxy, statusCode, headers, statusMessage);
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    if (!this.#discarding && !this.#done) this.#next.onResponseData?.(this.#proxy, chunk);
  }

  onResponseEnd(_controller: Controller, trailers: ResponseTrailers): void {
    if (this.#discarding) {
      this.#discarding = false;
      this.#wait(this.#delay);
      return;
    }
    if (this.#done) return;
    this.#done = true;
    this.#next.onResponseEnd?.(this.#proxy, trailers);
  }

  onResponseError(controller: Controller | null, error: Error): void {
    if (this.#done) return;
    if (this.#aborted) {
      this.#finish(error);
      return;
    }
    if (this.#discarding) {
      // The refused answer's body broke off: the repeat was decided already.
      this.#discarding = false;
      this.#wait(this.#delay);
      return;
    }
    // A failure the caller caused below (an answer past the size cap aborts its controller) or
    // one after the headers went up is the caller's; anything else may be repeated.
    const delay = controller?.aborted === true || this.#forwarded ? undefined : this.#decide({ error });
    if (delay === undefined) this.#finish(error);
    else this.#wait(delay);
  }

  onBodySent(chunk: Buffer): void {
    this.#next.onBodySent?.(chunk);
  }

  onRequestSent(): void {
    this.#next.onRequestSent?.();
  }

  /** The wait before the next attempt, or undefined to hand the failure to the caller. */
  #decide(failure: Failure): number | undefined {
    const o = this.#opts;
    if (o.signal?.aborted) return undefined;
    const { rules, clock, random } = this.#policy;
    const delay = retryDelay(
      rules,
      failure,
      { method: o.method, idempotent: o.idempotent, retry: this.#repeats },
      random,
    );
    // A repeat that could not start before the call's deadline only spends the caller's
    // time: the failure (an answer such as a 429 with its Retry-After) goes back now.
    if (delay === undefined || (o.callDeadlineAt !== undefined && clock.now() + delay >= o.callDeadlineAt))
      return undefined;
    return delay;
  }

  #wait(delay: number): void {
    const { clock } = this.#policy;
    const signal = this.#opts.signal;
    this.#controller = null;
    // Aborted while the refused answer's body drained: no wait, no repeat.
    const early = this.#aborted ?? (signal?.aborted === true ? abortError(signal) : undefined);
    if (early) {
      this.#finish(early);
      return;
    }
    // The caller's signal ends the wait too (a kube call has no call deadline above to do it).
    const onAbort = (): void => {
      if (signal) this.abort(abortError(signal));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#timer = clock.setTimeout(() => {
      this.#timer = undefined;
      signal?.removeEventListener("abort", onAbort);
      this.#repeats++;
      try {
        this.#dispatch(this.#opts, this);
      } catch (err) {
        this.#finish(err instanceof Error ? err : new Error(String(err)));
      }
    }, delay);
  }

  #finish(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timer !== undefined) {
      this.#policy.clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#next.onResponseError?.(this.#proxy, error);
  }
}

/** The controller the layer above holds for the whole call, whichever attempt is in flight. */
class RetryController implements Controller {
  readonly #owner: RetryingHandler;
  #paused = false;

  constructor(owner: RetryingHandler) {
    this.#owner = owner;
  }

  get aborted(): boolean {
    return this.#owner.controller?.aborted ?? false;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get reason(): Error | null {
    return this.#owner.controller?.reason ?? null;
  }

  abort(reason: Error): void {
    this.#owner.abort(reason);
  }

  pause(): void {
    this.#paused = true;
    this.#owner.controller?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#owner.controller?.resume();
  }
}
