import type { Logger } from "pino";
import type { KubeClient } from "../../kube/client.ts";
import { GoneError } from "../../kube/errors.ts";
import { objectKey, type AnyObject } from "../../kube/object.ts";
import type { Resource } from "../../kube/resources.ts";
import { sleep, type Clock } from "../../util/clock.ts";
import { BackoffManager, REFLECTOR_BACKOFF, type BackoffPolicy } from "./backoff-manager.ts";
import type { Store } from "./store.ts";

/** What a reflector tells its owner about each change it applied to the store. */
export interface ReflectorSink<T> {
  onAdd(obj: T): void;
  onUpdate(old: T, obj: T): void;
  onDelete(obj: T): void;
  /** After every full list has been applied. */
  onListed(): void;
}

export interface ReflectorOptions<T extends AnyObject> {
  client: KubeClient;
  resource: Resource<T>;
  /** undefined = all namespaces. */
  namespace: string | undefined;
  labelSelector?: string | undefined;
  store: Store<T>;
  sink: ReflectorSink<T>;
  logger: Logger;
  clock: Clock;
  random?: () => number;
  pageSize?: number;
  backoff?: BackoffPolicy;
  /** Server-side watch timeout range, seconds: a random value in it per watch (5–10 min). */
  watchTimeoutSeconds?: { min: number; max: number };
  /**
   * List and watch metadata only (PartialObjectMetadata): for a store nobody reads spec or
   * status from. The transform must then accept both forms (a server may send full objects).
   */
  metadataOnly?: boolean | undefined;
  /** Applied to every object before it is cached (e.g. drop fields nobody reads). */
  transform?: ((obj: T) => T) | undefined;
  /**
   * One of several reflectors filling one store (--shard-watch=labels: one per held shard):
   * the objects this one caches. An object its selector delivers outside this scope (a shard
   * label that does not match the UID) is handed to `onOutOfScope` instead of being cached.
   * Scopes must be disjoint and fixed per UID, so that two reflectors never own one object.
   */
  scope?: ScopeOptions<T> | undefined;
}

export interface ScopeOptions<T> {
  inScope: (obj: T) => boolean;
  onOutOfScope?: (obj: T) => void;
}

/**
 * Whether `a` is a later object than `b` of the same name (another UID). Every version of an
 * object made after another one was deleted has a higher resourceVersion: with the etcd
 * revisions every API server uses (decimal integers) that decides it even within one second;
 * a server with other versions falls back on creationTimestamp (second resolution).
 */
export function later(a: AnyObject, b: AnyObject): boolean {
  const ra = a.metadata.resourceVersion ?? "";
  const rb = b.metadata.resourceVersion ?? "";
  if (/^\d+$/.test(ra) && /^\d+$/.test(rb)) return BigInt(ra) > BigInt(rb);
  return (a.metadata.creationTimestamp ?? "") >= (b.metadata.creationTimestamp ?? "");
}

/** A watch that ended this fast without delivering anything is treated as a failure (no busy loop). */
const SHORT_WATCH_MS = 1000;

class ShortWatchError extends Error {
  override readonly name = "ShortWatchError";
  readonly code = "ERR_SHORT_WATCH";
}

/**
 * Keeps a Store equal to the server's view of one kind in one namespace (or all): a paginated
 * list, then a watch from the list's resourceVersion with bookmarks. A watch that ends is
 * resumed from the last version seen; a 410 Gone relists; any other error backs off
 * (800 ms doubling to 30 s, jittered, reset after 2 min healthy) and retries.
 */
export class Reflector<T extends AnyObject> {
  readonly #o: ReflectorOptions<T>;
  readonly #backoff: BackoffManager;
  readonly #random: () => number;
  #resourceVersion: string | undefined;
  #synced = false;
  #lists = 0;

  constructor(opts: ReflectorOptions<T>) {
    this.#o = opts;
    this.#random = opts.random ?? Math.random;
    this.#backoff = new BackoffManager(opts.backoff ?? REFLECTOR_BACKOFF, opts.clock, this.#random);
  }

  /** True once the first list has been applied to the store. */
  get hasSynced(): boolean {
    return this.#synced;
  }

  /** The version the next watch resumes from (advanced by events and bookmarks). */
  get resourceVersion(): string | undefined {
    return this.#resourceVersion;
  }

  /** How many full lists were made (1 + relists). */
  get listCount(): number {
    return this.#lists;
  }

  async run(signal: AbortSignal): Promise<void> {
    const log = this.#o.logger;
    while (!signal.aborted) {
      try {
        if (this.#resourceVersion === undefined) await this.#list(signal);
        await this.#watch(signal);
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof GoneError) {
          // Our version fell out of the server's history: only a fresh list can recover.
          log.info({ resourceVersion: this.#resourceVersion }, "watch history expired (410 Gone), relisting");
          this.#resourceVersion = undefined;
          continue;
        }
        const delay = this.#backoff.next();
        log.warn({ err, delayMs: delay }, "list/watch failed, retrying after backoff");
        await sleep(delay, signal, this.#o.clock);
      }
    }
  }

  async #list(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const items: T[] = [];
    let resourceVersion: string | undefined;
    let cont: string | undefined;
    // One list call for every page, so every page passes the same choke point (#admit).
    do {
      if (signal.aborted) return;
      const page = await o.client.list(o.resource, {
        namespace: o.namespace,
        labelSelector: o.labelSelector,
        limit: o.pageSize ?? 500,
        continue: cont,
        signal,
        metadataOnly: o.metadataOnly,
      });
      // The first page's version: the continue tokens keep the later pages consistent with it.
      resourceVersion ??= page.resourceVersion;
      for (const obj of page.items) {
        if (o.scope && !o.scope.inScope(obj)) o.scope.onOutOfScope?.(obj);
        else items.push(this.#admit(obj));
      }
      cont = page.continue;
    } while (cont !== undefined);
    if (signal.aborted) return;
    const ns = o.namespace;
    const scope = o.scope?.inScope;
    if (scope !== undefined) {
      // A name another scope already holds as a later object (recreated in another shard while
      // this list was on its way) is not this list's to overwrite.
      for (let i = items.length - 1; i >= 0; i--) {
        const obj = items[i];
        const cur = obj === undefined ? undefined : o.store.getByKey(objectKey(obj));
        if (obj && cur && cur.metadata.uid !== obj.metadata.uid && later(cur, obj)) items.splice(i, 1);
      }
    }
    const diff = o.store.replace(
      items,
      (obj) => (ns === undefined || obj.metadata.namespace === ns) && (scope === undefined || scope(obj)),
    );
    this.#lists++;
    this.#resourceVersion = resourceVersion;
    this.#synced = true;
    for (const obj of diff.deleted) o.sink.onDelete(obj);
    for (const obj of diff.added) o.sink.onAdd(obj);
    for (const { old, obj } of diff.updated) o.sink.onUpdate(old, obj);
    o.sink.onListed();
    o.logger.debug({ items: items.length, resourceVersion }, "listed");
  }

  /**
   * Every object on its way into the cache, from a list page or a watch event: the single
   * place the transform applies (client-go applies it once, in the informer's queue).
   */
  #admit(obj: T): T {
    return this.#o.transform ? this.#o.transform(obj) : obj;
  }

  async #watch(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const range = o.watchTimeoutSeconds ?? { min: 300, max: 600 };
    const timeoutSeconds = Math.round(range.min + this.#random() * (range.max - range.min));
    const started = o.clock.now();
    let events = 0;
    for await (const ev of o.client.watch(o.resource, {
      namespace: o.namespace,
      labelSelector: o.labelSelector,
      resourceVersion: this.#resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds,
      signal,
      metadataOnly: o.metadataOnly,
    })) {
      events++;
      const rv = ev.object.metadata.resourceVersion;
      if (ev.type === "BOOKMARK") {
        if (rv) this.#resourceVersion = rv;
        continue;
      }
      const key = objectKey(ev.object);
      if (o.scope) {
        this.#scoped(o.scope, ev.type, key, ev.object);
      } else if (ev.type === "DELETED") {
        const old = o.store.delete(key);
        o.sink.onDelete(old ?? this.#admit(ev.object));
      } else {
        const obj = this.#admit(ev.object);
        const old = o.store.upsert(obj);
        if (old) o.sink.onUpdate(old, obj);
        else o.sink.onAdd(obj);
      }
      if (rv) this.#resourceVersion = rv;
    }
    if (!signal.aborted && events === 0 && o.clock.now() - started < SHORT_WATCH_MS) {
      throw new ShortWatchError("watch closed immediately without events");
    }
  }

  /**
   * A watch event for a reflector sharing its store with others. The streams of different
   * reflectors are not ordered with each other, so a key may be seen under two UIDs (deleted
   * and recreated under the same name, the new object in another shard): a deletion removes
   * only the UID it names, and an object replaces another UID's only if it is the later one
   * (`later`: the old object was gone before the new one was made).
   */
  #scoped(scope: ScopeOptions<T>, type: "ADDED" | "MODIFIED" | "DELETED", key: string, raw: T): void {
    const o = this.#o;
    const cur = o.store.getByKey(key);
    const sameUid = cur !== undefined && cur.metadata.uid === raw.metadata.uid;
    if (type === "DELETED") {
      // Another scope's object leaving this selector (a wrong shard label being corrected), or
      // not cached under this UID (already replaced): nothing of ours to remove.
      if (!sameUid || !scope.inScope(raw)) return;
      o.store.delete(key);
      o.sink.onDelete(cur);
      return;
    }
    if (!scope.inScope(raw)) {
      scope.onOutOfScope?.(raw);
      return;
    }
    if (cur !== undefined && !sameUid && !later(raw, cur)) return;
    const obj = this.#admit(raw);
    const old = o.store.upsert(obj);
    if (old) o.sink.onUpdate(old, obj);
    else o.sink.onAdd(obj);
  }
}
