import type { Logger } from "pino";
import { stripUnread } from "../runtime/predicates.ts";
import { Informer } from "../runtime/informer.ts";
import type { IndexFunc } from "../runtime/store.ts";
import type { KubeClient } from "../../kube/client.ts";
import type { AnyObject } from "../../kube/object.ts";
import type { Resource } from "../../kube/resources.ts";
import type { Clock } from "../../util/clock.ts";
import type { ManagerConfig } from "../manager.ts";

export interface CacheOptions<T> {
  indexes?: Record<string, IndexFunc<T>>;
  /**
   * Whether `--label-selector` filters this cache. Defaults to true for the operator's own
   * kinds and false for core kinds (Secrets do not carry the operator's labels).
   */
  useLabelSelector?: boolean;
  /** A selector of this cache's own, whatever `--label-selector` says (credentials Secrets opt in with a label). */
  labelSelector?: string;
}

export interface CacheSetDeps {
  config: Pick<ManagerConfig, "namespaces" | "labelSelector">;
  kube: KubeClient;
  logger: Logger;
  clock: Clock;
  random?: (() => number) | undefined;
  watchTimeoutSeconds?: { min: number; max: number } | undefined;
}

/**
 * The manager's shared caches, one informer per kind (controller-runtime's cluster cache):
 * controllers of the same kind share one list+watch. Started together, stopped together.
 */
export class CacheSet {
  readonly #d: CacheSetDeps;
  readonly #caches = new Map<string, Informer<AnyObject>>();
  readonly #stop = new AbortController();
  #runs: Promise<void>[] = [];

  constructor(deps: CacheSetDeps) {
    this.#d = deps;
  }

  get size(): number {
    return this.#caches.size;
  }

  /** The cache of a kind, if one was added. */
  get<T extends AnyObject>(resource: Resource<T>): Informer<T> | undefined {
    return this.#caches.get(idOf(resource)) as Informer<T> | undefined;
  }

  add<T extends AnyObject>(resource: Resource<T>, opts: CacheOptions<T>): Informer<T> {
    const c = this.#d.config;
    const useSelector = opts.useLabelSelector ?? resource.group !== "";
    const informer = new Informer<T>({
      client: this.#d.kube,
      resource,
      namespaces: c.namespaces,
      labelSelector: opts.labelSelector ?? (useSelector ? c.labelSelector : undefined),
      ...(opts.indexes ? { indexes: opts.indexes } : {}),
      logger: this.#d.logger,
      clock: this.#d.clock,
      ...(this.#d.random ? { random: this.#d.random } : {}),
      // No cache-wide resync: it would reconcile every object in the same instant. Each
      // reconciler requeues its own object at --resync-period, jittered, which spreads the
      // load and honours the per-object poll-interval annotation.
      resyncMs: 0,
      transform: stripUnread,
      ...(this.#d.watchTimeoutSeconds ? { watchTimeoutSeconds: this.#d.watchTimeoutSeconds } : {}),
    });
    this.#caches.set(idOf(resource), informer as unknown as Informer<AnyObject>);
    return informer;
  }

  /** Every cache has completed its first list. */
  hasSynced(): boolean {
    for (const c of this.#caches.values()) if (!c.hasSynced()) return false;
    return true;
  }

  /** Plural names of the caches still waiting for their first list (for /readyz). */
  pending(): string[] {
    return [...this.#caches.values()].filter((i) => !i.hasSynced()).map((i) => i.resource.plural);
  }

  /** Starts every cache's list+watch; they run until `stop`. A cache that fails is logged, not fatal. */
  start(): void {
    this.#runs = [...this.#caches.values()].map((inf) =>
      inf.run(this.#stop.signal).catch((err: unknown) => {
        this.#d.logger.error({ err, cache: inf.resource.plural }, "cache stopped with an error");
      }),
    );
  }

  /** True once every cache synced; false when `signal` aborted first. */
  async waitForSync(signal: AbortSignal): Promise<boolean> {
    const synced = await Promise.all([...this.#caches.values()].map((inf) => inf.waitForSync(signal)));
    return synced.every(Boolean) && !signal.aborted;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all(this.#runs);
  }
}

function idOf<T extends AnyObject>(resource: Resource<T>): string {
  return `${resource.group}/${resource.plural}`;
}
