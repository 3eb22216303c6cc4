/**
 * Finding the VM of one CloudInstance, and every VM the operator marked, from what the m2s
 * document gives. List items carry `id, name, status, plan, region, ip_address, created_at,
 * updated_at` and no tags; tags are in the single-instance read only. So the VM name carries a
 * mark derived from the owner UID, the list narrows to the VMs whose name has it (or is the
 * older mark-less name, or our name cut short by a provider limit), and a single read of each
 * confirms the owner tag (and gives the cluster tag): one paginated list plus one read per
 * candidate, never a read per VM of the account.
 */
import { hash } from "node:crypto";
import type { DesiredMachine, OwnedMachine } from "../driver.ts";
import type { M2sApi, M2sInstance } from "./api.ts";
import { listAll, type ListBounds } from "./list.ts";

/** Tag prefix that marks a VM as owned by one CloudInstance (UID after the colon). */
export const OWNER_TAG_PREFIX = "cio-owner:";
/** Tag prefix of the cluster identity beside the owner tag (absent on VMs marked before it). */
export const CLUSTER_TAG_PREFIX = "cio-cluster:";
/** The document states no name limit; 63 (a DNS label) is what hostnames derived from it allow. */
const NAME_MAX = 63;
/** A name vmName gave: the mark is its last segment. */
const MARKED_NAME = /-[0-9a-f]{8}$/i;
/** A listed name this long that starts our name is ours cut by a provider limit, mark and all. */
const MIN_CUT_NAME = 16;

type Naming = Pick<DesiredMachine<unknown>, "namespace" | "name" | "ownerUID">;

/** 8 hex characters of the UID's SHA-256: short enough for a name, 2^32 values against clashes. */
export function ownerMark(ownerUID: string): string {
  // One-shot hash(): the same digest as createHash() (names of existing VMs depend on it),
  // without a Hash object per call (every create and owner lookup takes one).
  return hash("sha256", ownerUID, "hex").slice(0, 8);
}

/** `<namespace>-<name>`, cut so that `-<mark>` fits: readable, and findable from a list item. */
export function vmName(d: Naming): string {
  const mark = ownerMark(d.ownerUID);
  return `${`${d.namespace}-${d.name}`.slice(0, NAME_MAX - mark.length - 1)}-${mark}`;
}

/** The operator's tags on a VM: the owner's, and the cluster's when this cluster has an identity. */
export function markTags(ownerUID: string, clusterID: string): string[] {
  return [OWNER_TAG_PREFIX + ownerUID, ...(clusterID === "" ? [] : [CLUSTER_TAG_PREFIX + clusterID])];
}

const isMarkTag = (t: string): boolean => t.startsWith(OWNER_TAG_PREFIX) || t.startsWith(CLUSTER_TAG_PREFIX);

/** The user's tags alone: the operator's own are never shown nor compared. */
export function userTags(tags: readonly string[]): string[] {
  return tags.filter((t) => !isMarkTag(t));
}

/** Owner UID and cluster from a VM's tags; an empty value counts as none. */
export function readMark(tags: readonly string[]): { ownerUID?: string; cluster?: string } {
  const value = (prefix: string): string | undefined =>
    tags.find((t) => t.startsWith(prefix) && t.length > prefix.length)?.slice(prefix.length);
  const ownerUID = value(OWNER_TAG_PREFIX);
  const cluster = value(CLUSTER_TAG_PREFIX);
  return { ...(ownerUID === undefined ? {} : { ownerUID }), ...(cluster === undefined ? {} : { cluster }) };
}

/** The name VMs were given before the mark existed; such a VM is confirmed by its tag alone. */
function legacyName(d: Naming): string {
  return `${d.namespace}-${d.name}`.slice(0, NAME_MAX).toLowerCase();
}

/** The VMs carrying `cio-owner:<ownerUID>`, deleted ones excluded. */
export async function findOwned(
  api: M2sApi,
  ownerUID: string,
  desired: Naming & { region: string | undefined },
  bounds: ListBounds,
): Promise<M2sInstance[]> {
  const tag = OWNER_TAG_PREFIX + ownerUID;
  const mark = ownerMark(ownerUID);
  const legacy = legacyName({ ...desired, ownerUID });
  const ours = vmName({ ...desired, ownerUID }).toLowerCase();
  const owned: M2sInstance[] = [];
  const candidates: string[] = [];
  for await (const vm of listAll(api, desired.region, bounds)) {
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
    const vm = await api.get(id, bounds.signal);
    if (vm === undefined || vm.status === "deleted") continue;
    // A read without any tags field cannot confirm; the UID-derived mark in its name then does
    // (adopting our own VM beats creating a second one).
    const confirmed = vm.tags?.includes(tag) ?? (vm.name ?? "").toLowerCase().includes(mark);
    if (confirmed) owned.push(vm);
  }
  return owned;
}

/**
 * Every VM of the account with an owner tag. Only the names vmName gives (ending in the 8-hex
 * mark) are read: the mark is a digest, so the UID and the cluster come from the read's tags.
 * VMs named before the mark existed carry no sign of it in a list item and are not listed
 * (where list items carry tags, beyond the document, every tagged VM is).
 */
export async function listMarked(api: M2sApi, bounds: ListBounds): Promise<OwnedMachine[]> {
  const owned: OwnedMachine[] = [];
  const candidates: string[] = [];
  const add = (id: string, tags: readonly string[]): void => {
    const mark = readMark(tags);
    if (mark.ownerUID !== undefined) owned.push({ id, ownerUID: mark.ownerUID, cluster: mark.cluster });
  };
  for await (const vm of listAll(api, undefined, bounds)) {
    if (vm.status === "deleted") continue;
    if (vm.tags !== undefined) add(vm.id, vm.tags);
    else if (MARKED_NAME.test(vm.name ?? "")) candidates.push(vm.id);
  }
  for (const id of candidates) {
    const vm = await api.get(id, bounds.signal);
    // No tags field: nothing names an owner, and an unmarked VM is never reported.
    if (vm !== undefined && vm.status !== "deleted") add(vm.id, vm.tags ?? []);
  }
  return owned;
}
