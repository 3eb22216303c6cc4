// client-node's patch content types: a module of constants with no imports of its own.
import { PatchStrategy } from "@kubernetes/client-node/dist/patch.js";
import type { Dispatcher } from "undici";
import { systemClock } from "../util/clock.ts";
import {
  bodyText,
  buildTransport,
  debugLog,
  describeError,
  RequestLimiter,
  send,
  type Answer,
  type TransportLayers,
  type TransportOptions,
} from "../util/transport/transport.ts";
import type {
  CallOptions,
  DeleteCallOptions,
  KubeClientOptions,
  ListOptions,
  ListResult,
  PatchType,
  WatchOptions,
} from "./client-options.ts";
import type { KubeObject, KubeStatus, ListMeta, WatchEvent } from "./core-types.ts";
import type { KubeConnection } from "./connection.ts";
import { ConnectionError, KubeApiError, errorFromResponse } from "./errors.ts";
import { KubeConfigError } from "./kubeconfig-errors.ts";
import { readNdjson } from "./ndjson.ts";
import { collectionPath, objectPath, type Resource } from "./resources.ts";

export type { WatchEvent, WatchEventType } from "./core-types.ts";
export type * from "./client-options.ts";

const PATCH_CONTENT_TYPE: Record<PatchType, PatchStrategy> = {
  merge: PatchStrategy.MergePatch,
  json: PatchStrategy.JsonPatch,
};

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
const LEASES = "/apis/coordination.k8s.io/";
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

/**
 * A small typed REST client for the Kubernetes API on the operator's transport core. Every
 * call is typed by its resource descriptor; every failure is a KubeApiError subclass. The
 * policy is the kube client's own: idempotent calls (GET, PUT, DELETE) repeat on 5xx and
 * connection failures, every verb on 429 and on failures that never reached the server, and
 * once on 401 with fresh credentials. Watches have a pool of their own and are never retried
 * here (the reflector resumes or relists).
 */
export class KubeClient {
  readonly #conn: KubeConnection;
  readonly #requests: Dispatcher;
  /** Lease calls: leader election must not queue behind a backlog of writes. */
  readonly #leases: Dispatcher;
  readonly #watches: Dispatcher;
  readonly #userAgent: string;

  constructor(opts: KubeClientOptions) {
    this.#conn = opts.connection;
    this.#userAgent = opts.userAgent ?? "cloud-instance-operator";
    const clock = opts.clock ?? systemClock;
    const layers: TransportLayers = {
      clock,
      random: opts.random,
      retry: {
        retries: 4,
        baseDelayMs: 200,
        maxDelayMs: 5_000,
        ...opts.retry,
        retryStatus: (status) => status >= 500,
        maxRetryAfterMs: 60_000,
        refreshOn401: true,
      },
      auth: opts.connection.auth,
      deadlineMs: opts.requestTimeoutMs ?? 30_000,
      onAttempt: debugLog(opts.logger, "Kubernetes API request"),
    };
    // client-go's limiter, as a token bucket each request waits on (its signal honoured).
    // Leader election gets a bucket of its own, as client-go's components give it a client of
    // its own: a renewal stuck behind a backlog of status writes would lose the lease. Watches
    // hold a connection for minutes and are not limited at all (client-go neither).
    const limiter = (): RequestLimiter | undefined =>
      opts.rateLimit && new RequestLimiter({ ...opts.rateLimit, maxConcurrent: Infinity, clock });
    this.#requests = buildTransport(opts.connection.dispatcher, { ...layers, limiter: limiter() });
    // And sockets of their own: on the uncapped pool (the watches'), a renewal never waits for
    // one of the 32 ordinary sockets behind requests the bucket already let through (with
    // --shards every replica renews several Leases while it writes the status of thousands).
    this.#leases = buildTransport(opts.connection.watchDispatcher, { ...layers, limiter: limiter() });
    this.#watches = buildTransport(opts.connection.watchDispatcher, { clock, auth: opts.connection.auth });
  }

  get server(): URL {
    return this.#conn.server;
  }

  /**
   * Closes the connection pools (ends open watches), waiting at most `graceMs` for requests in
   * flight; after that every connection is destroyed (an API server that stopped answering
   * must not keep a stopping process alive).
   */
  async close(graceMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      this.#conn.close().then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (!closed) await this.#conn.destroy();
  }

  async get<T extends KubeObject>(
    res: Resource<T>,
    namespace: string | undefined,
    name: string,
    opts: CallOptions = {},
  ): Promise<T> {
    return (await this.#call({
      method: "GET",
      path: objectPath(res, namespace, name),
      what: `get ${res.plural} ${key(namespace, name)}`,
      signal: opts.signal,
    })) as T;
  }

  /** One page. Use `listAll` to follow `continue` tokens. */
  async list<T extends KubeObject>(res: Resource<T>, opts: ListOptions = {}): Promise<ListResult<T>> {
    const body = (await this.#call({
      method: "GET",
      path: collectionPath(res, opts.namespace),
      query: {
        labelSelector: opts.labelSelector,
        limit: opts.limit,
        continue: opts.continue,
        resourceVersion: opts.resourceVersion,
      },
      what: `list ${res.plural}`,
      signal: opts.signal,
    })) as { items?: T[] | null; metadata?: ListMeta };
    const cont = body.metadata?.["continue"];
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
      resourceVersion: opts.resourceVersion,
      allowWatchBookmarks: opts.allowWatchBookmarks,
      timeoutSeconds: opts.timeoutSeconds,
    });
    if (opts.signal?.aborted) return;
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#watches.request(this.#request("GET", url, undefined, undefined, opts.signal));
    } catch (err) {
      if (opts.signal?.aborted) return;
      throw failure(what, err);
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
      throw new ConnectionError(`${what}: stream broken: ${describeError(err)}`, err);
    } finally {
      // An early return by the consumer must release the connection.
      if (!body.destroyed) body.destroy();
    }
  }

  async create<T extends KubeObject>(res: Resource<T>, obj: T, opts: CallOptions = {}): Promise<T> {
    const ns = obj.metadata.namespace;
    return (await this.#call({
      method: "POST",
      path: collectionPath(res, ns),
      body: { ...obj, apiVersion: res.apiVersion, kind: res.kind },
      what: `create ${res.plural} ${key(ns, obj.metadata.name ?? obj.metadata.generateName ?? "")}`,
      signal: opts.signal,
    })) as T;
  }

  /** PUT; a stale metadata.resourceVersion answers ConflictError. */
  async update<T extends KubeObject>(res: Resource<T>, obj: T, opts: CallOptions = {}): Promise<T> {
    return this.#put(res, obj, "", opts);
  }

  async updateStatus<T extends KubeObject>(res: Resource<T>, obj: T, opts: CallOptions = {}): Promise<T> {
    return this.#put(res, obj, "/status", opts);
  }

  async patch<T extends KubeObject>(
    res: Resource<T>,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    type: PatchType = "merge",
    opts: CallOptions = {},
  ): Promise<T> {
    return this.#patch(res, { namespace, name, patch, type, sub: "", signal: opts.signal });
  }

  async patchStatus<T extends KubeObject>(
    res: Resource<T>,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    type: PatchType = "merge",
    opts: CallOptions = {},
  ): Promise<T> {
    return this.#patch(res, { namespace, name, patch, type, sub: "/status", signal: opts.signal });
  }

  /** Resolves with the server's answer (the object while finalizers hold it, or a Status). */
  async delete(
    res: Resource,
    namespace: string | undefined,
    name: string,
    opts: DeleteCallOptions = {},
  ): Promise<unknown> {
    const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
    if (opts.preconditions) body["preconditions"] = opts.preconditions;
    if (opts.propagationPolicy) body["propagationPolicy"] = opts.propagationPolicy;
    return this.#call({
      method: "DELETE",
      path: objectPath(res, namespace, name),
      body,
      what: `delete ${res.plural} ${key(namespace, name)}`,
      signal: opts.signal,
    });
  }

  async #put<T extends KubeObject>(res: Resource<T>, obj: T, sub: string, opts: CallOptions): Promise<T> {
    const ns = obj.metadata.namespace;
    const name = obj.metadata.name ?? "";
    return (await this.#call({
      method: "PUT",
      path: objectPath(res, ns, name) + sub,
      body: { ...obj, apiVersion: res.apiVersion, kind: res.kind },
      what: `update${sub} ${res.plural} ${key(ns, name)}`,
      signal: opts.signal,
    })) as T;
  }

  async #patch<T extends KubeObject>(
    res: Resource<T>,
    p: {
      namespace: string | undefined;
      name: string;
      patch: unknown;
      type: PatchType;
      sub: string;
      signal: AbortSignal | undefined;
    },
  ): Promise<T> {
    return (await this.#call({
      method: "PATCH",
      path: objectPath(res, p.namespace, p.name) + p.sub,
      body: p.patch,
      contentType: PATCH_CONTENT_TYPE[p.type],
      what: `patch${p.sub} ${res.plural} ${key(p.namespace, p.name)}`,
      signal: p.signal,
    })) as T;
  }

  #url(path: string, query: Query | undefined): URL {
    const base = this.#conn.server;
    const url = new URL(base.pathname.replace(/\/$/, "") + path, base);
    for (const [k, v] of Object.entries(query ?? {}))
      if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
    return url;
  }

  #request(
    method: Method,
    url: URL,
    body: string | undefined,
    contentType: string | undefined,
    signal: AbortSignal | undefined,
  ): TransportOptions {
    return {
      origin: url.origin,
      path: url.pathname + url.search,
      method,
      headers: {
        accept: "application/json",
        "user-agent": this.#userAgent,
        ...(contentType === undefined ? {} : { "content-type": contentType }),
      },
      ...(body === undefined ? {} : { body }),
      ...(signal ? { signal } : {}),
    };
  }

  async #call(call: Call): Promise<unknown> {
    const url = this.#url(call.path, call.query);
    const body = call.body === undefined ? undefined : JSON.stringify(call.body);
    const contentType = body === undefined ? undefined : (call.contentType ?? "application/json");
    let response: Answer;
    try {
      const transport = call.path.startsWith(LEASES) ? this.#leases : this.#requests;
      response = await send(transport, this.#request(call.method, url, body, contentType, call.signal));
    } catch (err) {
      throw failure(call.what, err);
    }
    const parsed = tryJson(bodyText(response.body));
    if (response.statusCode >= 200 && response.statusCode < 300) return parsed;
    throw errorFromResponse(response.statusCode, parsed, header(response.headers, "retry-after"), call.what);
  }
}

/** No answer: a credential that could not be obtained stays itself, anything else is a ConnectionError. */
function failure(what: string, err: unknown): Error {
  if (err instanceof KubeConfigError) return err;
  return new ConnectionError(`${what}: ${describeError(err)}`, err);
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
