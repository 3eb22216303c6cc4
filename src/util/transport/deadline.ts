import type { Clock } from "../clock.ts";
import { DeadlineExceededError } from "./errors.ts";
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
    return dispatch(opts, new DeadlineHandler(handler, ms, o, clock));
  };
}

class DeadlineHandler extends ForwardingHandler {
  readonly #clock: Clock;
  readonly #signal: AbortSignal | undefined;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #onAbort = (): void => {
    this.#fail(
      this.#signal?.reason instanceof Error ? this.#signal.reason : new DOMException("aborted", "AbortError"),
    );
  };
  #controller: Controller | undefined;
  #failed: Error | undefined;
  #settled = false;

  constructor(next: Handler, ms: number, opts: TransportOptions, clock: Clock) {
    super(next);
    this.#clock = clock;
    this.#signal = opts.signal;
    if (ms > 0)
      this.#timer = clock.setTimeout(() => {
        this.#fail(
          new DeadlineExceededError(`no answer to ${opts.method} ${opts.path} within ${String(ms)} ms`),
        );
      }, ms);
    if (this.#signal?.aborted) queueMicrotask(this.#onAbort);
    else this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  override onRequestStart(controller: Controller, context: unknown): void {
    if (this.#failed) {
      controller.abort(this.#failed);
      return;
    }
    this.#controller = controller;
    super.onRequestStart(controller, context);
  }

  override onResponseStart(...args: Parameters<ForwardingHandler["onResponseStart"]>): void {
    if (!this.#failed) super.onResponseStart(...args);
  }

  override onResponseData(controller: Controller, chunk: Buffer): void {
    if (!this.#failed) super.onResponseData(controller, chunk);
  }

  override onResponseEnd(...args: Parameters<ForwardingHandler["onResponseEnd"]>): void {
    this.#settle();
    if (!this.#failed) super.onResponseEnd(...args);
  }

  override onResponseError(controller: Controller, error: Error): void {
    this.#settle();
    if (!this.#failed) super.onResponseError(controller, error);
  }

  /**
   * Detaches from the attempt: the layer above hears the failure now (with no controller, so a
   * retry layer does not mistake it for the caller's abort) and later events are dropped.
   */
  #fail(error: Error): void {
    if (this.#settled || this.#failed) return;
    this.#failed = error;
    this.#settle();
    this.#controller?.abort(error);
    this.next.onResponseError?.(NO_CONTROLLER, error);
  }

  #settle(): void {
    this.#settled = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}
