import type { Logger } from "pino";
import { Controller, type Reconcile } from "../runtime/controller.ts";
import type { Informer } from "../runtime/informer.ts";
import { defaultControllerRateLimiter } from "../runtime/rate-limiter.ts";
import type { AnyObject } from "../../kube/object.ts";
import type { Resource } from "../../kube/resources.ts";
import type { Metrics } from "../../observability/metrics.ts";
import type { Clock } from "../../util/clock.ts";
import type { ManagerConfig } from "../manager.ts";

export interface WatchSpec<U extends AnyObject> {
  resource: Resource<U>;
  /** The kind's cache of this name (CacheOptions.name) instead of its default one. */
  cache?: string;
  /** Keys (`namespace/name`) of the controller's kind to reconcile when `obj` changes. */
  map: (obj: U) => readonly string[];
}

export interface ControllerSpec<T extends AnyObject> {
  name: string;
  for: Resource<T>;
  owns?: Resource[];
  // The watched kinds differ per entry; each entry's map is typed by its own resource.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  watches?: WatchSpec<any>[];
  reconcile: Reconcile;
  /** Filters updates of the `for` kind (e.g. specOrMetadataChanged); all updates when unset. */
  updatePredicate?: (old: T, obj: T) => boolean;
  /** Defaults to --max-concurrent-reconciles. */
  maxConcurrentReconciles?: number;
}

export interface ControllerDeps {
  config: Pick<ManagerConfig, "maxConcurrentReconciles" | "queueQps" | "queueBurst">;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** The manager's shared cache of a kind (created on first use). */
  cache: <U extends AnyObject>(resource: Resource<U>, name?: string) => Informer<U>;
  /** Sharding's gate on each key (see ControllerOptions.admit); unset without shards. */
  admit?: ((key: string) => { signal?: AbortSignal | undefined } | undefined) | undefined;
}

/**
 * A controller for `spec` over the shared caches (controller-runtime's builder): `forCache` is
 * the cache of its own kind; the kinds it owns and watches get theirs, in that order.
 */
export function newController<T extends AnyObject>(
  spec: ControllerSpec<T>,
  forCache: Informer<AnyObject>,
  d: ControllerDeps,
): Controller {
  const c = d.config;
  return new Controller({
    name: spec.name,
    for: forCache,
    owns: (spec.owns ?? []).map((r) => d.cache(r)),
    watches: (spec.watches ?? []).map((w) => ({
      informer: d.cache(w.resource as Resource, w.cache),
      map: w.map as (obj: AnyObject) => readonly string[],
    })),
    reconcile: spec.reconcile,
    updatePredicate: spec.updatePredicate as ((old: AnyObject, obj: AnyObject) => boolean) | undefined,
    maxConcurrentReconciles: spec.maxConcurrentReconciles ?? c.maxConcurrentReconciles,
    rateLimiter: defaultControllerRateLimiter(d.clock, { qps: c.queueQps, burst: c.queueBurst }),
    logger: d.logger,
    metrics: d.metrics,
    clock: d.clock,
    ...(d.admit ? { admit: d.admit } : {}),
  });
}
