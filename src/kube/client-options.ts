import type { Logger } from "pino";
import type { Clock } from "../util/clock.ts";
import type { KubeConnection } from "./connection.ts";
import type { DeleteOptions } from "./core-types.ts";

// The options of the KubeClient's calls (src/kube/client.ts re-exports them).

/** Every call takes a signal: aborting it ends the call at once, waiting retries included. */
export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export interface ListOptions extends CallOptions {
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  limit?: number | undefined;
  continue?: string | undefined;
  resourceVersion?: string | undefined;
  /**
   * Ask for metadata only (PartialObjectMetadataList): the items then have metadata but no
   * spec or status — unless the server cannot answer so, when they are the full objects.
   */
  metadataOnly?: boolean | undefined;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
  continue: string | undefined;
}

export interface WatchOptions extends CallOptions {
  namespace?: string | undefined;
  labelSelector?: string | undefined;
  resourceVersion?: string | undefined;
  allowWatchBookmarks?: boolean | undefined;
  timeoutSeconds?: number | undefined;
  /** As ListOptions': events carry PartialObjectMetadata, or full objects from a server without it. */
  metadataOnly?: boolean | undefined;
}

export type PatchType = "merge" | "json";

export type DeleteCallOptions = DeleteOptions & CallOptions;

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
  /** Per-attempt deadline for non-watch calls. */
  requestTimeoutMs?: number;
  /**
   * Client-side rate limit of every request but watches (--kube-api-qps/--kube-api-burst);
   * omitted: none. Lease calls get a bucket of their own (client.ts).
   */
  rateLimit?: { qps: number; burst: number } | undefined;
  clock?: Clock;
  random?: () => number;
}
