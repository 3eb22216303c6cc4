import type { Observation } from "./decision.ts";

/** What the reconciler knows before asking the provider anything. */
export interface ObservationFacts {
  deleting: boolean;
  /** The external-id annotation. */
  externalId: string | undefined;
  statusId: string | undefined;
  statusPhase: string | undefined;
  /**
   * A VM this process created whose id the cache does not show yet (expectations): a
   * reconcile on a cache older than its own status write must not create a second one.
   */
  recentId: string | undefined;
  /** The object had no finalizer when this pass began: nothing can have created its VM. */
  firstContact: boolean;
  canFindByOwner: boolean;
  /** The create-pending annotation (a create sent on a provider without lookup by owner). */
  createPending: string | undefined;
}

/**
 * The reads a pass makes, decided without I/O: read the VM by id (and, if it is gone, look
 * for another carrying the owner UID), look it up by owner, or ask nothing at all.
 */
export type ObservationPlan =
  | { read: "byId"; id: string; fromRecentCreate: boolean; ownerLookupIfGone: boolean }
  | { read: "byOwner" }
  | { read: "nothing"; observation: Observation };

export function planObservation(f: ObservationFacts): ObservationPlan {
  const adopted = f.externalId !== undefined;
  const knownId = f.externalId ?? f.statusId;
  // Deletion's first pass calls delete at once (a VM already gone counts as deleted), which
  // saves a read per VM; an adopted VM is read first, it may be another object's.
  if (f.deleting && !adopted && knownId !== undefined && f.statusPhase !== "Deleting")
    return { read: "nothing", observation: { kind: "unobserved", id: knownId } };
  const recent = f.recentId !== undefined && f.recentId !== f.statusId ? f.recentId : undefined;
  const id = f.externalId ?? recent ?? f.statusId;
  if (id !== undefined)
    return {
      read: "byId",
      id,
      fromRecentCreate: f.externalId === undefined && recent !== undefined,
      // Gone by id: before anything recreates it, make sure no other VM carries our UID. A
      // deletion recreates nothing and an adopted VM is never recreated: the provider's word is enough.
      ownerLookupIfGone: f.canFindByOwner && !f.deleting && !adopted,
    };
  return afterLookupByIdFailed(f);
}

/** No id to read (or the one read is gone): the owner lookup, the create-pending marker, or absent. */
export function afterLookupByIdFailed(f: ObservationFacts): ObservationPlan {
  if (f.firstContact && f.recentId === undefined) return { read: "nothing", observation: { kind: "absent" } };
  if (f.canFindByOwner) return { read: "byOwner" };
  if (f.createPending !== undefined)
    return { read: "nothing", observation: { kind: "unverifiable", since: f.createPending } };
  return { read: "nothing", observation: { kind: "absent" } };
}
