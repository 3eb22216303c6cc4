/**
 * One value loaded on demand and kept for a while; concurrent callers share one load, and a
 * failed load is not cached. Drivers keep catalogues and account-wide lists in these.
 */
export class TtlCache<T> {
  #value: { at: number; data: T } | undefined;
  #loading: Promise<T> | undefined;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async get(ttlMs: number, load: () => Promise<T>): Promise<T> {
    if (this.#value && this.#now() - this.#value.at < ttlMs) return this.#value.data;
    if (this.#loading) return this.#loading;
    this.#loading = load().then(
      (data) => {
        this.#value = { at: this.#now(), data };
        this.#loading = undefined;
        return data;
      },
      (err: unknown) => {
        this.#loading = undefined;
        throw err;
      },
    );
    return this.#loading;
  }

  clear(): void {
    this.#value = undefined;
  }
}
