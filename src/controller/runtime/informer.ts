import type { Logger } from "pino";
import type { KubeClient } from "../../kube/client.ts";
import type { AnyObject } from "../../kube/object.ts";
import type { Resource } from "../../kube/resources.ts";
import type { Clock } from "../../util/clock.ts";
import type { BackoffPolicy } from "./backoff-manager.ts";
import { Reflector, type ReflectorSink, type ScopeOptions } from "./reflector.ts";
import { Store, type IndexFunc } from "./store.ts";

/** Callbacks for cache changes. Exceptions are caught and logged per handler. */
export interface EventHandler<T> {
  onAdd?(obj: T): void;
  onUpdate?(old: T, obj: T): void;
  onDelete?(obj: T): void;
}

export interface InformerOptions<T extends AnyObject> {
  client: KubeClient;
  resource: Resource<T>;
  /** Empty = all namespaces (one watch); otherwise one list+watch per namespace. */
  namespaces: readonly string[];
  labelSelector?: string | undefined;
  indexes?: Record<string, IndexFunc<T>>;
  logger: Logger;
  clock: Clock;
  random?: () => number;
  /** Applied to every object before it is cached. */
  transform?: ((obj: T) => T) | undefined;
  /** Re-delivers every cached object as an update this often (jittered ±10 %); 0 = never. */
  resyncMs?: number;
  backoff?: BackoffPolicy;
  pageSize?: number;
  watchTimeoutSeconds?: { min: number; max: number };
  /**
   * No list+watch of its own: the cache is filled by sources added while it runs
   * (`startSource`), one per held shard with --shard-watch=labels. Synced from the start.
   */
  dynamic?: boolean;
}

/** A list+watch started while the cache runs: its own selector, and the objects it owns. */
export interface SourceOptions<T> {
  /** Added to the cache's own selector. */
  labelSelector: string;
  scope: ScopeOptions<T>;
}

interface Source<T extends AnyObject> {
  stop: AbortController;
  scope: ScopeOptions<T>;
  runs: Promise<void>;
}

/**
 * A shared, indexed cache of one kind: reflectors fill the store, handlers hear every change.
 * Reads (`get`, `list`, `byIndex`) never touch the API server.
 */
export class Informer<T extends AnyObject> {
  readonly resource: Resource<T>;
  readonly store: Store<T>;
  readonly #o: InformerOptions<T>;
  readonly #reflectors: Reflector<T>[];
  readonly #handlers: EventHandler<T>[] = [];
  readonly #logger: Logger;
  #syncWaiters: (() => void)[] = [];
  #started = false;
  /** While it runs: the signal dynamic sources stop on. */
  #runSignal: AbortSignal | undefined;
  readonly #sources = new Map<string, Source<T>>();

  constructor(opts: InformerOptions<T>) {
    this.#o = opts;
    this.resource = opts.resource;
    this.store = new Store<T>(opts.indexes ?? {});
    this.#logger = opts.logger.child({ cache: opts.resource.plural });
    this.#reflectors =
      opts.dynamic === true
        ? []
        : this.#newReflectors(opts.labelSelector, undefined, () => {
            this.#checkSynced();
          });
  }

  #newReflectors(
    labelSelector: string | undefined,
    scope: ScopeOptions<T> | undefined,
    onListed: () => void,
  ): Reflector<T>[] {
    const opts = this.#o;
    const sink: ReflectorSink<T> = {
      onAdd: (obj) => {
        this.#dispatch("add", (h) => h.onAdd?.(obj));
      },
      onUpdate: (old, obj) => {
        this.#dispatch("update", (h) => h.onUpdate?.(old, obj));
      },
      onDelete: (obj) => {
        this.#dispatch("delete", (h) => h.onDelete?.(obj));
      },
      onListed,
    };
    const namespaces =
      opts.namespaces.length === 0 || !opts.resource.namespaced ? [undefined] : opts.namespaces;
    return namespaces.map(
      (namespace) =>
        new Reflector<T>({
          client: opts.client,
          resource: opts.resource,
          namespace,
          labelSelector,
          store: this.store,
          sink,
          logger: this.#logger.child(namespace === undefined ? {} : { namespace }),
          clock: opts.clock,
          ...(opts.random ? { random: opts.random } : {}),
          ...(opts.backoff ? { backoff: opts.backoff } : {}),
          ...(opts.pageSize ? { pageSize: opts.pageSize } : {}),
          ...(opts.watchTimeoutSeconds ? { watchTimeoutSeconds: opts.watchTimeoutSeconds } : {}),
          transform: opts.transform,
          ...(scope ? { scope } : {}),
        }),
    );
  }

  /**
   * Starts a list+watch of `opts.labelSelector` (with the cache's own) into this cache;
   * resolves true once its first list is in the store (so that what it brought can be
   * enqueued), false if it was stopped or the cache stopped first. The id must be free.
   */
  startSource(id: string, opts: SourceOptions<T>): Promise<boolean> {
    const runSignal = this.#runSignal;
    if (runSignal === undefined || runSignal.aborted)
      throw new SourceError(`cache for ${this.resource.plural} is not running: no source can start`);
    if (this.#sources.has(id)) throw new SourceError(`source ${id} of ${this.resource.plural} already runs`);
    const base = this.#o.labelSelector;
    const selector = base === undefined || base === "" ? opts.labelSelector : `${base},${opts.labelSelector}`;
    const stop = new AbortController();
    const signal = AbortSignal.any([runSignal, stop.signal]);
    let resolveSynced: (ok: boolean) => void = () => undefined;
    const synced = new Promise<boolean>((resolve) => {
      resolveSynced = resolve;
    });
    const reflectors: Reflector<T>[] = this.#newReflectors(selector, opts.scope, () => {
      if (reflectors.every((r) => r.hasSynced)) resolveSynced(true);
    });
    const runs = Promise.all(
      reflectors.map((r) =>
        r.run(signal).catch((err: unknown) => {
          this.#logger.error({ err, source: id }, "cache source stopped with an error");
        }),
      ),
    ).then(() => {
      resolveSynced(false);
    });
    this.#sources.set(id, { stop, scope: opts.scope, runs });
    return synced;
  }

  /**
   * Stops a source and drops the objects it owned from the cache (handlers hear a delete, as
   * when the object goes: indexes and metrics follow; a controller that hears it finds the key
   * gone). Resolves with how many were dropped, once nothing of it can write any more.
   */
  async stopSource(id: string): Promise<number> {
    const source = this.#sources.get(id);
    if (!source) return 0;
    source.stop.abort();
    await source.runs;
    this.#sources.delete(id);
    let dropped = 0;
    for (const key of this.store.keys()) {
      const obj = this.store.getByKey(key);
      if (obj === undefined || !source.scope.inScope(obj)) continue;
      this.store.delete(key);
      dropped++;
      this.#dispatch("evict", (h) => h.onDelete?.(obj));
    }
    return dropped;
  }

  /** Ids of the sources running now. */
  get sources(): string[] {
    return [...this.#sources.keys()];
  }

  addHandler(handler: EventHandler<T>): void {
    this.#handlers.push(handler);
    // A handler added after the first list still hears about every object, like client-go.
    if (this.hasSynced()) for (const obj of this.store.list()) this.#safe("add", () => handler.onAdd?.(obj));
  }

  addIndexes(indexes: Record<string, IndexFunc<T>>): void {
    this.store.addIndexers(indexes);
  }

  get(namespace: string, name: string): T | undefined {
    return this.store.get(this.resource.namespaced ? namespace : undefined, name);
  }

  list(namespace?: string): T[] {
    return this.store.list(namespace);
  }

  byIndex(indexName: string, value: string): T[] {
    return this.store.byIndex(indexName, value);
  }

  hasSynced(): boolean {
    return this.#reflectors.every((r) => r.hasSynced);
  }

  /** Resolves true once synced, false if `signal` aborts first. */
  waitForSync(signal: AbortSignal): Promise<boolean> {
    if (this.hasSynced()) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        resolve(false);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#syncWaiters.push(() => {
        signal.removeEventListener("abort", onAbort);
        resolve(true);
      });
    });
  }

  /** Number of full lists done by all reflectors (for tests and diagnostics). */
  get listCount(): number {
    return this.#reflectors.reduce((n, r) => n + r.listCount, 0);
  }

  /** Runs the reflectors (and the resync timer) until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#started) throw new Error(`cache for ${this.resource.plural} already started`);
    this.#started = true;
    this.#runSignal = signal;
    const stopResync = this.#startResync(signal);
    try {
      await Promise.all(
        this.#reflectors.map(async (r) => {
          await r.run(signal);
        }),
      );
      if (this.#o.dynamic === true) {
        // Its sources run until they are stopped or this signal aborts.
        await aborted(signal);
        await Promise.all([...this.#sources.values()].map((s) => s.runs));
      }
    } finally {
      stopResync();
    }
  }

  #checkSynced(): void {
    if (this.#syncWaiters.length === 0 || !this.hasSynced()) return;
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const w of waiters) w();
  }

  #startResync(signal: AbortSignal): () => void {
    const period = this.#o.resyncMs ?? 0;
    if (period <= 0) return () => undefined;
    const clock = this.#o.clock;
    const random = this.#o.random ?? Math.random;
    let handle: NodeJS.Timeout | undefined;
    const schedule = (): void => {
      if (signal.aborted) return;
      handle = clock.setTimeout(
        () => {
          if (this.hasSynced()) {
            for (const obj of this.store.list()) this.#dispatch("resync", (h) => h.onUpdate?.(obj, obj));
          }
          schedule();
        },
        Math.round(period * (0.9 + random() * 0.2)),
      );
    };
    schedule();
    return () => {
      if (handle) clock.clearTimeout(handle);
    };
  }

  #dispatch(what: string, call: (h: EventHandler<T>) => void): void {
    for (const h of this.#handlers)
      this.#safe(what, () => {
        call(h);
      });
  }

  #safe(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#logger.error({ err, event: what }, "cache event handler threw; continuing");
    }
  }
}

export class SourceError extends Error {
  override readonly name = "SourceError";
  readonly code = "ERR_CACHE_SOURCE";
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
