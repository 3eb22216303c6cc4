/** A binary min-heap of values by a numeric priority (ties in no particular order). */
export class MinHeap<T> {
  readonly #priorities: number[] = [];
  readonly #values: T[] = [];

  get size(): number {
    return this.#values.length;
  }

  /** The lowest priority and its value, left in place (undefined when empty). */
  peekPriority(): number | undefined {
    return this.#priorities[0];
  }

  peekValue(): T | undefined {
    return this.#values[0];
  }

  clear(): void {
    this.#priorities.length = 0;
    this.#values.length = 0;
  }

  push(priority: number, value: T): void {
    const p = this.#priorities;
    const v = this.#values;
    let i = v.length;
    p.push(priority);
    v.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((p[parent] as number) <= priority) break;
      p[i] = p[parent] as number;
      v[i] = v[parent] as T;
      i = parent;
    }
    p[i] = priority;
    v[i] = value;
  }

  /** The value of the lowest priority, removed; undefined when empty. */
  pop(): T | undefined {
    const p = this.#priorities;
    const v = this.#values;
    if (v.length === 0) return undefined;
    const top = v[0];
    const lastP = p.pop() as number;
    const lastV = v.pop() as T;
    const n = v.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && (p[r] as number) < (p[l] as number) ? r : l;
        if ((p[c] as number) >= lastP) break;
        p[i] = p[c] as number;
        v[i] = v[c] as T;
        i = c;
      }
      p[i] = lastP;
      v[i] = lastV;
    }
    return top;
  }
}
