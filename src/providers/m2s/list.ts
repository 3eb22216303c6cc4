/**
 * Paging through `GET /instances`, bounded: the owner lookup and the orphan listing both need
 * the whole list (or a clear failure), never a partial one they would take for the truth, and
 * never an unbounded stream of calls.
 */
import { ProviderLimitError, TransientError } from "../errors.ts";
import type { M2sApi, M2sInstance } from "./api.ts";

/** The most the simulator's chosen cap allows; the document shows `limit=20` and no maximum. */
export const PAGE_SIZE = 100;

export interface ListBounds {
  /** Most pages one list may take (DriverContext.maxPages). */
  maxPages: number;
  signal: AbortSignal | undefined;
}

/**
 * Every VM of the region (or account) once. Ends at `total_pages`; without a `pagination`
 * object, at the first page that brings no new id (an API without paging answers the same page
 * again). A page of ids already seen, or an empty one while `total_pages` says more remain,
 * means the API does not page as documented: that fails, as does a list longer than `maxPages`
 * pages, since a partial list could hide the VM an owner lookup looks for (and then a second
 * one is made).
 */
export async function* listAll(
  api: M2sApi,
  region: string | undefined,
  bounds: ListBounds,
): AsyncGenerator<M2sInstance> {
  const seen = new Set<string>();
  for (let page = 1; ; page++) {
    if (page > bounds.maxPages) {
      throw new ProviderLimitError(
        `m2s list: more than ${String(bounds.maxPages)} pages of ${String(PAGE_SIZE)} VMs in ${region === undefined ? "the account" : `region ${region}`}; stopped at the page cap (--provider-max-pages) rather than answer from a partial list`,
        { provider: "m2s", operation: "list", reason: "TooManyPages" },
      );
    }
    const res = await api.list(page, PAGE_SIZE, region, bounds.signal);
    let fresh = 0;
    for (const vm of res.data) {
      if (seen.has(vm.id)) continue;
      seen.add(vm.id);
      fresh++;
      yield vm;
    }
    if (res.pagination === undefined) {
      if (fresh === 0) return;
      continue;
    }
    const more = page < res.pagination.total_pages;
    // An empty page past total_pages is a list that shrank meanwhile; items seen before are a
    // page the API repeats (it ignores `page`), whatever total_pages says.
    if (fresh === 0 && (res.data.length > 0 || more)) {
      throw new TransientError(
        `m2s list: page ${String(page)} brings no VM the earlier pages did not (total_pages ${String(res.pagination.total_pages)}); the API does not page as documented, or the list changed under the pages: not trusted, tried again later`,
        { provider: "m2s", operation: "list" },
      );
    }
    if (!more) return;
  }
}
