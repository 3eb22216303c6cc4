// client-node's patch content types: a module of constants with no imports of its own.
import { PatchStrategy } from "@kubernetes/client-node/dist/patch.js";
import type { TransportOptions } from "../util/transport/transport.ts";
import type { PatchType } from "./client-options.ts";
import { DOT_SEGMENT, type Target } from "../util/transport/target.ts";

export const PATCH_CONTENT_TYPE: Record<PatchType, PatchStrategy> = {
  merge: PatchStrategy.MergePatch,
  json: PatchStrategy.JsonPatch,
};

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
export type Query = Record<string, string | number | boolean | undefined>;

/** One REST call of the client, before it becomes a transport request. */
export interface Call {
  method: Method;
  path: string;
  query?: Query;
  body?: unknown;
  contentType?: string;
  /** What the call was, for error messages: "get cloudinstances default/a". */
  what: string;
  signal?: AbortSignal | undefined;
  /** false: the caller does not use a successful answer, so it is not parsed. */
  read?: boolean;
  /** Objects as metadata only (list and get): ACCEPT_METADATA_LIST or ACCEPT_METADATA. */
  accept?: string | undefined;
}

/**
 * Objects as `meta.k8s.io/v1` PartialObjectMetadata: name, namespace, uid, labels, versions —
 * no spec or status (client-go's metadata client asks the same way). For a caller that reads
 * only metadata: a fraction of the bytes to send and parse. A server that cannot answer so
 * falls back on the plain JSON listed second (the full objects), so the caller must take both.
 */
export const ACCEPT_METADATA =
  "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json";
export const ACCEPT_METADATA_LIST =
  "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json";

/**
 * Paths the URL parser leaves as they are: the client's own (names through
 * encodeURIComponent) always are. Anything else — a dot segment ("..", "%2e"), a character the
 * parser would encode or treat as a separator — goes through the parser as before.
 */
const PLAIN_PATH = /^\/[\w\-.~%!$&'()*+,;=:@/]*$/;

/**
 * Each server URL's origin and path prefix, read once: URL getters serialise on every read.
 * Keyed by the URL object a connection holds for its lifetime (never mutated), so clients of
 * different servers cannot see each other's entries.
 */
const bases = new WeakMap<URL, { origin: string; prefix: string }>();

function base(server: URL): { origin: string; prefix: string } {
  let b = bases.get(server);
  if (b === undefined) {
    b = { origin: server.origin, prefix: server.pathname.replace(/\/$/, "") };
    bases.set(server, b);
  }
  return b;
}

/**
 * `path` under the server's URL, which may carry a path of its own (a proxy's, `kubectl
 * proxy --api-prefix`); unset and empty query values are left out. Plain paths are joined as
 * strings: a URL parsed and serialised per API call was ~1% of the operator's CPU (bench,
 * operator-bound), for the same result.
 */
export function apiUrl(server: URL, path: string, query: Query | undefined): Target {
  const { origin, prefix } = base(server);
  if (!PLAIN_PATH.test(path) || DOT_SEGMENT.test(path)) {
    const url = new URL(prefix + path, server);
    for (const [k, v] of Object.entries(query ?? {}))
      if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
    return { origin: url.origin, path: url.pathname + url.search };
  }
  const target = { origin, path: prefix + path };
  if (query === undefined) return target;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") params.set(k, String(v));
  const search = params.toString();
  if (search !== "") target.path += `?${search}`;
  return target;
}

/** What a transport request carries besides its method and target. */
export interface RequestParts {
  body?: string | undefined;
  contentType?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Default: plain JSON. */
  accept?: string | undefined;
}

/** The transport request of a call: JSON accepted, a content type only when there is a body. */
export function transportRequest(
  method: Method,
  target: Target,
  userAgent: string,
  parts: RequestParts = {},
): TransportOptions {
  const { body, contentType, signal } = parts;
  return {
    origin: target.origin,
    path: target.path,
    method,
    headers: {
      accept: parts.accept ?? "application/json",
      "user-agent": userAgent,
      ...(contentType === undefined ? {} : { "content-type": contentType }),
    },
    // reset: false keeps the connection after a DELETE, whose DeleteOptions body undici
    // otherwise answers by closing the socket (a body on a method not meant to carry one):
    // the API server reads that body as client-go sends it, and a new TCP and TLS handshake
    // for every delete (a template scaled down, Leases, Secrets) was the cost.
    ...(body === undefined ? {} : { body, reset: false }),
    ...(signal ? { signal } : {}),
  };
}

/** `namespace/name`, or `name` for a cluster-scoped object (error messages). */
export function objectName(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}
