import type { Dispatcher } from "undici";

/** A header map as the interceptors pass it on (several values for a repeated header). */
export type HeaderMap = Record<string, string | string[]>;

/**
 * Dispatch options plus the per-request hints the transport's interceptors read. `idempotent`
 * is undici's own field ("can be safely retried"), which the retry policy honours.
 */
export interface TransportOptions extends Dispatcher.DispatchOptions {
  headers?: HeaderMap;
  signal?: AbortSignal;
  /** Overrides the transport's per-attempt deadline; 0 means none (a watch). */
  deadlineMs?: number | undefined;
  /**
   * When the whole call must be over (clock time), set by the call deadline layer: a retry
   * whose wait would end past it is not attempted.
   */
  callDeadlineAt?: number | undefined;
  /**
   * The longest this request may wait in the limiter's queue; past it the limiter refuses at
   * once (QueueWaitRefusedError). Omitted: it waits its turn.
   */
  maxQueueWaitMs?: number | undefined;
  /** Rewrites each attempt just before it is sent (MOS signs a timestamp, so every retry re-signs). */
  eachAttempt?: ((opts: TransportOptions) => TransportOptions) | undefined;
}

export type Interceptor = Dispatcher.DispatcherComposeInterceptor;
export type Dispatch = Dispatcher["dispatch"];
export type Handler = Dispatcher.DispatchHandler;
export type Controller = Dispatcher.DispatchController;

/** Interceptors that fail before the request started have no controller to hand down (undici's dns interceptor does the same). */
export const NO_CONTROLLER = null as unknown as Controller;

/** A handler that forwards everything: interceptors override what they watch. */
export class ForwardingHandler implements Handler {
  protected readonly next: Handler;

  constructor(next: Handler) {
    this.next = next;
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.next.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(...args: Parameters<NonNullable<Handler["onRequestUpgrade"]>>): void {
    this.next.onRequestUpgrade?.(...args);
  }

  onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: Parameters<NonNullable<Handler["onResponseStart"]>>[2],
    statusMessage?: string,
  ): void {
    this.next.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    this.next.onResponseData?.(controller, chunk);
  }

  onResponseEnd(
    controller: Controller,
    trailers: Parameters<NonNullable<Handler["onResponseEnd"]>>[1],
  ): void {
    this.next.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Controller, error: Error): void {
    this.next.onResponseError?.(controller, error);
  }

  onBodySent(chunk: Buffer): void {
    this.next.onBodySent?.(chunk);
  }

  onRequestSent(): void {
    this.next.onRequestSent?.();
  }
}
