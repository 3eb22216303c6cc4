import { ProviderError, UnsupportedError } from "../errors.ts";
import { elems, scalar, UnknownFunctionError, type Row, type ZomroApi } from "./api.ts";
import { SharedValue } from "./shared.ts";

/** What the order form offers, read from its preview (BILLmanager answers a form without `sok`). */
export interface Catalogue {
  tariffs: { id: string; name: string }[];
  images: string[];
  datacenters: { key: string; name: string }[];
  /** Order-form fields that can carry the ownership mark (`hostname`, `domain`). */
  markFields: string[];
  /** Whether the form takes SSH keys (`instances_ssh_keys`). */
  sshKeys: boolean;
}

const TTL_MS = 600_000;
/** Distinct function-name pairs cached at once (options are per object; an account has few). */
const MAX_ENTRIES = 16;
const MARK_FIELDS = ["hostname", "domain"] as const;
const EMPTY: Catalogue = { tariffs: [], images: [], datacenters: [], markFields: [], sshKeys: false };

function choices(form: Row, name: string): { key: string; name: string }[] {
  const lists = Array.isArray(form.slist) ? (form.slist as Row[]) : [];
  const list = lists.find((s) => s.$name === name);
  const vals = Array.isArray(list?.val) ? (list.val as Row[]) : [];
  return vals.flatMap((v) => {
    const key = typeof v.$key === "string" ? v.$key : scalar(v);
    return key ? [{ key, name: scalar(v) ?? key }] : [];
  });
}

/**
 * The order form's choices per (order, pricelist) function pair, shared by every object on
 * the account. Tariffs come from the form's own `pricelist` select; Zomro's separate
 * `pricelist` function is read only when the form lists none, since the document shows no
 * such function.
 */
export class Catalogues {
  readonly #api: ZomroApi;
  readonly #caches = new Map<string, SharedValue<Catalogue>>();

  constructor(api: ZomroApi) {
    this.#api = api;
  }

  get(fn: { order: string; pricelist: string }, signal: AbortSignal | undefined): Promise<Catalogue> {
    const key = `${fn.order}\u0000${fn.pricelist}`;
    let cache = this.#caches.get(key);
    if (!cache) {
      if (this.#caches.size >= MAX_ENTRIES) this.#caches.clear();
      cache = new SharedValue<Catalogue>(TTL_MS);
      this.#caches.set(key, cache);
    }
    return cache.get(signal, "orderForm", (shared) => this.#load(fn, shared));
  }

  /**
   * For observing: an order form that cannot be read for good (no such function, refused) must
   * not keep a VM from being seen or deleted; its tariff names then stay unmapped (no plan).
   */
  async orEmpty(
    fn: { order: string; pricelist: string },
    signal: AbortSignal | undefined,
  ): Promise<Catalogue> {
    try {
      return await this.get(fn, signal);
    } catch (err) {
      if (err instanceof ProviderError && err.terminal) return EMPTY;
      throw err;
    }
  }

  async #load(fn: { order: string; pricelist: string }, signal: AbortSignal): Promise<Catalogue> {
    const form = await this.#api.call(fn.order, {}, { operation: "orderForm", idempotent: true, signal });
    let tariffs = choices(form, "pricelist").map((c) => ({ id: c.key, name: c.name }));
    if (tariffs.length === 0) tariffs = await this.#tariffs(fn.pricelist, signal);
    return {
      tariffs,
      images: choices(form, "ostempl").map((c) => c.key),
      datacenters: choices(form, "datacenter"),
      markFields: MARK_FIELDS.filter((f) => f in form),
      sshKeys: "instances_ssh_keys" in form,
    };
  }

  async #tariffs(func: string, signal: AbortSignal): Promise<{ id: string; name: string }[]> {
    try {
      const doc = await this.#api.call(func, {}, { operation: "pricelist", idempotent: true, signal });
      return elems(doc).map((r) => ({
        id: scalar(r.pricelist) ?? scalar(r.id) ?? "",
        name: scalar(r.name) ?? "",
      }));
    } catch (err) {
      if (!(err instanceof UnknownFunctionError)) throw err;
      throw new UnsupportedError(
        `zomro: the order form lists no tariffs and this BILLmanager has no "${func}" (providerOptions.functions.pricelist)`,
        { provider: "zomro", operation: "pricelist" },
      );
    }
  }
}

/** A tariff as the spec names it (its id), from a row that may show its id or its name. */
export function tariffId(c: Catalogue, shown: string | undefined): string | undefined {
  if (shown === undefined) return undefined;
  if (c.tariffs.some((t) => t.id === shown)) return shown;
  const named = c.tariffs.filter((t) => t.name === shown);
  // An unknown or ambiguous name is left out: a guessed id would make the operator "resize".
  return named.length === 1 ? named[0]?.id : undefined;
}

/** A datacenter's key from a row that may show its key or its name. */
export function datacenterKey(c: Catalogue, shown: string | undefined): string | undefined {
  if (shown === undefined) return undefined;
  return c.datacenters.find((d) => d.key === shown || d.name === shown)?.key ?? shown;
}
