import { Agent, errors as undiciErrors, type Dispatcher } from "undici";
import type { Logger } from "pino";
import type { Metrics } from "../../observability/metrics.ts";
import { systemClock, sleep, type Clock } from "../../util/clock.ts";
import { backoffDelay, parseRetryAfter } from "../../util/backoff.ts";
import { TransientError } from "../errors.ts";
import { Redactor } from "./redact.ts";
import { RequestLimiter } from "./token-bucket.ts";

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
  defaultHeaders?: Record<string, string>;
  retry?: Partial<RetryPolicy>;
  limits?: Partial<LimitPolicy>;
  requestTimeoutMs?: number;
}

const RETRY_STATUSES = new Set([429, 502, 503, 504]);
/** Errors raised before a request can have reached the server: always safe to retry. */
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
]);

export const DEFAULT_RETRY: RetryPolicy = { retries: 3, baseDelayMs: 200, maxDelayMs: 10_000 };
export const DEFAULT_LIMITS: LimitPolicy = { qps: 20, burst: 40, maxConcurrent: 16 };

/**
 * One provider endpoint with one credential. Returns every HTTP answer (drivers interpret the
 * provider's envelopes); throws TransientError only when no answer came at all.
 */
export class HttpClient {
  readonly provider: string;
  readonly baseUrl: URL;
  readonly redactor: Redactor;
  readonly #dispatcher: Dispatcher;
  readonly #limiter: RequestLimiter;
  readonly #retry: RetryPolicy;
  readonly #timeoutMs: number;
  readonly #defaultHeaders: Record<string, string>;
  readonly #logger: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #random: () => number;

  constructor(
    opts: HttpClientOptions,
    deps: {
      dispatcher: Dispatcher;
      limiter: RequestLimiter;
      logger: Logger;
      metrics: Metrics | undefined;
      random?: () => number;
    },
  ) {
    this.provider = opts.provider;
    this.baseUrl = new URL(opts.baseUrl);
    this.redactor = new Redactor(opts.secrets);
    this.#dispatcher = deps.dispatcher;
    this.#limiter = deps.limiter;
    this.#retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.#timeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.#defaultHeaders = opts.defaultHeaders ?? {};
    this.#logger = deps.logger;
    this.#metrics = deps.metrics;
    this.#random = deps.random ?? Math.random;
  }

  prepare(req: HttpRequest): PreparedRequest {
    const base = this.baseUrl.href.endsWith("/") ? this.baseUrl.href : `${this.baseUrl.href}/`;
    const url = new URL(req.path.replace(/^\//, ""), base);
    for (const [k, v] of Object.entries(req.query ?? {}))
      if (v !== undefined) url.searchParams.append(k, String(v));
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
    return { method: req.method, url, headers, body };
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const idempotent = req.idempotent ?? ["GET", "HEAD", "PUT", "DELETE"].includes(req.method);
    for (let attempt = 0; ; attempt++) {
      let prepared = this.prepare(req);
      if (req.sign) prepared = req.sign(prepared);
      const release = await this.#limiter.acquire();
      const started = performance.now();
      let outcome: { response: HttpResponse } | { error: unknown };
      try {
        outcome = { response: await this.#send(prepared) };
      } catch (error) {
        outcome = { error };
      } finally {
        release();
      }
      const seconds = (performance.now() - started) / 1000;
      const code = "response" in outcome ? String(outcome.response.status) : errorKind(outcome.error);
      this.#metrics?.providerRequests.inc({ provider: this.provider, operation: req.operation, code });
      this.#metrics?.providerRequestDuration.observe(
        { provider: this.provider, operation: req.operation },
        seconds,
      );
      this.#logger.debug(
        {
          provider: this.provider,
          operation: req.operation,
          method: prepared.method,
          url: this.redactor.text(prepared.url.href),
          code,
          attempt,
          ms: Math.round(seconds * 1000),
        },
        "provider request",
      );

      const canRetry = attempt < this.#retry.retries;
      if ("response" in outcome) {
        const { response } = outcome;
        // A 429 means the request was refused before doing anything, so even a create may repeat.
        const retryable = response.status === 429 || (idempotent && RETRY_STATUSES.has(response.status));
        if (!retryable || !canRetry) return response;
        const retryAfter = parseRetryAfter(response.headers["retry-after"]);
        // A long Retry-After goes back to the driver (RateLimitedError -> requeue after it)
        // rather than holding a worker and a limiter slot for that long.
        if (retryAfter !== undefined && retryAfter > this.#retry.maxDelayMs) return response;
        await sleep(retryAfter ?? this.#delay(attempt));
        continue;
      }
      const { error } = outcome;
      const notSent = NOT_SENT_CODES.has(errorCode(error) ?? "");
      if (!canRetry || !(idempotent || notSent)) {
        throw new TransientError(
          `${this.provider} ${req.operation}: ${this.redactor.text(errorMessage(error))}`,
          { provider: this.provider, operation: req.operation, cause: error },
        );
      }
      await sleep(this.#delay(attempt));
    }
  }

  #delay(attempt: number): number {
    return backoffDelay(attempt, this.#retry.baseDelayMs, this.#retry.maxDelayMs, this.#random);
  }

  async #send(req: PreparedRequest): Promise<HttpResponse> {
    const res = await this.#dispatcher.request({
      origin: req.url.origin,
      path: req.url.pathname + req.url.search,
      method: req.method,
      headers: req.headers,
      body: req.body ?? null,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    });
    const text = await res.body.text();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers))
      if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
    return {
      status: res.statusCode,
      headers,
      text,
      json: () => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          return undefined;
        }
      },
    };
  }
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") return code;
  const cause = (err as { cause?: unknown }).cause;
  return cause === undefined ? undefined : errorCode(cause);
}

function errorKind(err: unknown): string {
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError)
    return "timeout";
  const code = errorCode(err);
  if (code === "UND_ERR_CONNECT_TIMEOUT") return "timeout";
  return "error";
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = errorCode(err);
    return code !== undefined && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

export interface HttpClientFactoryOptions {
  logger: Logger;
  metrics?: Metrics;
  clock?: Clock;
  /** Limits for every provider credential (from config), over DEFAULT_LIMITS. */
  defaultLimits?: Partial<LimitPolicy>;
  /** Per-provider overrides of the rate limit (e.g. from config). */
  limits?: Partial<Record<string, Partial<LimitPolicy>>>;
  retry?: Partial<RetryPolicy>;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
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
      connect: { timeout: opts.connectTimeoutMs ?? 10_000 },
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
    return new HttpClient(
      { ...opts, retry, ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }) },
      {
        dispatcher: this.#agent,
        limiter,
        logger: this.#opts.logger,
        metrics: this.#opts.metrics,
        ...(this.#opts.random ? { random: this.#opts.random } : {}),
      },
    );
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
