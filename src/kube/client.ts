import { errors as undiciErrors, type Dispatcher } from "undici";
import type { Logger } from "pino";
import type { AnyObject as KubeObject } from "./object.ts";
import { backoffDelay } from "../util/backoff.ts";
import { sleep } from "../util/clock.ts";
import type { KubeConnection } from "./connection.ts";
import {
  ConnectionError,
  KubeApiError,
  ServerError,
  TooManyRequestsError,
  UnauthorizedError,
  errorFromResponse,
  type KubeStatus,
} from "./errors.ts";
import { readNdjson } from "./ndjson.ts";
import { collectionPath, objectPath, type Resource } from "./resources.ts";

export interface ListOptions {
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  limit?: number | undefined;
  continue?: string | undefined;
  resourceVersion?: string | undefined;
  resourceVersionMatch?: "Exact" | "NotOlderThan" | undefined;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
  continue: string | undefined;
}

export interface WatchOptions {
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  resourceVersion?: string | undefined;
  allowWatchBookmarks?: boolean | undefined;
  timeoutSeconds?: number | undefined;
  signal?: AbortSignal | undefined;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";
export interface WatchEvent<T> {
  type: WatchEventType;
  object: T;
}

export type PatchType = "merge" | "json" | "strategic";
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
};

export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
}

export interface KubeRetryPolicy {
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface KubeClientOptions {
  connection: KubeConnection;
  logger?: Logger;
  retry?: Partial<KubeRetryPolicy>;
  userAgent?: string;
  /** Per-request timeout for non-watch calls. */
  requestTimeoutMs?: number;
}

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
type Query = Record<string, string | number | boolean | undefined>;

interface Call {
  method: Method;
  path: string;
  query?: Query;
  body?: unknown;
  contentType?: string;
  /** What the call was, for error messages: "get cloudinstances default/a". */
  what: string;
  signal?: AbortSignal | undefined;
}

/** Connection failures where the request cannot have reached the server. */
const NOT_SENT = new Set(["ECONNREFUSED", "UND_ERR_CONNECT_TIMEOUT", "ENOTFOUND", "EAI_AGAIN"]);

/**
 * A small typed REST client for the Kubernetes API on undici. Every call is typed by its
 * resource descriptor; every failure is a KubeApiError subclass. Idempotent calls (GET, PUT,
 * DELETE) are retried on 429/5xx/connection errors with jittered backoff honouring
 * Retry-After; a 429 is retried for every verb because the server refused it unprocessed.
 */
export class KubeClient {
  readonly #conn: KubeConnection;
  readonly #logger: Logger | undefined;
  readonly #retry: KubeRetryPolicy;
  readonly #userAgent: string;
  readonly #timeoutMs: number;

  constructor(opts: KubeClientOptions) {
    this.#conn = opts.connection;
    this.#logger = opts.logger;
    this.#retry = { retries: 4, baseDelayMs: 200, maxDelayMs: 5_000, ...opts.retry };
    this.#userAgent = opts.userAgent ?? "cloud-instance-operator";
    this.#timeoutMs = opts.requestTimeoutMs ?? 30_000;
  }

  get server(): URL {
    return this.#conn.server;
  }

  /** Closes the connection pool (ends open watches). */
  async close(): Promise<void> {
    await this.#conn.close();
  }

  async get<T extends KubeObject>(res: Resource<T>, namespace: string | undefined, name: string): Promise<T> {
    return (await this.#call({
      method: "GET",
      path: objectPath(res, namespace, name),
      what: `get ${res.plural} ${key(namespace, name)}`,
    })) as T;
  }

  /** One page. Use `listAll` to follow `continue` tokens. */
  async list<T extends KubeObject>(res: Resource<T>, opts: ListOptions = {}): Promise<ListResult<T>> {
    const body = (await this.#call({
      method: "GET",
      path: collectionPath(res, opts.namespace),
      query: {
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        limit: opts.limit,
        continue: opts.continue,
        resourceVersion: opts.resourceVersion,
        resourceVersionMatch: opts.resourceVersionMatch,
      },
      what: `list ${res.plural}`,
    })) as { items?: T[] | null; metadata?: { resourceVersion?: string; continue?: string } };
    const cont = body.metadata?.continue;
    return {
      items: body.items ?? [],
      resourceVersion: body.metadata?.resourceVersion ?? "",
      continue: cont === undefined || cont === "" ? undefined : cont,
    };
  }

  /** Every page; the resourceVersion is the first page's, which the continue tokens keep consistent. */
  async listAll<T extends KubeObject>(
    res: Resource<T>,
    opts: Omit<ListOptions, "continue"> = {},
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let page = await this.list(res, opts);
    items.push(...page.items);
    const resourceVersion = page.resourceVersion;
    while (page.continue !== undefined) {
      // resourceVersion must not be combined with continue: the token carries it.
      page = await this.list(res, {
        ...opts,
        resourceVersion: undefined,
        resourceVersionMatch: undefined,
        continue: page.continue,
      });
      items.push(...page.items);
    }
    return { items, resourceVersion };
  }

  /**
   * A watch stream. Ends when the server closes it (timeoutSeconds) or the signal aborts;
   * throws a KubeApiError for an ERROR event (410 Gone → GoneError) or a failed request.
   */
  async *watch<T extends KubeObject>(
    res: Resource<T>,
    opts: WatchOptions = {},
  ): AsyncGenerator<WatchEvent<T>> {
    const what = `watch ${res.plural}`;
    const url = this.#url(collectionPath(res, opts.namespace), {
      watch: true,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      resourceVersion: opts.resourceVersion,
      allowWatchBookmarks: opts.allowWatchBookmarks,
      timeoutSeconds: opts.timeoutSeconds,
    });
    if (opts.signal?.aborted) return;
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#conn.dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: "GET",
        headers: {
          ...(await this.#conn.headers()),
          accept: "application/json",
          "user-agent": this.#userAgent,
        },
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      if (opts.signal?.aborted) return;
      throw new ConnectionError(`${what}: ${describe(err)}`, err);
    }
    const body = response.body;
    try {
      if (response.statusCode !== 200) {
        const text = await body.text();
        throw errorFromResponse(
          response.statusCode,
          tryJson(text),
          header(response.headers, "retry-after"),
          what,
        );
      }
      for await (const line of readNdjson(body as AsyncIterable<Uint8Array>)) {
        const ev = line as { type?: string; object?: unknown };
        if (ev.type === "ERROR") {
          const status = (ev.object ?? {}) as KubeStatus;
          throw errorFromResponse(status.code ?? 500, status, undefined, what);
        }
        if (
          ev.type === "ADDED" ||
          ev.type === "MODIFIED" ||
          ev.type === "DELETED" ||
          ev.type === "BOOKMARK"
        ) {
          yield { type: ev.type, object: ev.object as T };
        }
      }
    } catch (err) {
      if (opts.signal?.aborted) return;
      if (err instanceof KubeApiError) throw err;
      throw new ConnectionError(`${what}: stream broken: ${describe(err)}`, err);
    } finally {
      // An early return by the consumer must release the connection.
      if (!body.destroyed) body.destroy();
    }
  }

  async create<T extends KubeObject>(res: Resource<T>, obj: T): Promise<T> {
    const ns = obj.metadata.namespace;
    return (await this.#call({
      method: "POST",
      path: collectionPath(res, ns),
      body: { ...obj, apiVersion: res.apiVersion, kind: res.kind },
      what: `create ${res.plural} ${key(ns, obj.metadata.name ?? obj.metadata.generateName ?? "")}`,
    })) as T;
  }

  /** PUT; a stale metadata.resourceVersion answers ConflictError. */
  async update<T extends KubeObject>(res: Resource<T>, obj: T): Promise<T> {
    return this.#put(res, obj, "");
  }

  async updateStatus<T extends KubeObject>(res: Resource<T>, obj: T): Promise<T> {
    return this.#put(res, obj, "/status");
  }

  async patch<T extends KubeObject>(
    res: Resource<T>,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    type: PatchType = "merge",
  ): Promise<T> {
    return this.#patch(res, namespace, name, patch, type, "");
  }

  async patchStatus<T extends KubeObject>(
    res: Resource<T>,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    type: PatchType = "merge",
  ): Promise<T> {
    return this.#patch(res, namespace, name, patch, type, "/status");
  }

  /** Resolves with the server's answer (the object while finalizers hold it, or a Status). */
  async delete(
    res: Resource,
    namespace: string | undefined,
    name: string,
    opts: DeleteOptions = {},
  ): Promise<unknown> {
    const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
    if (opts.preconditions) body["preconditions"] = opts.preconditions;
    if (opts.propagationPolicy) body["propagationPolicy"] = opts.propagationPolicy;
    return this.#call({
      method: "DELETE",
      path: objectPath(res, namespace, name),
      body,
      what: `delete ${res.plural} ${key(namespace, name)}`,
    });
  }

  async #put<T extends KubeObject>(res: Resource<T>, obj: T, sub: string): Promise<T> {
    const ns = obj.metadata.namespace;
    const name = obj.metadata.name ?? "";
    return (await this.#call({
      method: "PUT",
      path: objectPath(res, ns, name) + sub,
      body: { ...obj, apiVersion: res.apiVersion, kind: res.kind },
      what: `update${sub} ${res.plural} ${key(ns, name)}`,
    })) as T;
  }

  async #patch<T extends KubeObject>(
    res: Resource<T>,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    type: PatchType,
    sub: string,
  ): Promise<T> {
    return (await this.#call({
      method: "PATCH",
      path: objectPath(res, namespace, name) + sub,
      body: patch,
      contentType: PATCH_CONTENT_TYPE[type],
      what: `patch${sub} ${res.plural} ${key(namespace, name)}`,
    })) as T;
  }

  #url(path: string, query: Query | undefined): URL {
    const base = this.#conn.server;
    const url = new URL(base.pathname.replace(/\/$/, "") + path, base);
    for (const [k, v] of Object.entries(query ?? {}))
      if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
    return url;
  }

  async #call(call: Call): Promise<unknown> {
    const idempotent = call.method === "GET" || call.method === "PUT" || call.method === "DELETE";
    for (let attempt = 0; ; attempt++) {
      let failure: KubeApiError;
      try {
        return await this.#once(call);
      } catch (err) {
        if (!(err instanceof KubeApiError)) throw err;
        failure = err;
      }
      // A 401 after a token rotated: drop the cached credential and ask once more (the
      // server refused before doing anything, so any verb may repeat).
      if (failure instanceof UnauthorizedError && attempt === 0 && this.#conn.invalidate) {
        this.#conn.invalidate();
        continue;
      }
      const retriable =
        failure instanceof TooManyRequestsError ||
        (idempotent && (failure instanceof ServerError || failure instanceof ConnectionError)) ||
        (failure instanceof ConnectionError && NOT_SENT.has(errorCode(failure.cause)));
      if (!retriable || attempt >= this.#retry.retries || call.signal?.aborted) throw failure;
      const delay = Math.max(
        backoffDelay(attempt, this.#retry.baseDelayMs, this.#retry.maxDelayMs),
        failure instanceof TooManyRequestsError ? Math.min(failure.retryAfterMs ?? 0, 60_000) : 0,
      );
      this.#logger?.debug(
        { what: call.what, attempt: attempt + 1, delayMs: delay, err: failure.message },
        "retrying Kubernetes API call",
      );
      await sleep(delay, call.signal);
    }
  }

  async #once(call: Call): Promise<unknown> {
    const url = this.#url(call.path, call.query);
    const headers: Record<string, string> = {
      ...(await this.#conn.headers()),
      accept: "application/json",
      "user-agent": this.#userAgent,
    };
    let body: string | undefined;
    if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      headers["content-type"] = call.contentType ?? "application/json";
    }
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = call.signal ? AbortSignal.any([call.signal, timeout]) : timeout;
    let response: Dispatcher.ResponseData;
    let text: string;
    try {
      response = await this.#conn.dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: call.method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal,
      });
      text = await response.body.text();
    } catch (err) {
      throw new ConnectionError(`${call.what}: ${describe(err)}`, err);
    }
    const parsed = tryJson(text);
    if (response.statusCode >= 200 && response.statusCode < 300) return parsed;
    throw errorFromResponse(response.statusCode, parsed, header(response.headers, "retry-after"), call.what);
  }
}

function key(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

function tryJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { message: text.slice(0, 500) };
  }
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function errorCode(err: unknown): string {
  if (typeof err !== "object" || err === null) return "";
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" ? code : "";
}

function describe(err: unknown): string {
  if (err instanceof undiciErrors.UndiciError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return errorCode(err) ? `${errorCode(err)}: ${err.message}` : err.message;
  return String(err);
}
