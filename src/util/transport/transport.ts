import type { Dispatcher } from "undici";
import type { Clock } from "../clock.ts";
import { callDeadline, deadline } from "./deadline.ts";
import {
  auth,
  debugLog,
  eachAttempt,
  limit,
  observe,
  responseCap,
  type Attempt,
  type AuthSource,
  type Limiter,
} from "./layers.ts";
import { retry, type RetryRules } from "./retry.ts";
import type { Interceptor } from "./types.ts";

export interface TransportLayers {
  clock: Clock;
  random?: (() => number) | undefined;
  /** Omitted: nothing is repeated (a watch: its owner relists or resumes). */
  retry?: RetryRules | undefined;
  limiter?: Limiter | undefined;
  onAttempt?: ((attempt: Attempt) => void) | undefined;
  auth?: AuthSource | undefined;
  /** Per attempt; 0 or omitted: none (a request may still carry its own `deadlineMs`). */
  deadlineMs?: number | undefined;
  /** For the whole call, waits and retries included, headers and body; 0 or omitted: none. */
  callDeadlineMs?: number | undefined;
  /** Largest answer body accepted, in bytes; omitted: no cap. */
  maxResponseBytes?: number | undefined;
}

/**
 * The one transport core under the kube client and the provider clients: a pooled undici
 * dispatcher composed, always in this order, from
 *   call deadline → retry → limit → observe → auth → each-attempt rewrite → deadline →
 *   response cap → connection pool.
 * The call deadline sits outermost so nothing below (a queue, a backoff, a trickling body)
 * outlives it; retry next, so every repeat passes the limiter, is counted, gets fresh
 * credentials and a fresh signature, and has its own deadline and its own byte count.
 */
export function buildTransport(pool: Dispatcher, layers: TransportLayers): Dispatcher {
  const outerFirst: Interceptor[] = [];
  if (layers.callDeadlineMs !== undefined && layers.callDeadlineMs > 0)
    outerFirst.push(callDeadline(layers.callDeadlineMs, layers.clock));
  if (layers.retry) outerFirst.push(retry(layers.retry, { clock: layers.clock, random: layers.random }));
  if (layers.limiter) outerFirst.push(limit(layers.limiter));
  if (layers.onAttempt) outerFirst.push(observe(layers.onAttempt));
  if (layers.auth) outerFirst.push(auth(layers.auth));
  outerFirst.push(eachAttempt());
  outerFirst.push(deadline(layers.deadlineMs ?? 0, layers.clock));
  if (layers.maxResponseBytes !== undefined) outerFirst.push(responseCap(layers.maxResponseBytes));
  // compose() wraps in order, so the last interceptor given is the outermost.
  return pool.compose(outerFirst.reverse());
}

export { debugLog };
export { bodyText, send, type Answer } from "./collect.ts";
export type { Attempt, AuthSource, Limiter } from "./layers.ts";
export type { RetryRules } from "./retry.ts";
export type { HeaderMap, TransportOptions } from "./types.ts";
export { RequestLimiter } from "./limiter.ts";
export {
  causeOf,
  describeError,
  errorCode,
  failureKind,
  neverSent,
  CallDeadlineExceededError,
  DeadlineExceededError,
  QueueWaitRefusedError,
  ResponseTooLargeError,
} from "./errors.ts";
