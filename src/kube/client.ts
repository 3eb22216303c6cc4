import type { Dispatcher } from "undici";
import { bodyText, send, type Answer } from "../util/transport/transport.ts";
import type {
  CallOptions,
  DeleteCallOptions,
  KubeClientOptions,
  ListOptions,
  ListResult,
  PatchType,
  WatchOptions,
} from "./client-options.ts";
import type { KubeObject, ListMeta, WatchEvent } from "./core-types.ts";
import type { KubeConnection } from "./connection.ts";
import {
  ACCEPT_METADATA,
  ACCEPT_METADATA_LIST,
  apiUrl,
  objectName,
  PATCH_CONTENT_TYPE,
  transportRequest,
  type Call,
} from "./request.ts";
import { answerError, failure, parseBody } from "./responses.ts";
import { collectionPath, objectPath, type Resource } from "./resources.ts";
import { kubeTransports } from "./transports.ts";
import { watchStream } from "./watch-stream.ts";

export type { WatchEvent, WatchEventType } from "./core-types.ts";
export type * from "./client-options.ts";

const LEASES = "/apis/coordination.k8s.io/";

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
    const transports = kubeTransports(opts);
    this.#requests = transports.requests;
    this.#leases = transports.leases;
    this.#watches = transports.watches;
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
      what: `get ${res.plural} ${objectName(namespace, name)}`,
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
      accept: opts.metadataOnly === true ? ACCEPT_METADATA_LIST : undefined,
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
    const url = apiUrl(this.#conn.server, collectionPath(res, opts.namespace), {
      watch: true,
      labelSelector: opts.labelSelector,
      resourceVersion: opts.resourceVersion,
      allowWatchBookmarks: opts.allowWatchBookmarks,
      timeoutSeconds: opts.timeoutSeconds,
    });
    const request = transportRequest("GET", url, this.#userAgent, {
      signal: opts.signal,
      accept: opts.metadataOnly === true ? ACCEPT_METADATA : undefined,
    });
    yield* watchStream<T>(this.#watches, request, `watch ${res.plural}`, opts.signal);
  }

  async create<T extends KubeObject>(res: Resource<T>, obj: T, opts: CallOptions = {}): Promise<T> {
    return (await this.#create(res, obj, opts, true)) as T;
  }

  /** create for a caller that does not use the answer (not parsed, as updateStatusUnread's). */
  async createUnread<T extends KubeObject>(res: Resource<T>, obj: T, opts: CallOptions = {}): Promise<void> {
    await this.#create(res, obj, opts, false);
  }

  #create<T extends KubeObject>(
    res: Resource<T>,
    obj: T,
    opts: CallOptions,
    read: boolean,
  ): Promise<unknown> {
    const ns = obj.metadata.namespace;
    return this.#call({
      method: "POST",
      path: collectionPath(res, ns),
      body: { ...obj, apiVersion: res.apiVersion, kind: res.kind },
      what: `create ${res.plural} ${objectName(ns, obj.metadata.name ?? obj.metadata.generateName ?? "")}`,
      signal: opts.signal,
      read,
    });
  }

  /** PUT; a stale metadata.resourceVersion answers ConflictError. */
  async update<T extends KubeObject>(res: Resource<T>, obj: T, opts: CallOptions = {}): Promise<T> {
    return this.#put(res, obj, "", opts);
  }

  async updateStatus<T extends KubeObject>(res: Resource<T>, obj: T, opts: CallOptions = {}): Promise<T> {
    return this.#put(res, obj, "/status", opts);
  }

  /**
   * updateStatus for a caller that does not use the answer: the object the server sends back
   * is not parsed (a failure's answer still is, for its error).
   */
  async updateStatusUnread<T extends KubeObject>(
    res: Resource<T>,
    obj: T,
    opts: CallOptions = {},
  ): Promise<void> {
    await this.#put(res, obj, "/status", opts, false);
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

  /** patch for a caller that does not use the answer (not parsed, as updateStatusUnread's). */
  async patchUnread(
    res: Resource,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    type: PatchType = "merge",
    opts: CallOptions = {},
  ): Promise<void> {
    await this.#patch(res, { namespace, name, patch, type, sub: "", signal: opts.signal, read: false });
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
      what: `delete ${res.plural} ${objectName(namespace, name)}`,
      signal: opts.signal,
    });
  }

  async #put<T extends KubeObject>(
    res: Resource<T>,
    obj: T,
    sub: string,
    opts: CallOptions,
    read = true,
  ): Promise<T> {
    const ns = obj.metadata.namespace;
    const name = obj.metadata.name ?? "";
    return (await this.#call({
      method: "PUT",
      path: objectPath(res, ns, name) + sub,
      body: { ...obj, apiVersion: res.apiVersion, kind: res.kind },
      what: `update${sub} ${res.plural} ${objectName(ns, name)}`,
      signal: opts.signal,
      read,
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
      read?: boolean;
    },
  ): Promise<T> {
    return (await this.#call({
      method: "PATCH",
      path: objectPath(res, p.namespace, p.name) + p.sub,
      body: p.patch,
      contentType: PATCH_CONTENT_TYPE[p.type],
      what: `patch${p.sub} ${res.plural} ${objectName(p.namespace, p.name)}`,
      signal: p.signal,
      ...(p.read === false ? { read: false } : {}),
    })) as T;
  }

  async #call(call: Call): Promise<unknown> {
    const url = apiUrl(this.#conn.server, call.path, call.query);
    const body = call.body === undefined ? undefined : JSON.stringify(call.body);
    const contentType = body === undefined ? undefined : (call.contentType ?? "application/json");
    let response: Answer;
    try {
      const transport = call.path.startsWith(LEASES) ? this.#leases : this.#requests;
      response = await send(
        transport,
        transportRequest(call.method, url, this.#userAgent, {
          body,
          contentType,
          signal: call.signal,
          accept: call.accept,
        }),
      );
    } catch (err) {
      throw failure(call.what, err);
    }
    const ok = response.statusCode >= 200 && response.statusCode < 300;
    // An object nobody reads is not parsed: a status write's answer is the whole object.
    if (ok && call.read === false) return undefined;
    const parsed = parseBody(bodyText(response.body));
    if (ok) return parsed;
    throw answerError(response.statusCode, parsed, response.headers, call.what);
  }
}
