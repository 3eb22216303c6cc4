import type { Logger } from "pino";
import { ResponseTooLargeError } from "./errors.ts";
import {
  ForwardingHandler,
  NO_CONTROLLER,
  type Controller,
  type HeaderMap,
  type Interceptor,
  type TransportOptions,
} from "./types.ts";

/** What one attempt did, for metrics and logs. */
export interface Attempt {
  opts: TransportOptions;
  /** The answer's status, or undefined when none came. */
  statusCode: number | undefined;
  error: Error | undefined;
  ms: number;
}

/** Reports every attempt (retries included) once it ended: metrics and debug logs. */
export function observe(onAttempt: (attempt: Attempt) => void): Interceptor {
  return (dispatch) => (opts, handler) => {
    const started = performance.now();
    let statusCode: number | undefined;
    const report = (error: Error | undefined): void => {
      onAttempt({ opts: opts as TransportOptions, statusCode, error, ms: performance.now() - started });
    };
    return dispatch(
      opts,
      new (class extends ForwardingHandler {
        override onResponseStart(...args: Parameters<ForwardingHandler["onResponseStart"]>): void {
          statusCode = args[1];
          super.onResponseStart(...args);
        }
        override onResponseEnd(...args: Parameters<ForwardingHandler["onResponseEnd"]>): void {
          report(undefined);
          super.onResponseEnd(...args);
        }
        override onResponseError(controller: Controller, error: Error): void {
          report(error);
          super.onResponseError(controller, error);
        }
      })(handler),
    );
  };
}

/** An `onAttempt` that debug-logs each attempt; none when the logger would drop the line. */
export function debugLog(logger: Logger | undefined, message: string): ((a: Attempt) => void) | undefined {
  if (logger?.isLevelEnabled("debug") !== true) return undefined;
  return (a) => {
    const { method, path } = a.opts;
    logger.debug({ method, path, code: a.statusCode, ms: Math.round(a.ms), err: a.error?.message }, message);
  };
}

/** Where credentials come from: fresh headers per attempt (tokens rotate), forgotten on a 401. */
export interface AuthSource {
  headers(): Promise<HeaderMap>;
  invalidate(): void;
}

/**
 * Adds the credential headers to each attempt and drops the cached credential when the
 * server answers 401, so the retry layer's one repeat (and the next request) asks afresh.
 */
export function auth(source: AuthSource): Interceptor {
  return (dispatch) => (opts, handler) => {
    const wrapped = new (class extends ForwardingHandler {
      override onResponseStart(...args: Parameters<ForwardingHandler["onResponseStart"]>): void {
        if (args[1] === 401) source.invalidate();
        super.onResponseStart(...args);
      }
    })(handler);
    source.headers().then(
      (headers) => {
        const o = opts as TransportOptions;
        dispatch({ ...o, headers: { ...o.headers, ...headers } }, wrapped);
      },
      (err: unknown) => {
        wrapped.onResponseError(NO_CONTROLLER, err instanceof Error ? err : new Error(String(err)));
      },
    );
    return true;
  };
}

/** A limit on how fast and how many requests start (a token bucket plus a concurrency cap). */
export interface Limiter {
  /** Rejects with the signal's reason, leaving the queue, when the signal aborts first. */
  acquire(signal?: AbortSignal, maxWaitMs?: number): Promise<() => void>;
}

/**
 * Holds each attempt until the limiter lets it start; the slot is freed when it ends. An
 * attempt whose signal aborts while it waits fails at once, never having been sent.
 */
export function limit(limiter: Limiter): Interceptor {
  return (dispatch) => (opts, handler) => {
    const o = opts as TransportOptions;
    limiter.acquire(o.signal, o.maxQueueWaitMs).then(
      (release) => {
        dispatch(
          opts,
          new (class extends ForwardingHandler {
            override onResponseEnd(...args: Parameters<ForwardingHandler["onResponseEnd"]>): void {
              release();
              super.onResponseEnd(...args);
            }
            override onResponseError(controller: Controller, error: Error): void {
              release();
              super.onResponseError(controller, error);
            }
          })(handler),
        );
      },
      (err: unknown) => {
        handler.onResponseError?.(NO_CONTROLLER, err instanceof Error ? err : new Error(String(err)));
      },
    );
    return true;
  };
}

/**
 * Caps the size of each answer: one whose Content-Length is over `maxBytes` is refused before
 * its body is read, one that grows past it is abandoned there — the request is aborted, which
 * closes the connection, so memory never grows with what the peer sends. The caller gets a
 * ResponseTooLargeError (never repeated: the aborted controller tells the retry layer so).
 */
export function responseCap(maxBytes: number): Interceptor {
  return (dispatch) => (opts, handler) => {
    if (!Number.isFinite(maxBytes)) return dispatch(opts, handler);
    const o = opts as TransportOptions;
    let received = 0;
    let stopped = false;
    const stop = (controller: Controller, why: string): void => {
      stopped = true;
      controller.abort(
        new ResponseTooLargeError(
          `answer to ${o.method} ${o.path} ${why}, over the ${String(maxBytes)}-byte cap`,
          maxBytes,
        ),
      );
    };
    return dispatch(
      opts,
      new (class extends ForwardingHandler {
        override onResponseStart(...args: Parameters<ForwardingHandler["onResponseStart"]>): void {
          // A HEAD answer's Content-Length is the size of a GET's body, never sent.
          const declared = o.method === "HEAD" ? 0 : Number(args[2]["content-length"] ?? 0);
          if (declared > maxBytes) stop(args[0], `declares ${String(declared)} bytes`);
          else super.onResponseStart(...args);
        }
        override onResponseData(controller: Controller, chunk: Buffer): void {
          if (stopped) return;
          received += chunk.length;
          if (received > maxBytes) stop(controller, `passed ${String(received)} bytes`);
          else super.onResponseData(controller, chunk);
        }
      })(handler),
    );
  };
}

/** Applies the request's own per-attempt rewrite (a signature over a fresh timestamp). */
export function eachAttempt(): Interceptor {
  return (dispatch) => (opts, handler) => {
    const o = opts as TransportOptions;
    return dispatch(o.eachAttempt ? o.eachAttempt(o) : opts, handler);
  };
}
