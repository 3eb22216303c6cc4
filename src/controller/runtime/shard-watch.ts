/**
 * --shard-watch=labels: a replica lists and watches only the objects of the shards it holds.
 * Each object carries the label `<group>/shard-of-<S>: "<hash(uid) mod S>"`; the key names S,
 * so that after a change of --shards no replica can read an old value as a new one (objects
 * get the new key, the old one is simply ignored). A replica watches, per held shard, the
 * objects with that label value, and — to label new objects — the objects without a valid
 * label of the current S (`<key> notin (0,…,S-1)`: missing or wrong values both). One label
 * write per object lifetime and change of S, never per reconcile; replicas that label the
 * same object write the same value (the UID decides it).
 */
import type { Logger } from "pino";
import { GROUP } from "../../api/group.ts";
import type { KubeClient } from "../../kube/client.ts";
import { isNotFound } from "../../kube/errors.ts";
import { objectKey, type AnyObject } from "../../kube/object.ts";
import type { Resource } from "../../kube/resources.ts";
import type { Clock } from "../../util/clock.ts";
import type { Informer } from "./informer.ts";
import { Reflector } from "./reflector.ts";
import { shardOf } from "./sharding.ts";
import { Store } from "./store.ts";

/** `all`: every replica watches every object (the default); `labels`: only its shards'. */
export const SHARD_WATCH_MODES = ["all", "labels"] as const;
export type ShardWatchMode = (typeof SHARD_WATCH_MODES)[number];

/** The shard label's key for S shards: a qualified name (prefix / name of at most 63 characters). */
export function shardLabelKey(shards: number): string {
  return `${GROUP}/shard-of-${String(shards)}`;
}

/** The label value every replica writes for an object: its shard, in decimal. */
export function shardLabelValue(uid: string, shards: number): string {
  return String(shardOf(uid, shards));
}

/** Selector of the objects labelled into shard `shard`. */
export function shardSelector(shards: number, shard: number): string {
  return `${shardLabelKey(shards)}=${String(shard)}`;
}

/** Selector of the objects without a valid shard label for S (none, or a value not a shard). */
export function unlabelledSelector(shards: number): string {
  const values = Array.from({ length: shards }, (_, i) => String(i)).join(",");
  return `${shardLabelKey(shards)} notin (${values})`;
}

/** Whether `obj` lacks the label value its UID gives it (missing, stale or tampered with). */
export function needsShardLabel(obj: AnyObject, shards: number): boolean {
  const uid = obj.metadata.uid;
  if (uid === undefined) return false;
  return obj.metadata.labels?.[shardLabelKey(shards)] !== shardLabelValue(uid, shards);
}

/** Shard label keys of another S on `obj` (left by replicas that ran with it). */
export function staleShardKeys(obj: AnyObject, shards: number): string[] {
  const current = shardLabelKey(shards);
  const prefix = `${GROUP}/shard-of-`;
  return Object.keys(obj.metadata.labels ?? {}).filter(
    (k) => k !== current && k.startsWith(prefix) && /^\d+$/.test(k.slice(prefix.length)),
  );
}

/**
 * The merge patch that sets the label and removes the `stale` keys of other S (labels only:
 * the rest of the object is not touched).
 */
export function shardLabelPatch(
  uid: string,
  shards: number,
  stale: readonly string[] = [],
): { metadata: { labels: Record<string, string | null> } } {
  const labels: Record<string, string | null> = { [shardLabelKey(shards)]: shardLabelValue(uid, shards) };
  for (const k of stale) labels[k] = null;
  return { metadata: { labels } };
}

export interface ShardWatchOptions<T extends AnyObject> {
  /** The cache the controllers read, made with `dynamic: true`: this fills it shard by shard. */
  informer: Informer<T>;
  client: KubeClient;
  resource: Resource<T>;
  shards: number;
  /** As the cache's: empty = all namespaces. */
  namespaces: readonly string[];
  /** --label-selector, if any: only objects it selects are labelled and watched. */
  labelSelector: string | undefined;
  logger: Logger;
  clock: Clock;
  random?: () => number;
  watchTimeoutSeconds?: { min: number; max: number };
  /** Label writes in flight at most (default LABEL_CONCURRENCY); the rest wait their turn. */
  labelConcurrency?: number;
}

/**
 * Label writes in flight at once. New objects arrive one by one, but a change of S or a
 * shard taken over finds thousands unlabelled at once: unbounded, that is a burst of as many
 * PATCHes at the API server, each holding a listener on the same abort signal.
 */
export const LABEL_CONCURRENCY = 8;

/** An object waiting for its label write. */
interface PendingLabel {
  namespace: string | undefined;
  name: string;
  uid: string;
  always: boolean;
  /** Keys of another S to remove with the same write. */
  stale: string[];
}

/**
 * What the labeller keeps of a not-yet-labelled object: enough to label it. It arrives as
 * PartialObjectMetadata (or whole, from a server that cannot send metadata only), and is kept
 * as an object of the resource's kind.
 */
function slim<T extends AnyObject>(resource: Resource<T>, obj: T): T {
  const m = obj.metadata;
  return {
    apiVersion: resource.apiVersion,
    kind: resource.kind,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      labels: m.labels,
    },
  } as T;
}

/**
 * Fills a dynamic cache with the objects of the shards held (`acquire` / `release`, called by
 * the shard set) and labels the objects of held shards that have no label yet.
 */
export class ShardWatch<T extends AnyObject> {
  readonly #o: ShardWatchOptions<T>;
  /** Not-yet-labelled objects (of every shard: one of ours may be acquired later). */
  readonly #unlabelled: Store<T> = new Store<T>();
  readonly #held = new Set<number>();
  /** Per shard, the last acquire/release: they run one after the other. */
  readonly #chains = new Map<number, Promise<unknown>>();
  /** Keys waiting for or being labelled now (with the UID): one write per object at a time. */
  readonly #labelling = new Map<string, string>();
  /** Waiting, in arrival order (a Map keeps insertion order). */
  readonly #pending = new Map<string, PendingLabel>();
  #inFlight = 0;
  #signal: AbortSignal | undefined;
  #labelled = 0;
  /** No replica of another S is alive: their label keys may go (nobody would write them back). */
  #othersGone = false;

  constructor(opts: ShardWatchOptions<T>) {
    this.#o = opts;
  }

  /** Shards whose objects this replica watches now. */
  get held(): number[] {
    return [...this.#held].sort((a, b) => a - b);
  }

  /** Label writes this replica made (for tests and the bench: one per object, not per reconcile). */
  get labelled(): number {
    return this.#labelled;
  }

  /**
   * Whether replicas of another --shards are all gone (the shard set says so every period).
   * From then on the label keys they left are removed: from every cached object now, from the
   * objects of each shard acquired later, and with the label of each new object.
   */
  set othersGone(gone: boolean) {
    const was = this.#othersGone;
    this.#othersGone = gone;
    if (gone && !was) for (const obj of this.#o.informer.list()) this.#maybeLabel(obj, false);
  }

  /** Runs the watch of not-yet-labelled objects until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    this.#signal = signal;
    const base = o.labelSelector;
    const selector = unlabelledSelector(o.shards);
    const namespaces = o.namespaces.length === 0 || !o.resource.namespaced ? [undefined] : o.namespaces;
    const reflectors = namespaces.map(
      (namespace) =>
        new Reflector<T>({
          client: o.client,
          resource: o.resource,
          namespace,
          labelSelector: base === undefined || base === "" ? selector : `${base},${selector}`,
          store: this.#unlabelled,
          sink: {
            onAdd: (obj) => {
              this.#maybeLabel(obj, false);
            },
            onUpdate: (_old, obj) => {
              this.#maybeLabel(obj, false);
            },
            onDelete: () => undefined,
            onListed: () => undefined,
          },
          logger: o.logger.child({ component: "shard-labeller", ...(namespace ? { namespace } : {}) }),
          clock: o.clock,
          ...(o.random ? { random: o.random } : {}),
          ...(o.watchTimeoutSeconds ? { watchTimeoutSeconds: o.watchTimeoutSeconds } : {}),
          // Only metadata is read: each replica sees every new object here (twice: unlabelled,
          // then leaving this selector), so a full object per event cost every replica.
          metadataOnly: true,
          transform: (obj) => slim(o.resource, obj),
        }),
    );
    await Promise.all(reflectors.map((r) => r.run(signal)));
  }

  /**
   * Starts watching shard `shard`: resolves true once its objects are in the cache (listed),
   * so the caller enqueues them after; false if released or stopped first. Its unlabelled
   * objects are labelled now and arrive on its watch.
   */
  async acquire(shard: number): Promise<boolean> {
    // Only the start is serialized: a release must not wait for a list that cannot finish.
    const { synced } = await this.#serial(shard, () => Promise.resolve(this.#start(shard)));
    const listed = await synced;
    if (listed && this.#othersGone)
      for (const obj of this.#o.informer.list())
        if (shardOf(obj.metadata.uid ?? "", this.#o.shards) === shard) this.#maybeLabel(obj, false);
    return listed;
  }

  #start(shard: number): { synced: Promise<boolean> } {
    {
      if (this.#held.has(shard)) return { synced: Promise.resolve(true) };
      this.#held.add(shard);
      const o = this.#o;
      const synced = o.informer.startSource(`shard-${String(shard)}`, {
        labelSelector: shardSelector(o.shards, shard),
        scope: {
          inScope: (obj) => shardOf(obj.metadata.uid ?? "", o.shards) === shard,
          // A label naming the wrong shard (edited by hand): only this watch sees the object,
          // the holder of its real shard cannot, so it is corrected here.
          onOutOfScope: (obj) => {
            this.#maybeLabel(obj, true);
          },
        },
      });
      for (const obj of this.#unlabelled.list())
        if (shardOf(obj.metadata.uid ?? "", o.shards) === shard) this.#maybeLabel(obj, false);
      return { synced };
    }
  }

  /** Stops watching shard `shard` and drops its objects from the cache. */
  release(shard: number): Promise<number> {
    return this.#serial(shard, async () => {
      if (!this.#held.delete(shard)) return 0;
      const dropped = await this.#o.informer.stopSource(`shard-${String(shard)}`);
      this.#o.logger.debug({ shard, dropped }, "shard watch stopped; its objects left the cache");
      return dropped;
    });
  }

  #serial<R>(shard: number, fn: () => Promise<R>): Promise<R> {
    const prev = this.#chains.get(shard) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.#chains.set(
      shard,
      next.catch(() => undefined),
    );
    return next;
  }

  /**
   * Labels `obj` if it needs it (or carries another S's key that may go) and, unless `always`,
   * its shard is held here: queued, bounded.
   */
  #maybeLabel(obj: T, always: boolean): void {
    const o = this.#o;
    const uid = obj.metadata.uid;
    const signal = this.#signal;
    const stale = this.#othersGone ? staleShardKeys(obj, o.shards) : [];
    if (uid === undefined || signal === undefined || signal.aborted) return;
    if (!needsShardLabel(obj, o.shards) && stale.length === 0) return;
    if (!always && !this.#held.has(shardOf(uid, o.shards))) return;
    const key = objectKey(obj);
    if (this.#labelling.get(key) === uid) return;
    this.#labelling.set(key, uid);
    this.#pending.set(key, {
      namespace: obj.metadata.namespace,
      name: obj.metadata.name ?? "",
      uid,
      always,
      stale,
    });
    this.#pump(signal);
  }

  #pump(signal: AbortSignal): void {
    const limit = this.#o.labelConcurrency ?? LABEL_CONCURRENCY;
    while (this.#inFlight < limit && !signal.aborted) {
      const next = this.#pending.entries().next();
      if (next.done === true) return;
      const [key, item] = next.value;
      this.#pending.delete(key);
      this.#inFlight++;
      void this.#label(key, item, signal).finally(() => {
        this.#inFlight--;
        if (this.#labelling.get(key) === item.uid) this.#labelling.delete(key);
        this.#pump(signal);
      });
    }
  }

  async #label(key: string, item: PendingLabel, signal: AbortSignal): Promise<void> {
    const o = this.#o;
    // Released while it waited: its new holder labels it.
    if (!item.always && !this.#held.has(shardOf(item.uid, o.shards))) return;
    try {
      const patch = shardLabelPatch(item.uid, o.shards, item.stale);
      await o.client.patchUnread(o.resource, item.namespace, item.name, patch, "merge", { signal });
      this.#labelled++;
    } catch (err) {
      if (signal.aborted || isNotFound(err)) return;
      // Tried again on the object's next event, or when its shard is acquired again.
      o.logger.warn({ err, key }, "could not label an object with its shard; retrying later");
      const onAbort = (): void => {
        o.clock.clearTimeout(retry);
      };
      const retry = o.clock.setTimeout(
        () => {
          signal.removeEventListener("abort", onAbort);
          const cur = this.#unlabelled.getByKey(key);
          if (cur?.metadata.uid === item.uid) this.#maybeLabel(cur, item.always);
        },
        1000 + Math.round((o.random ?? Math.random)() * 1000),
      );
      signal.addEventListener("abort", onAbort, { once: true });
    }
  }
}
