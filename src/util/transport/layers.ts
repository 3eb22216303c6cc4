import type { Logger } from "pino";
import { ResponseTooLargeError } from "./errors.ts";
import {
  ForwardingHandler,
  NO_CONTROLLER,
  type Controller,
  type Handler,
  type HeaderMap,
  type Interceptor,
  type TransportOptions,
} from "./types.ts";

type ResponseHeaders = Parameters<ForwardingHandler["onResponseStart"]>[2];
type ResponseTrailers = Parameters<ForwardingHandler["onResponseEnd"]>[1];

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
  return (dispatch) => (opts, handler) =>
    dispatch(opts, new ObservingHandler(handler, opts as TransportOptions, onAttempt));
}

// The handlers below are classes of their own, made once: a class expression inside the
// interceptor made a new class (and a cold constructor) for every request.

class ObservingHandler extends ForwardingHandler {
  readonly #opts: TransportOptions;
  readonly #onAttempt: (attempt: Attempt) => void;
  readonly #started = performance.now();
  #statusCode: number | undefined;

  constructor(next: Handler, opts: TransportOptions, onAttempt: (attempt: Attempt) => void) {
    super(next);
    this.#opts = opts;
    this.#onAttempt = onAttempt;
  }

  override onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: ResponseHeaders,
    statusMessage?: string,
  ): void {
    this.#statusCode = statusCode;
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseEnd(controller: Controller, trailers: ResponseTrailers): void {
    this.#report(undefined);
    super.onResponseEnd(controller, trailers);
  }

  override onResponseError(controller: Controller, error: Error): void {
    this.#report(error);
    super.onResponseError(controller, error);
  }

  #report(error: Error | undefined): void {
    this.#onAttempt({
      opts: this.#opts,
      statusCode: this.#statusCode,
      error,
      ms: performance.now() - this.#started,
    });
  }
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
  /**
   * The headers when they are at hand without waiting (a cached credential), else undefined.
   * Lets the auth layer send at once: the Promise, its reaction and the microtask hop of
   * `headers()` were paid on every request for a credential that was already cached.
   */
  headersNow?(): HeaderMap | undefined;
  invalidate(): void;
}

/**
 * Adds the credential headers to each attempt and drops the cached credential when the
 * server answers 401, so the retry layer's one repeat (and the next request) asks afresh.
 */
export function auth(source: AuthSource): Interceptor {
  const withHeaders = (opts: TransportOptions, headers: HeaderMap): TransportOptions =>
    hasKeys(headers) ? { ...opts, headers: { ...opts.headers, ...headers } } : opts;
  return (dispatch) => (opts, handler) => {
    const wrapped = new InvalidatingHandler(handler, source);
    const now = source.headersNow?.();
    if (now !== undefined) return dispatch(withHeaders(opts as TransportOptions, now), wrapped);
    source.headers().then(
      (headers) => {
        dispatch(withHeaders(opts as TransportOptions, headers), wrapped);
      },
      (err: unknown) => {
        wrapped.onResponseError(NO_CONTROLLER, err instanceof Error ? err : new Error(String(err)));
      },
    );
    return true;
  };
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

class InvalidatingHandler extends ForwardingHandler {
  readonly #source: AuthSource;

  constructor(next: Handler, source: AuthSource) {
    super(next);
    this.#source = source;
  }

  override onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: ResponseHeaders,
    statusMessage?: string,
  ): void {
    if (statusCode === 401) this.#source.invalidate();
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }
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
        dispatch(opts, new ReleasingHandler(handler, release));
      },
      (err: unknown) => {
        handler.onResponseError?.(NO_CONTROLLER, err instanceof Error ? err : new Error(String(err)));
      },
    );
    return true;
  };
}

class ReleasingHandler extends ForwardingHandler {
  readonly #release: () => void;

  constructor(next: Handler, release: () => void) {
    super(next);
    this.#release = release;
  }

  override onResponseEnd(controller: Controller, trailers: ResponseTrailers): void {
    this.#release();
    super.onResponseEnd(controller, trailers);
  }

  override onResponseError(controller: Controller, error: Error): void {
    this.#release();
    super.onResponseError(controller, error);
  }
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
    return dispatch(opts, new CappedHandler(handler, opts as TransportOptions, maxBytes));
  };
}

class CappedHandler extends ForwardingHandler {
  readonly #opts: TransportOptions;
  readonly #maxBytes: number;
  #received = 0;
  #stopped = false;

  constructor(next: Handler, opts: TransportOptions, maxBytes: number) {
    super(next);
    this.#opts = opts;
    this.#maxBytes = maxBytes;
  }

  override onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: ResponseHeaders,
    statusMessage?: string,
  ): void {
    // A HEAD answer's Content-Length is the size of a GET's body, never sent.
    const declared = this.#opts.method === "HEAD" ? 0 : Number(headers["content-length"] ?? 0);
    if (declared > this.#maxBytes) this.#stop(controller, `declares ${String(declared)} bytes`);
    else super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#stopped) return;
    this.#received += chunk.length;
    if (this.#received > this.#maxBytes) this.#stop(controller, `passed ${String(this.#received)} bytes`);
    else super.onResponseData(controller, chunk);
  }

  #stop(controller: Controller, why: string): void {
    this.#stopped = true;
    const o = this.#opts;
    controller.abort(
      new ResponseTooLargeError(
        `answer to ${o.method} ${o.path} ${why}, over the ${String(this.#maxBytes)}-byte cap`,
        this.#maxBytes,
      ),
    );
  }
}

/** Applies the request's own per-attempt rewrite (a signature over a fresh timestamp). */
export function eachAttempt(): Interceptor {
  return (dispatch) => (opts, handler) => {
    const o = opts as TransportOptions;
    return dispatch(o.eachAttempt ? o.eachAttempt(o) : opts, handler);
  };
}
