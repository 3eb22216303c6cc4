import { Agent, type Dispatcher } from "undici";
import type { Logger } from "pino";
import type { Metrics } from "../../observability/metrics.ts";
import { systemClock, type Clock } from "../../util/clock.ts";
import { bodyText, send } from "../../util/transport/collect.ts";
import {
  buildTransport,
  CallDeadlineExceededError,
  causeOf,
  describeError,
  failureKind,
  QueueWaitRefusedError,
  RequestLimiter,
  ResponseTooLargeError,
  type Attempt,
  type AuthSource,
  type TransportOptions,
} from "../../util/transport/transport.ts";
import {
  EndpointRefusedError,
  ProviderLimitError,
  ThrottledError,
  TransientError,
  type ProviderError,
} from "../errors.ts";
import { admissionScope } from "./admission-scope.ts";
import {
  guardedLookup,
  ResolvedAddressNotAllowedError,
  type ResolvedAddressPolicy,
} from "./guarded-lookup.ts";
import { Redactor } from "./redact.ts";
import { requestTarget, requestUrl, toDispatch } from "./target.ts";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD";

export interface HttpRequest {
  method: HttpMethod;
  /** Path relative to the client's base URL (a leading "/" is joined onto the base path). */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  /** JSON body (sets content-type). */
  json?: unknown;
  /** application/x-www-form-urlencoded body; field order is kept. */
  form?: Record<string, string> | [string, string][];
  /** Raw body with the caller's own content-type. */
  body?: string;
  /** Label for metrics and logs: "create", "get", "list", … */
  operation: string;
  /**
   * Whether repeating the request after an ambiguous failure is safe. Defaults to true for
   * GET/HEAD/PUT/DELETE, false otherwise: a create is never blindly retried.
   */
  idempotent?: boolean;
  /** Called per attempt to sign the request (MOS signs the timestamp, so every retry re-signs). */
  sign?: (req: PreparedRequest) => PreparedRequest;
  /**
   * The reconcile's signal (driver methods get it in their CallContext): aborted when the
   * reconcile is cancelled — leadership lost, shutdown — the request and its retries stop.
   */
  signal?: AbortSignal | undefined;
}

export interface PreparedRequest {
  method: HttpMethod;
  url: URL;
  headers: Record<string, string>;
  body: string | undefined;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  json(): unknown;
}

export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface LimitPolicy {
  qps: number;
  burst: number;
  maxConcurrent: number;
}

export interface HttpClientOptions {
  provider: string;
  baseUrl: string;
  /** Identifies the credential for the per-credential rate limit (never the secret itself). */
  credentialKey: string;
  /** Secret values to scrub from logs and errors. */
  secrets: Iterable<string>;
  /** Query/form field names whose values are scrubbed too (the provider definition's `redact.fields`). */
  secretFields?: Iterable<string>;
  defaultHeaders?: Record<string, string>;
  retry?: Partial<RetryPolicy>;
  limits?: Partial<LimitPolicy>;
  /**
   * How long one request may take in all: rate-limit waits, retries, headers and the whole
   * body (default 30 s). Past it the request fails with ProviderLimitError "RequestTooSlow".
   */
  requestTimeoutMs?: number;
  /**
   * Largest answer body read, in bytes (default DEFAULT_MAX_RESPONSE_BYTES); a larger one is
   * abandoned, connection closed, with ProviderLimitError "ResponseTooLarge".
   */
  maxResponseBytes?: number;
  /**
   * Credentials obtained at runtime (a session token): asked for on every attempt, dropped when
   * the provider answers 401, after which the request is repeated once with fresh ones.
   */
  auth?: AuthSource;
}

const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD"]);
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "PUT", "DELETE"]);

/** What a provider call may repeat: 502/503/504 for idempotent requests, a 429 for any. */
const RETRY_STATUSES = new Set([502, 503, 504]);

export const DEFAULT_RETRY: RetryPolicy = { retries: 3, baseDelayMs: 200, maxDelayMs: 10_000 };
export const DEFAULT_LIMITS: LimitPolicy = { qps: 20, burst: 40, maxConcurrent: 16 };
/** 8 MiB: a page of any documented list is far below it; a hostile answer stops there. */
export const DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * One provider endpoint with one credential. Returns every HTTP answer (drivers interpret the
 * provider's envelopes); throws TransientError when no usable answer came: none at all, or —
 * as its subclass ProviderLimitError — one past the operator's bounds (too large, too slow),
 * which says as little about what the provider did as a timeout does. Retries,
 * limits, deadlines and metrics come from the shared transport core (util/transport); this
 * class holds only the provider policy: which answers repeat, how failures are named.
 */
export class HttpClient {
  readonly provider: string;
  readonly baseUrl: URL;
  readonly redactor: Redactor;
  readonly #transport: Dispatcher;
  readonly #defaultHeaders: Record<string, string>;
  /** The credential's limiter (shared with every client of the same credential). */
  readonly limiter: RequestLimiter;

  constructor(
    opts: HttpClientOptions,
    deps: {
      dispatcher: Dispatcher;
      limiter: RequestLimiter;
      logger: Logger;
      metrics: Metrics | undefined;
      clock?: Clock;
      random?: () => number;
    },
  ) {
    this.provider = opts.provider;
    this.baseUrl = new URL(opts.baseUrl);
    this.redactor = new Redactor(opts.secrets, opts.secretFields);
    this.#defaultHeaders = opts.defaultHeaders ?? {};
    this.limiter = deps.limiter;
    const retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.#transport = buildTransport(deps.dispatcher, {
      clock: deps.clock ?? systemClock,
      random: deps.random,
      retry: {
        ...retry,
        retryStatus: (status) => RETRY_STATUSES.has(status),
        maxRetryAfterMs: retry.maxDelayMs,
        refreshOn401: opts.auth !== undefined,
      },
      auth: opts.auth,
      limiter: deps.limiter,
      // One deadline for the whole request, not one per attempt: the caller's wait is what
      // is bounded, however the provider spreads its answer.
      callDeadlineMs: opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      maxResponseBytes: opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      onAttempt: (attempt) => {
        this.#record(attempt, deps.logger, deps.metrics);
      },
    });
  }

  prepare(req: HttpRequest): PreparedRequest {
    const url = requestUrl(this.baseUrl, req.path, req.query);
    return { method: req.method, url, ...this.#content(req) };
  }

  /** Headers and body of a request (the same for every attempt unless a signer rewrites them). */
  #content(req: HttpRequest): { headers: Record<string, string>; body: string | undefined } {
    const headers: Record<string, string> = {
      accept: "application/json",
      ...this.#defaultHeaders,
      ...req.headers,
    };
    let body: string | undefined;
    if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers["content-type"] = "application/json";
    } else if (req.form !== undefined) {
      body = new URLSearchParams(req.form).toString();
      headers["content-type"] = "application/x-www-form-urlencoded";
    } else if (req.body !== undefined) body = req.body;
    return { headers, body };
  }

  /** An unsigned request as the transport takes it, no URL object made (a signer needs `prepare`'s). */
  #dispatch(req: HttpRequest): TransportOptions {
    const { origin, path } = requestTarget(this.baseUrl, req.path, req.query);
    const { headers, body } = this.#content(req);
    return { origin, path, method: req.method, headers, body: body ?? null };
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const { sign } = req;
    // Inside an admitted reconcile (fairness between accounts) the request may not wait in
    // the account's limiter beyond the scope's bound: it is refused and the object requeued.
    const maxQueueWaitMs = admissionScope.getStore()?.onRequest(this.limiter, !SAFE_METHODS.has(req.method));
    const opts: ProviderRequest = {
      ...(sign ? toDispatch(this.prepare(req)) : this.#dispatch(req)),
      idempotent: req.idempotent ?? IDEMPOTENT_METHODS.has(req.method),
      operation: req.operation,
      ...(req.signal === undefined ? {} : { signal: req.signal }),
      ...(maxQueueWaitMs === undefined ? {} : { maxQueueWaitMs }),
      ...(sign ? { eachAttempt: () => toDispatch(sign(this.prepare(req))) } : {}),
    };
    try {
      const res = await send(this.#transport, opts);
      const text = bodyText(res.body);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers))
        if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
      return { status: res.statusCode, headers, text, json: () => parseJson(text) };
    } catch (error) {
      throw this.#failure(req.operation, error);
    }
  }

  /** No usable answer, named: a bound it crossed (and the flag that sets it), or the cause. */
  #failure(operation: string, error: unknown): ProviderError {
    const details = { provider: this.provider, operation, cause: error };
    const where = `${this.provider} ${operation}`;
    if (error instanceof QueueWaitRefusedError)
      return new ThrottledError(`${where}: not sent, the account's budget is spent (${error.message})`, {
        ...details,
        retryAfterMs: error.retryAfterMs,
      });
    if (error instanceof ResponseTooLargeError)
      return new ProviderLimitError(
        `${where}: answer larger than ${formatBytes(error.limitBytes)} (--provider-max-response-bytes), abandoned`,
        { ...details, reason: "ResponseTooLarge" },
      );
    const refused = causeOf(error, ResolvedAddressNotAllowedError);
    if (refused !== undefined) return new EndpointRefusedError(`${where}: ${refused.message}`, details);
    if (error instanceof CallDeadlineExceededError)
      return new ProviderLimitError(
        `${where}: no complete answer within ${String(error.deadlineMs / 1000)} s (--provider-timeout; waits, retries and the whole body included)`,
        { ...details, reason: "RequestTooSlow" },
      );
    return new TransientError(`${where}: ${this.redactor.text(describeError(error))}`, details);
  }

  #record(attempt: Attempt, logger: Logger, metrics: Metrics | undefined): void {
    const operation = (attempt.opts as ProviderRequest).operation ?? "unknown";
    // An attempt that failed after its headers (a body too large or too slow) is a failure.
    const code =
      attempt.error !== undefined || attempt.statusCode === undefined
        ? failureKind(attempt.error)
        : String(attempt.statusCode);
    metrics?.providerRequests.inc({ provider: this.provider, operation, code });
    metrics?.providerRequestDuration.observe({ provider: this.provider, operation }, attempt.ms / 1000);
    // Redacting the URL scans for every secret and runs a regex: only for a line that is written.
    if (!logger.isLevelEnabled("debug")) return;
    logger.debug(
      {
        provider: this.provider,
        operation,
        method: attempt.opts.method,
        url: this.redactor.text(`${String(attempt.opts.origin)}${attempt.opts.path}`),
        code,
        ms: Math.round(attempt.ms),
      },
      "provider request",
    );
  }
}

/** A provider request as the transport carries it: the operation labels metrics and logs. */
interface ProviderRequest extends TransportOptions {
  operation?: string;
}

function formatBytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${String(n / (1024 * 1024))} MiB`;
  if (n % 1024 === 0) return `${String(n / 1024)} KiB`;
  return `${String(n)} bytes`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export interface HttpClientFactoryOptions {
  logger: Logger;
  /** Sent on every provider request unless a driver sets its own. */
  userAgent?: string;
  metrics?: Metrics;
  clock?: Clock;
  /** Limits for every provider credential (from config), over DEFAULT_LIMITS. */
  defaultLimits?: Partial<LimitPolicy>;
  /** Per-provider overrides of the rate limit (e.g. from config). */
  limits?: Partial<Record<string, Partial<LimitPolicy>>>;
  retry?: Partial<RetryPolicy>;
  connectTimeoutMs?: number;
  /**
   * Where a host name may resolve to an internal address (the endpoint policy); without it
   * any address is dialled (tests and tools that build a factory directly).
   */
  resolvedAddresses?: ResolvedAddressPolicy;
  /** --provider-timeout: the whole of one request (HttpClientOptions.requestTimeoutMs). */
  requestTimeoutMs?: number;
  /** --provider-max-response-bytes (HttpClientOptions.maxResponseBytes). */
  maxResponseBytes?: number;
  random?: () => number;
}

/**
 * Owns the keep-alive connection pool (one undici Agent, pooled per origin) and one limiter
 * per provider credential, shared by every client made for that credential.
 */
export class HttpClientFactory {
  readonly #agent: Agent;
  readonly #limiters = new Map<string, RequestLimiter>();
  readonly #opts: HttpClientFactoryOptions;

  constructor(opts: HttpClientFactoryOptions) {
    this.#opts = opts;
    this.#agent = new Agent({
      keepAliveTimeout: 30_000,
      connect: {
        timeout: opts.connectTimeoutMs ?? 10_000,
        ...(opts.resolvedAddresses === undefined ? {} : { lookup: guardedLookup(opts.resolvedAddresses) }),
      },
      connections: 64,
    });
  }

  client(opts: HttpClientOptions): HttpClient {
    const limits = {
      ...DEFAULT_LIMITS,
      ...this.#opts.defaultLimits,
      ...this.#opts.limits?.[opts.provider],
      ...opts.limits,
    };
    const key = `${opts.provider}\u0000${opts.baseUrl}\u0000${opts.credentialKey}`;
    let limiter = this.#limiters.get(key);
    if (!limiter) {
      limiter = new RequestLimiter({ ...limits, clock: this.#opts.clock ?? systemClock });
      this.#limiters.set(key, limiter);
    }
    const retry = { ...this.#opts.retry, ...opts.retry };
    const requestTimeoutMs = opts.requestTimeoutMs ?? this.#opts.requestTimeoutMs;
    // Providers (and a leadership test) can tell which replica called: the User-Agent names it.
    const defaultHeaders =
      this.#opts.userAgent === undefined
        ? opts.defaultHeaders
        : { "user-agent": this.#opts.userAgent, ...opts.defaultHeaders };
    const maxResponseBytes = opts.maxResponseBytes ?? this.#opts.maxResponseBytes;
    return new HttpClient(
      {
        ...opts,
        ...(defaultHeaders === undefined ? {} : { defaultHeaders }),
        retry,
        ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
        ...(maxResponseBytes === undefined ? {} : { maxResponseBytes }),
      },
      {
        dispatcher: this.#agent,
        limiter,
        logger: this.#opts.logger,
        metrics: this.#opts.metrics,
        ...(this.#opts.clock ? { clock: this.#opts.clock } : {}),
        ...(this.#opts.random ? { random: this.#opts.random } : {}),
      },
    );
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
