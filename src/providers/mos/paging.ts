import { ProviderLimitError } from "../errors.ts";
import type { MosCalls } from "./api.ts";

/** Rows asked for per page of a MOS list (`Limit`). */
export const PAGE = 100;

export interface Page<Row> {
  rows: Row[];
  /** The list's `Total`, when MOS gave one. */
  total: number | undefined;
}

/**
 * Every row of a `Limit`/`Offset` list, in at most `calls.maxPages` requests. The list ends
 * on a short page or once `Total` rows are in. A list that goes on past the cap, or a page that
 * repeats the one before (an `Offset` MOS ignored), is a ProviderLimitError: a partial list
 * could hide a VM an owner lookup must find, so nothing partial is returned. Rows are kept once
 * by `key` (a VM made between two pages shifts the next page by one).
 */
export async function readPages<Row>(
  calls: MosCalls,
  operation: string,
  fetch: (offset: number) => Promise<Page<Row>>,
  key: (row: Row) => string,
): Promise<Row[]> {
  const seen = new Map<string, Row>();
  let previous = "";
  for (let n = 0; n < calls.maxPages; n++) {
    const page = await fetch(n * PAGE);
    const keys = page.rows.map(key).join("\n");
    if (n > 0 && page.rows.length > 0 && keys === previous)
      throw tooMany(operation, `page ${String(n + 1)} (Offset ${String(n * PAGE)}) repeats the one before`);
    previous = keys;
    for (const row of page.rows) if (!seen.has(key(row))) seen.set(key(row), row);
    if (page.rows.length < PAGE || (n + 1) * PAGE >= (page.total ?? 0)) return [...seen.values()];
  }
  throw tooMany(operation, `the list did not end within ${String(calls.maxPages)} pages of ${String(PAGE)}`);
}

function tooMany(operation: string, why: string): ProviderLimitError {
  return new ProviderLimitError(`mos ${operation}: ${why}; the lookup is retried later`, {
    provider: "mos",
    operation,
    reason: "TooManyPages",
  });
}
