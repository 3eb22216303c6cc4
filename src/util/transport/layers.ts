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
  acquire(): Promise<() => void>;
}

/** Holds each attempt until the limiter lets it start; the slot is freed when it ends. */
export function limit(limiter: Limiter): Interceptor {
  return (dispatch) => (opts, handler) => {
    void limiter.acquire().then((release) => {
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
    });
    return true;
  };
}

/** Applies the request's own per-attempt rewrite (a signature over a fresh timestamp). */
export function eachAttempt(): Interceptor {
  return (dispatch) => (opts, handler) => {
    const o = opts as TransportOptions;
    return dispatch(o.eachAttempt ? o.eachAttempt(o) : opts, handler);
  };
}
