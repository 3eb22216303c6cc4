import type { Clock } from "../clock.ts";
import { abortError, CallDeadlineExceededError, DeadlineExceededError } from "./errors.ts";
import {
  ForwardingHandler,
  NO_CONTROLLER,
  type Controller,
  type Handler,
  type Interceptor,
  type TransportOptions,
} from "./types.ts";

/**
 * Bounds one attempt: no complete answer within `ms` fails it with DeadlineExceededError, which
 * the retry layer may repeat. The caller's signal is honoured here too, at once — undici only
 * sees an abort once the request got a connection, and a request queued behind a busy pool
 * must not wait for one to give up.
 */
export function deadline(defaultMs: number, clock: Clock): Interceptor {
  return (dispatch) => (opts, handler) => {
    const o = opts as TransportOptions;
    const ms = o.deadlineMs ?? defaultMs;
    if (ms <= 0 && o.signal === undefined) return dispatch(opts, handler);
    const timeout = (): Error =>
      new DeadlineExceededError(`no answer to ${o.method} ${o.path} within ${String(ms)} ms`);
    return dispatch(opts, new DeadlineHandler(handler, { ms, signal: o.signal, clock, timeout }));
  };
}

/**
 * Bounds a whole call, outermost: rate-limit waits, every attempt and the backoff between
 * them, headers and body — a peer that trickles its answer a byte at a time is cut off here,
 * where an idle timeout never would. Layers below get a signal that aborts when the call does
 * (a queued request leaves the limiter, an attempt in flight is torn down, no retry starts)
 * and the moment it ends (`callDeadlineAt`), so a retry never waits past it.
 */
export function callDeadline(ms: number, clock: Clock): Interceptor {
  return (dispatch) => (opts, handler) => {
    if (ms <= 0) return dispatch(opts, handler);
    const o = opts as TransportOptions;
    // The layers below get a signal of the call's own, which aborts when the caller's does:
    // the DeadlineHandler below listens to the caller's signal anyway and aborts `own` (onFail)
    // before anything hears of the failure. AbortSignal.any per call cost a composite signal
    // and weak references into the caller's long-lived one (GC work) for the same effect.
    const own = new AbortController();
    if (o.signal?.aborted) own.abort(abortError(o.signal));
    const timeout = (): Error =>
      new CallDeadlineExceededError(
        `no complete answer to ${o.method} ${o.path} within ${String(ms)} ms (waits, retries and the whole body included)`,
        ms,
      );
    const down: TransportOptions = { ...o, signal: own.signal, callDeadlineAt: clock.now() + ms };
    const onFail = (err: Error): void => {
      own.abort(err);
    };
    return dispatch(down, new DeadlineHandler(handler, { ms, signal: o.signal, clock, timeout, onFail }));
  };
}

interface DeadlineSpec {
  /** 0: no timer, only the signal. */
  ms: number;
  signal: AbortSignal | undefined;
  clock: Clock;
  timeout: () => Error;
  /** Told of the failure (timeout or abort) before the layer above hears it. */
  onFail?: (err: Error) => void;
}

/**
 * The handlers waiting on each signal, behind one abort listener per signal. Every request
 * of a reconcile waits on the same long-lived signal (the reconcile's, the process's hard
 * stop): an EventTarget listener per request cost an allocation and a scan of the signal's
 * whole listener list on every add and every remove; a Set is O(1) both ways.
 */
const waiting = new WeakMap<AbortSignal, Set<DeadlineHandler>>();

function onAbortOf(signal: AbortSignal, handler: DeadlineHandler): void {
  let set = waiting.get(signal);
  if (set === undefined) {
    const handlers = new Set<DeadlineHandler>();
    set = handlers;
    waiting.set(signal, handlers);
    signal.addEventListener(
      "abort",
      () => {
        waiting.delete(signal);
        for (const h of handlers) h.abort(abortError(signal));
        handlers.clear();
      },
      { once: true },
    );
  }
  set.add(handler);
}

class DeadlineHandler extends ForwardingHandler {
  readonly #spec: DeadlineSpec;
  readonly #timer: NodeJS.Timeout | undefined;
  #controller: Controller | undefined;
  #failed: Error | undefined;
  #settled = false;

  constructor(next: Handler, spec: DeadlineSpec) {
    super(next);
    this.#spec = spec;
    if (spec.ms > 0)
      this.#timer = spec.clock.setTimeout(() => {
        this.#fail(spec.timeout());
      }, spec.ms);
    const signal = spec.signal;
    if (signal?.aborted)
      queueMicrotask(() => {
        this.abort(abortError(signal));
      });
    else if (signal) onAbortOf(signal, this);
  }

  /** The caller's signal aborted. */
  abort(err: Error): void {
    this.#fail(err);
  }

  override onRequestStart(controller: Controller, context: unknown): void {
    if (this.#failed) {
      controller.abort(this.#failed);
      return;
    }
    this.#controller = controller;
    super.onRequestStart(controller, context);
  }

  override onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: Parameters<ForwardingHandler["onResponseStart"]>[2],
    statusMessage?: string,
  ): void {
    if (!this.#failed) super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseData(controller: Controller, chunk: Buffer): void {
    if (!this.#failed) super.onResponseData(controller, chunk);
  }

  override onResponseEnd(
    controller: Controller,
    trailers: Parameters<ForwardingHandler["onResponseEnd"]>[1],
  ): void {
    this.#settle();
    if (!this.#failed) super.onResponseEnd(controller, trailers);
  }

  override onResponseError(controller: Controller, error: Error): void {
    this.#settle();
    if (!this.#failed) super.onResponseError(controller, error);
  }

  /**
   * Detaches from the request: the layer above hears the failure now (with no controller, so
   * a retry layer does not mistake it for the caller's abort) and later events are dropped.
   */
  #fail(error: Error): void {
    if (this.#settled || this.#failed) return;
    this.#failed = error;
    this.#settle();
    this.#spec.onFail?.(error);
    this.#controller?.abort(error);
    this.next.onResponseError?.(NO_CONTROLLER, error);
  }

  #settle(): void {
    this.#settled = true;
    if (this.#timer !== undefined) this.#spec.clock.clearTimeout(this.#timer);
    const signal = this.#spec.signal;
    if (signal) waiting.get(signal)?.delete(this);
  }
}
