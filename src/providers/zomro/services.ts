import { mapState, observedHead, type ObservedMachine, type StateTable } from "../driver.ts";
import { ProviderLimitError, TransientError } from "../errors.ts";
import { elems, scalar, type Row, type ZomroApi } from "./api.ts";
import { datacenterKey, tariffId, type Catalogue } from "./catalogue.ts";

/**
 * The ownership mark, written into the order form's `hostname`/`domain`: `cio-<uid>`, and
 * `cio-<uid>.<cluster>` when the cluster has an identity — a host `cio-<uid>` in the cluster's
 * domain. The dot keeps the two apart whatever either holds (a Kubernetes UID has none), and a
 * mark from before clusters were marked (no dot) still reads as its owner with no cluster.
 */
export const OWNER_PREFIX = "cio-";
/** One DNS label: a hostname field refuses more, and the mark must survive as written. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface Mark {
  ownerUID: string;
  cluster: string | undefined;
}

/** The mark for an owner and cluster, or undefined when it would not be a valid host name. */
export function markFor(ownerUID: string, cluster: string): string | undefined {
  const host = `${OWNER_PREFIX}${ownerUID}`;
  if (!LABEL.test(host) || (cluster !== "" && !LABEL.test(cluster))) return undefined;
  return cluster === "" ? host : `${host}.${cluster}`;
}

export function parseMark(text: string): Mark | undefined {
  if (!text.startsWith(OWNER_PREFIX)) return undefined;
  const rest = text.slice(OWNER_PREFIX.length);
  const dot = rest.lastIndexOf(".");
  const ownerUID = dot < 0 ? rest : rest.slice(0, dot);
  const cluster = dot < 0 ? undefined : rest.slice(dot + 1);
  if (ownerUID === "" || cluster === "") return undefined;
  return { ownerUID, cluster };
}

/** The mark a row shows (its hostname, domain or name), with the text it was read from. */
function markOf(row: Row): { text: string; mark: Mark } | undefined {
  for (const field of [row.hostname, row.domain, row.name]) {
    const text = scalar(field);
    const mark = text === undefined ? undefined : parseMark(text);
    if (text !== undefined && mark) return { text, mark };
  }
  return undefined;
}

export const STATES: StateTable = {
  "1": { phase: "Provisioning", transitional: true, message: "ordered" },
  "5": { phase: "Provisioning", transitional: true, message: "processing" },
  "2": { phase: "Running", transitional: false },
  "3": { phase: "Stopped", transitional: false, message: "suspended" },
};
/** BILLmanager's "deleted": the service is gone although a list may still show it. */
export const DELETED = "4";

/** The service's id and mark, for a row the orphan sweeper may count (not deleted, marked). */
export function ownedRow(row: Row): ({ id: string } & Mark) | undefined {
  const id = scalar(row.id);
  const marked = markOf(row);
  if (id === undefined || scalar(row.status) === DELETED || !marked) return undefined;
  return { id, ...marked.mark };
}

/** A BILLmanager row (list item or `<list>.edit` form) as the operator sees it. */
export function observe(row: Row, c: Catalogue, fallbackId = ""): ObservedMachine | undefined {
  const status = scalar(row.status) ?? "";
  if (status === DELETED) return undefined;
  const id = scalar(row.id) || scalar(row.elid) || fallbackId;
  const mapped = mapState(STATES, status, "zomro");
  const marked = markOf(row);
  const name = marked?.text ?? [row.hostname, row.domain, row.name].map(scalar).find((n) => !!n);
  const ip = scalar(row.ip);
  const plan = tariffId(c, scalar(row.pricelist));
  const image = scalar(row.ostempl);
  const region = datacenterKey(c, scalar(row.datacenter));
  return {
    ...observedHead(id, status, mapped, marked?.mark),
    ...(name === undefined ? {} : { name }),
    ...(plan === undefined ? {} : { plan }),
    ...(image === undefined || image === "" ? {} : { image }),
    ...(region === undefined || region === "" ? {} : { region }),
    addresses: { public: ip ? ip.split(/[\s,]+/).filter(Boolean) : [], private: [] },
  };
}

/** Rows asked for per page where BILLmanager pages (`p_cnt`). */
const PAGE_SIZE = 500;

/**
 * Every row of a list, paging where BILLmanager pages (`p_elems` gives the total) and reading
 * once where it does not. A partial list is never returned: a VM missing from it could be
 * ordered a second time. So a list past `maxPages` pages is a ProviderLimitError, and a page
 * that brings no row not seen before (BILLmanager ignoring `p_num`) ends the reading with an
 * error instead of asking for the same page again.
 */
export async function listRows(
  api: ZomroApi,
  list: string,
  opts: { signal: AbortSignal | undefined; maxPages: number },
): Promise<Row[]> {
  const rows = new Map<string, Row>();
  for (let page = 1; page <= opts.maxPages; page++) {
    const doc = await api.call(
      list,
      { p_cnt: String(PAGE_SIZE), p_num: String(page) },
      { operation: "list", idempotent: true, signal: opts.signal },
    );
    const got = elems(doc);
    const before = rows.size;
    for (const r of got) rows.set(scalar(r.id) ?? JSON.stringify(r), r);
    const total = Number(scalar(doc.p_elems));
    if (!Number.isFinite(total) || got.length === 0 || rows.size >= total) return [...rows.values()];
    if (rows.size === before)
      throw new TransientError(
        `zomro list: page ${String(page)} of "${list}" repeats earlier pages (${String(rows.size)} of the ${String(total)} services it counts were seen); BILLmanager seems to ignore p_num`,
        { provider: "zomro", operation: "list" },
      );
  }
  throw new ProviderLimitError(
    `zomro list: "${list}" has more than ${String(opts.maxPages)} pages of ${String(PAGE_SIZE)} services (--provider-max-pages)`,
    { provider: "zomro", operation: "list", reason: "TooManyPages" },
  );
}
