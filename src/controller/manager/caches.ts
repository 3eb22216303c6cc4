import type { Logger } from "pino";
import { stripUnread } from "../runtime/predicates.ts";
import { Informer } from "../runtime/informer.ts";
import { ShardWatch } from "../runtime/shard-watch.ts";
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
  /** With --shard-watch=labels, holds only the objects of the shards this replica holds. */
  shardWatched?: boolean;
  /** A second cache of a kind (e.g. one with `addLabelSelector`), found by this name. */
  name?: string;
  /** ANDed with the cache's selector. */
  addLabelSelector?: string;
}

export interface CacheSetDeps {
  config: Pick<ManagerConfig, "namespaces" | "labelSelector">;
  kube: KubeClient;
  logger: Logger;
  clock: Clock;
  random?: (() => number) | undefined;
  watchTimeoutSeconds?: { min: number; max: number } | undefined;
  /** --shard-watch=labels with S shards; undefined: every cache watches all of its kind. */
  shardWatch?: { shards: number } | undefined;
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
  #shardWatch: ShardWatch<AnyObject> | undefined;

  constructor(deps: CacheSetDeps) {
    this.#d = deps;
  }

  get size(): number {
    return this.#caches.size;
  }

  /** The cache of a kind (or its cache named `name`), if one was added. */
  get<T extends AnyObject>(resource: Resource<T>, name?: string): Informer<T> | undefined {
    return this.#caches.get(idOf(resource, name)) as Informer<T> | undefined;
  }

  /** --shard-watch=labels: what fills the shard-watched cache as shards come and go. */
  get shardWatch(): ShardWatch<AnyObject> | undefined {
    return this.#shardWatch;
  }

  add<T extends AnyObject>(resource: Resource<T>, opts: CacheOptions<T>): Informer<T> {
    const c = this.#d.config;
    const useSelector = opts.useLabelSelector ?? resource.group !== "";
    const own = opts.labelSelector ?? (useSelector ? c.labelSelector : undefined);
    const selector = [own, opts.addLabelSelector].filter((x) => x !== undefined && x !== "").join(",");
    const labelSelector = selector === "" ? undefined : selector;
    const sharded = opts.shardWatched === true ? this.#d.shardWatch : undefined;
    const informer = new Informer<T>({
      client: this.#d.kube,
      resource,
      namespaces: c.namespaces,
      labelSelector,
      // Filled shard by shard by the ShardWatch below, not by a list+watch of its own.
      dynamic: sharded !== undefined,
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
    this.#caches.set(idOf(resource, opts.name), informer as unknown as Informer<AnyObject>);
    if (sharded)
      this.#shardWatch = new ShardWatch<AnyObject>({
        informer: informer as unknown as Informer<AnyObject>,
        client: this.#d.kube,
        resource,
        shards: sharded.shards,
        namespaces: c.namespaces,
        labelSelector,
        logger: this.#d.logger.child({ component: "shard-watch" }),
        clock: this.#d.clock,
        ...(this.#d.random ? { random: this.#d.random } : {}),
        ...(this.#d.watchTimeoutSeconds ? { watchTimeoutSeconds: this.#d.watchTimeoutSeconds } : {}),
      });
    return informer;
  }

  /**
   * Every object of a kind in the caches' scope (their namespaces and --label-selector), read
   * from the API server page by page: for what must see every shard's objects while the cache
   * holds only this replica's (--shard-watch=labels).
   */
  async listAll<T extends AnyObject>(
    resource: Resource<T>,
    opts: { namespace?: string | undefined; signal: AbortSignal },
  ): Promise<T[]> {
    const c = this.#d.config;
    const namespaces =
      opts.namespace !== undefined
        ? [opts.namespace]
        : c.namespaces.length === 0
          ? [undefined]
          : c.namespaces;
    const out: T[] = [];
    for (const namespace of namespaces) {
      const { items } = await this.#d.kube.listAll(resource, {
        namespace,
        labelSelector: c.labelSelector,
        limit: 500,
        signal: opts.signal,
      });
      out.push(...items);
    }
    return out;
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
    const shardWatch = this.#shardWatch;
    if (shardWatch)
      this.#runs.push(
        shardWatch.run(this.#stop.signal).catch((err: unknown) => {
          this.#d.logger.error({ err }, "shard labeller stopped with an error");
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

function idOf<T extends AnyObject>(resource: Resource<T>, name?: string): string {
  return `${resource.group}/${resource.plural}${name === undefined ? "" : `#${name}`}`;
}
