import { RetryHandler, errors as undiciErrors } from "undici";
import { backoffDelay, parseRetryAfter } from "../backoff.ts";
import type { Clock } from "../clock.ts";
import { isTransportFailure, neverSent } from "./errors.ts";
import type { Interceptor, TransportOptions } from "./types.ts";

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
 * undici's RetryHandler (the mechanics: replaying the request, aborts during the wait,
 * discarding a refused answer's body) driven by `retryDelay`. With throwOnError off, the last
 * answer of a request that is not repeated reaches the caller as an ordinary response.
 */
export function retry(
  rules: RetryRules,
  deps: { clock: Clock; random?: (() => number) | undefined },
): Interceptor {
  const random = deps.random ?? Math.random;
  const decide: RetryHandler.RetryCallback = (err, { state, opts }, callback) => {
    const o = opts as TransportOptions;
    const failure: Failure =
      err instanceof undiciErrors.RequestRetryError
        ? { status: err.statusCode, headers: err.headers ?? {} }
        : { error: err };
    const delay = o.signal?.aborted
      ? undefined
      : retryDelay(
          rules,
          failure,
          { method: o.method, idempotent: o.idempotent, retry: state.counter - 1 },
          random,
        );
    // A repeat that could not start before the call's deadline only spends the caller's
    // time: the failure (an answer such as a 429 with its Retry-After) goes back now.
    if (
      delay === undefined ||
      (o.callDeadlineAt !== undefined && deps.clock.now() + delay >= o.callDeadlineAt)
    ) {
      callback(err);
      return;
    }
    // Returned so the handler can cancel the wait when the caller aborts.
    return deps.clock.setTimeout(() => {
      callback(null);
    }, delay) as unknown as undefined;
  };
  return (dispatch) => (opts, handler) =>
    dispatch(
      opts,
      new RetryHandler(
        { ...opts, retryOptions: { throwOnError: false, retry: decide } },
        { dispatch, handler },
      ),
    );
}
