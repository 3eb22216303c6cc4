/**
 * Finding the VM of one CloudInstance from what the m2s document gives. List items carry
 * `id, name, status, plan, region, ip_address, created_at, updated_at` and no tags; tags are in
 * the single-instance read only. So the VM name carries a mark derived from the owner UID, the
 * list narrows to the VMs whose name has it (or is the older mark-less name, or our name cut
 * short by a provider limit), and a single read of each confirms the owner tag: one paginated
 * list plus one read per candidate, never a read per VM of the account.
 */
import { createHash } from "node:crypto";
import type { DesiredMachine } from "../driver.ts";
import { TransientError } from "../errors.ts";
import type { M2sApi, M2sInstance } from "./api.ts";

/** Tag prefix that marks a VM as owned by one CloudInstance (UID after the colon). */
export const OWNER_TAG_PREFIX = "cio-owner:";
/** The document states no name limit; 63 (a DNS label) is what hostnames derived from it allow. */
const NAME_MAX = 63;
const PAGE_SIZE = 100;
/** 20,000 VMs in one region: past that the lookup fails rather than answer from a partial list. */
const MAX_PAGES = 200;
/** A listed name this long that starts our name is ours cut by a provider limit, mark and all. */
const MIN_CUT_NAME = 16;

type Naming = Pick<DesiredMachine<unknown>, "namespace" | "name" | "ownerUID">;

/** 8 hex characters of the UID's SHA-256: short enough for a name, 2^32 values against clashes. */
export function ownerMark(ownerUID: string): string {
  return createHash("sha256").update(ownerUID).digest("hex").slice(0, 8);
}

/** `<namespace>-<name>`, cut so that `-<mark>` fits: readable, and findable from a list item. */
export function vmName(d: Naming): string {
  const mark = ownerMark(d.ownerUID);
  return `${`${d.namespace}-${d.name}`.slice(0, NAME_MAX - mark.length - 1)}-${mark}`;
}

/** The name VMs were given before the mark existed; such a VM is confirmed by its tag alone. */
function legacyName(d: Naming): string {
  return `${d.namespace}-${d.name}`.slice(0, NAME_MAX).toLowerCase();
}

/**
 * Every VM of the region once. Ends at `total_pages`, or at a page that brings no new id (an
 * API without pagination, or one that ignores `page`), whichever comes first.
 */
async function* listAll(api: M2sApi, region: string | undefined): AsyncGenerator<M2sInstance> {
  const seen = new Set<string>();
  for (let page = 1; page <= MAX_PAGES; page++) {
    const res = await api.list(page, PAGE_SIZE, region);
    let fresh = 0;
    for (const vm of res.data) {
      if (seen.has(vm.id)) continue;
      seen.add(vm.id);
      fresh++;
      yield vm;
    }
    if (fresh === 0 || (res.pagination !== undefined && page >= res.pagination.total_pages)) return;
  }
  throw new TransientError(
    `m2s list: more than ${String(MAX_PAGES * PAGE_SIZE)} VMs in region ${region ?? "(any)"}; the owner lookup gives up rather than risk a second VM`,
    { provider: "m2s", operation: "list" },
  );
}

/** The VMs carrying `cio-owner:<ownerUID>`, deleted ones excluded. */
export async function findOwned(
  api: M2sApi,
  ownerUID: string,
  desired: Naming & { region: string | undefined },
): Promise<M2sInstance[]> {
  const tag = OWNER_TAG_PREFIX + ownerUID;
  const mark = ownerMark(ownerUID);
  const legacy = legacyName({ ...desired, ownerUID });
  const ours = vmName({ ...desired, ownerUID }).toLowerCase();
  const owned: M2sInstance[] = [];
  const candidates: string[] = [];
  for await (const vm of listAll(api, desired.region)) {
    if (vm.status === "deleted") continue;
    // Where a list item does carry tags (beyond the document), they settle it without a read.
    if (vm.tags !== undefined) {
      if (vm.tags.includes(tag)) owned.push(vm);
      continue;
    }
    const name = (vm.name ?? "").toLowerCase();
    const cut = name.length >= MIN_CUT_NAME && ours.startsWith(name);
    if (name.includes(mark) || name === legacy || cut) candidates.push(vm.id);
  }
  for (const id of candidates) {
    const vm = await api.get(id);
    if (vm === undefined || vm.status === "deleted") continue;
    // A read without any tags field cannot confirm; the UID-derived mark in its name then does
    // (adopting our own VM beats creating a second one).
    const confirmed = vm.tags?.includes(tag) ?? (vm.name ?? "").toLowerCase().includes(mark);
    if (confirmed) owned.push(vm);
  }
  return owned;
}
