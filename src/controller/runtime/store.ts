import { objectKey, type AnyObject } from "../../kube/object.ts";

/** Values an object is filed under in a named index (e.g. "byTemplate" -> ["ns/small-web"]). */
export type IndexFunc<T> = (obj: T) => readonly string[];

export interface StoreDiff<T> {
  added: T[];
  updated: { old: T; obj: T }[];
  deleted: T[];
}

/**
 * The in-memory copy of one kind, keyed by `namespace/name`, with custom indexes kept in
 * step on every write. Objects are treated as immutable: readers must not mutate them.
 */
export class Store<T extends AnyObject> {
  readonly #items = new Map<string, T>();
  readonly #indexers: Map<string, IndexFunc<T>>;
  /** index name -> value -> keys */
  readonly #indexes = new Map<string, Map<string, Set<string>>>();

  constructor(indexers: Record<string, IndexFunc<T>> = {}) {
    this.#indexers = new Map(Object.entries(indexers));
    for (const name of this.#indexers.keys()) this.#indexes.set(name, new Map());
  }

  /** Adds indexes after creation (several controllers may share one cache); re-indexes existing items. */
  addIndexers(indexers: Record<string, IndexFunc<T>>): void {
    for (const [name, fn] of Object.entries(indexers)) {
      if (this.#indexers.has(name)) throw new Error(`index "${name}" already exists`);
      this.#indexers.set(name, fn);
      this.#indexes.set(name, new Map());
      for (const [key, obj] of this.#items) this.#indexOne(name, fn, key, obj);
    }
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#items.get(namespace ? `${namespace}/${name}` : name);
  }

  getByKey(key: string): T | undefined {
    return this.#items.get(key);
  }

  list(namespace?: string): T[] {
    const all = [...this.#items.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  keys(): string[] {
    return [...this.#items.keys()];
  }

  get size(): number {
    return this.#items.size;
  }

  byIndex(indexName: string, value: string): T[] {
    const index = this.#indexes.get(indexName);
    if (!index) throw new Error(`unknown index "${indexName}"`);
    const out: T[] = [];
    for (const key of index.get(value) ?? []) {
      const obj = this.#items.get(key);
      if (obj) out.push(obj);
    }
    return out;
  }

  /** Inserts or replaces; returns the previous version. */
  upsert(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.#items.get(key);
    this.#items.set(key, obj);
    for (const [name, fn] of this.#indexers) {
      const after = fn(obj);
      if (old !== undefined) {
        const before = fn(old);
        // Most updates (a status write) file the object under the same values: left in place,
        // not taken out and put back, which dropped and re-made a Set per value each time.
        if (sameValues(before, after)) continue;
        this.#unindexValues(name, key, before);
      }
      this.#indexValues(name, key, after);
    }
    return old;
  }

  /** Removes; returns what was stored. */
  delete(key: string): T | undefined {
    const old = this.#items.get(key);
    if (!old) return undefined;
    this.#unindex(key, old);
    this.#items.delete(key);
    return old;
  }

  /**
   * Replaces every object `inScope` says belongs to the caller (one reflector's namespace)
   * with `items`, and reports what changed, so a relist produces the events a watch missed.
   */
  replace(items: readonly T[], inScope: (obj: T) => boolean = () => true): StoreDiff<T> {
    const diff: StoreDiff<T> = { added: [], updated: [], deleted: [] };
    const fresh = new Set<string>();
    for (const obj of items) {
      const key = objectKey(obj);
      fresh.add(key);
      const old = this.upsert(obj);
      if (!old) diff.added.push(obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) diff.updated.push({ old, obj });
    }
    for (const [key, obj] of [...this.#items]) {
      if (!fresh.has(key) && inScope(obj)) {
        this.delete(key);
        diff.deleted.push(obj);
      }
    }
    return diff;
  }

  #indexOne(name: string, fn: IndexFunc<T>, key: string, obj: T): void {
    this.#indexValues(name, key, fn(obj));
  }

  #indexValues(name: string, key: string, values: readonly string[]): void {
    const index = this.#indexes.get(name);
    if (!index) return;
    for (const value of values) {
      let keys = index.get(value);
      if (!keys) index.set(value, (keys = new Set()));
      keys.add(key);
    }
  }

  #unindexValues(name: string, key: string, values: readonly string[]): void {
    const index = this.#indexes.get(name);
    if (!index) return;
    for (const value of values) {
      const keys = index.get(value);
      keys?.delete(key);
      if (keys?.size === 0) index.delete(value);
    }
  }

  #unindex(key: string, obj: T): void {
    for (const [name, fn] of this.#indexers) this.#unindexValues(name, key, fn(obj));
  }
}

/** The same values in the same order (index functions list them deterministically). */
function sameValues(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
