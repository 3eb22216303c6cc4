import type { SimProfile } from "../common.ts";

/**
 * What the zomro simulator shows, per profile: which functions exist, which fields list rows,
 * single reads and the order form carry. The choices and their reasons are written at the top
 * of ./index.ts.
 */

export const ZOMRO_PRICELISTS = [
  { id: "3601", name: "Cloud VPS Start", price: 3 },
  { id: "3602", name: "Cloud VPS Basic", price: 6 },
  { id: "3603", name: "Cloud VPS Pro", price: 12 },
  { id: "3604", name: "Cloud VPS Ultra", price: 24 },
] as const;
export const ZOMRO_IMAGES = ["ubuntu-22.04", "debian-12", "almalinux-9"] as const;
export const ZOMRO_LOCATIONS = [
  { key: "nl", name: "Netherlands" },
  { key: "de", name: "Germany" },
  { key: "pl", name: "Poland" },
] as const;

export interface Service {
  id: string;
  /** The order's `domain` field (BILLmanager invents one when it is left out). */
  domain: string;
  /** The order's `hostname` field (default profile only; Zomro's Cloud VPS form). */
  hostname: string;
  status: number;
  pricelist: string;
  ostempl: string;
  datacenter: string;
  ip: string;
  period: string;
  createdate: string;
  timer?: NodeJS.Timeout | undefined;
}

/** The functions the document shows plus BILLmanager's service conventions (see ./index.ts). */
const STRICT_FUNCTIONS = [
  "service.start",
  "service.stop",
  "instances.start",
  "instances.stop",
  "instances",
  "vds",
  "instances.delete",
  "vds.delete",
  "v2.instances.order.param",
  "service.changepricelist",
] as const;
/** What Zomro's articles and BILLmanager's `<list>.edit` add. */
const DEFAULT_ADDS = [
  "instances.edit",
  "vds.edit",
  "v2.instances.order.pricelist",
  "instances.fleio.rebuild",
] as const;

export interface ProfileRules {
  readonly functions: ReadonlySet<string>;
  /** Order-form fields besides the choices (echoed by a preview). */
  readonly orderFields: readonly string[];
  /** Lists honour `p_cnt`/`p_num` and answer `p_elems`. */
  readonly paging: boolean;
  /** Deleted services (status 4) stay in lists. */
  readonly listsDeleted: boolean;
  /** How an unknown or deleted `elid` is refused. */
  readonly notFound: { type: string; object?: string };
  listRow(s: Service): Record<string, unknown>;
}

export const wrap = (v: string | number): { $: string } => ({ $: String(v) });

const tariffName = (id: string): string => ZOMRO_PRICELISTS.find((p) => p.id === id)?.name ?? id;
const locationName = (key: string): string => ZOMRO_LOCATIONS.find((l) => l.key === key)?.name ?? key;

/** A list row shows display text (the tariff's and datacenter's names), as BILLmanager lists do. */
function strictRow(s: Service): Record<string, unknown> {
  return {
    id: wrap(s.id),
    domain: wrap(s.domain),
    status: wrap(s.status),
    pricelist: wrap(tariffName(s.pricelist)),
    datacenter: wrap(locationName(s.datacenter)),
    ip: wrap(s.ip),
  };
}

export function rulesFor(
  profile: SimProfile,
  notFound: { type: string; object?: string } | undefined,
): ProfileRules {
  const strict = profile === "strict";
  return {
    functions: new Set<string>(strict ? STRICT_FUNCTIONS : [...STRICT_FUNCTIONS, ...DEFAULT_ADDS]),
    orderFields: strict
      ? ["order_period", "domain", "licence_agreement", "instances_ssh_keys"]
      : ["order_period", "domain", "hostname", "licence_agreement", "instances_ssh_keys"],
    paging: !strict,
    listsDeleted: strict,
    notFound: notFound ?? (strict ? { type: "value", object: "elid" } : { type: "missing", object: "elid" }),
    listRow: strict
      ? strictRow
      : (s) => ({
          ...strictRow(s),
          name: wrap(s.hostname || s.domain),
          hostname: wrap(s.hostname),
          ostempl: wrap(s.ostempl),
          period: wrap(s.period),
          createdate: wrap(s.createdate),
        }),
  };
}

/** `<list>.edit` (default profile): a form, so selects hold their keys, not their names. */
export function editView(s: Service): Record<string, unknown> {
  return {
    elid: wrap(s.id),
    id: wrap(s.id),
    hostname: wrap(s.hostname),
    domain: wrap(s.domain),
    status: wrap(s.status),
    pricelist: wrap(s.pricelist),
    ostempl: wrap(s.ostempl),
    datacenter: wrap(s.datacenter),
    ip: wrap(s.ip),
    period: wrap(s.period),
    createdate: wrap(s.createdate),
  };
}

/** A form's preview: its fields with their values, and the choices of its selects in `slist`. */
export function previewView(fields: Record<string, string>): Record<string, unknown> {
  return {
    ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, wrap(v)])),
    slist: [
      { $name: "pricelist", val: ZOMRO_PRICELISTS.map((p) => ({ $key: p.id, $: p.name })) },
      { $name: "ostempl", val: ZOMRO_IMAGES.map((i) => ({ $key: i, $: i })) },
      { $name: "datacenter", val: ZOMRO_LOCATIONS.map((l) => ({ $key: l.key, $: l.name })) },
    ],
  };
}

/**
 * Test knob (off by default): a list that never ends. "fresh" answers every page, whatever
 * `p_num`, with one more unmarked service nobody listed before and a `p_elems` it never
 * reaches; "repeat" ignores `p_num` and answers the same page, claiming more services than it
 * ever shows. Both profiles honour it (a strict list otherwise sends no `p_elems`).
 */
export type EndlessList = "fresh" | "repeat";
const ENDLESS_TOTAL = 1_000_000_000;

/** A list answer: a page of `all` (where the profile pages), shaped as BILLmanager sends it. */
export function listView(
  all: readonly Service[],
  rules: ProfileRules,
  fields: Record<string, string>,
  endless: { mode: EndlessList | undefined; ghost: () => Service },
): Record<string, unknown> {
  let page = [...all];
  let paging = {};
  if (rules.paging) {
    const cnt = Math.max(1, Number(fields.p_cnt ?? all.length) || all.length || 1);
    const num = endless.mode === "repeat" ? 1 : Math.max(1, Number(fields.p_num ?? 1) || 1);
    page = all.slice((num - 1) * cnt, num * cnt);
    paging = { p_elems: wrap(all.length), p_num: wrap(num), p_cnt: wrap(cnt) };
  }
  if (endless.mode !== undefined) {
    page.push(endless.ghost());
    paging = { ...paging, p_elems: wrap(ENDLESS_TOTAL) };
  }
  // BILLmanager sends one row as an object and an empty list without `elem`.
  const rows = page.map((s) => rules.listRow(s));
  return { ...(rows.length === 0 ? {} : { elem: rows.length === 1 ? rows[0] : rows }), ...paging };
}

/** Names the driver gives: `cio-<uid>`, or `cio-<uid>.<cluster>` (the cluster's identity). */
const OWNER_PREFIX = "cio-";

/** The owner UID and cluster a service's hostname or domain carries, if any. */
export function markOf(s: Service): { ownerUID: string; cluster: string | undefined } | undefined {
  const mark = [s.hostname, s.domain].find((n) => n.startsWith(OWNER_PREFIX))?.slice(OWNER_PREFIX.length);
  if (mark === undefined) return undefined;
  const dot = mark.lastIndexOf(".");
  return dot < 0
    ? { ownerUID: mark, cluster: undefined }
    : { ownerUID: mark.slice(0, dot), cluster: mark.slice(dot + 1) };
}
