import type { Dispatcher } from "undici";
import { systemClock } from "../util/clock.ts";
import {
  buildTransport,
  debugLog,
  RequestLimiter,
  type TransportLayers,
} from "../util/transport/transport.ts";
import type { KubeClientOptions } from "./client-options.ts";

/** The client's three transports: ordinary requests, Lease calls, watches. */
export interface KubeTransports {
  requests: Dispatcher;
  /** Lease calls: leader election must not queue behind a backlog of writes. */
  leases: Dispatcher;
  watches: Dispatcher;
}

/**
 * The transports with the kube client's retry policy (see KubeClient), its rate limits and
 * pools; watches get neither retries nor a limit.
 */
export function kubeTransports(opts: KubeClientOptions): KubeTransports {
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
  return {
    requests: buildTransport(opts.connection.dispatcher, { ...layers, limiter: limiter() }),
    // And sockets of their own: on the uncapped pool (the watches'), a renewal never waits for
    // one of the 32 ordinary sockets behind requests the bucket already let through (with
    // --shards every replica renews several Leases while it writes the status of thousands).
    leases: buildTransport(opts.connection.watchDispatcher, { ...layers, limiter: limiter() }),
    watches: buildTransport(opts.connection.watchDispatcher, { clock, auth: opts.connection.auth }),
  };
}
