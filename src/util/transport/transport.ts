import type { Dispatcher } from "undici";
import type { Clock } from "../clock.ts";
import { deadline } from "./deadline.ts";
import { auth, eachAttempt, limit, observe, type Attempt, type AuthSource, type Limiter } from "./layers.ts";
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
}

/**
 * The one transport core under the kube client and the provider clients: a pooled undici
 * dispatcher composed, always in this order, from
 *   retry → limit → observe → auth → each-attempt rewrite → deadline → connection pool.
 * Retry sits outermost so every repeat passes the limiter, is counted, gets fresh credentials
 * and a fresh signature, and has its own deadline.
 */
export function buildTransport(pool: Dispatcher, layers: TransportLayers): Dispatcher {
  const outerFirst: Interceptor[] = [];
  if (layers.retry) outerFirst.push(retry(layers.retry, { clock: layers.clock, random: layers.random }));
  if (layers.limiter) outerFirst.push(limit(layers.limiter));
  if (layers.onAttempt) outerFirst.push(observe(layers.onAttempt));
  if (layers.auth) outerFirst.push(auth(layers.auth));
  outerFirst.push(eachAttempt());
  outerFirst.push(deadline(layers.deadlineMs ?? 0, layers.clock));
  // compose() wraps in order, so the last interceptor given is the outermost.
  return pool.compose(outerFirst.reverse());
}

export type { Attempt, AuthSource, Limiter } from "./layers.ts";
export type { RetryRules } from "./retry.ts";
export type { HeaderMap, TransportOptions } from "./types.ts";
export { describeError, errorCode, failureKind, neverSent, DeadlineExceededError } from "./errors.ts";
