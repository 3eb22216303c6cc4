// client-node's patch content types: a module of constants with no imports of its own.
import { PatchStrategy } from "@kubernetes/client-node/dist/patch.js";
import type { TransportOptions } from "../util/transport/transport.ts";
import type { PatchType } from "./client-options.ts";

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
}

/**
 * `path` under the server's URL, which may carry a path of its own (a proxy's, `kubectl
 * proxy --api-prefix`); unset and empty query values are left out.
 */
export function apiUrl(server: URL, path: string, query: Query | undefined): URL {
  const url = new URL(server.pathname.replace(/\/$/, "") + path, server);
  for (const [k, v] of Object.entries(query ?? {}))
    if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
  return url;
}

/** The transport request of a call: JSON accepted, a content type only when there is a body. */
export function transportRequest(
  method: Method,
  url: URL,
  userAgent: string,
  body?: string,
  contentType?: string,
  signal?: AbortSignal,
): TransportOptions {
  return {
    origin: url.origin,
    path: url.pathname + url.search,
    method,
    headers: {
      accept: "application/json",
      "user-agent": userAgent,
      ...(contentType === undefined ? {} : { "content-type": contentType }),
    },
    ...(body === undefined ? {} : { body }),
    ...(signal ? { signal } : {}),
  };
}

/** `namespace/name`, or `name` for a cluster-scoped object (error messages). */
export function objectName(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}
