import type { AnyObject } from "../../kube/object.ts";

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? {}) === JSON.stringify(b ?? {});

/**
 * An update worth a reconcile: the spec changed (generation), deletion began, or annotations
 * or labels changed (they steer the reconciler: paused, external-id, reconcile-requested-at …).
 * Status-only and finalizer-only updates — the reconciler's own writes — are skipped, so a
 * status write does not cost a second reconcile and a provider call; the reconciler requeues
 * itself when it needs to look again. controller-runtime's GenerationChangedPredicate, plus
 * the metadata this operator reads.
 */
export function specOrMetadataChanged(old: AnyObject, obj: AnyObject): boolean {
  const a = old.metadata;
  const b = obj.metadata;
  return (
    a.generation !== b.generation ||
    a.generation === undefined ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    !same(a.annotations, b.annotations) ||
    !same(a.labels, b.labels)
  );
}

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * Drops what the operator never reads from cached objects: managedFields and kubectl's copy of
 * the last applied manifest are often larger than the object itself (controller-runtime's
 * TransformStripManagedFields). Status writes go to the status subresource, so nothing
 * stripped here is ever written back.
 */
export function stripUnread<T extends AnyObject>(obj: T): T {
  const meta = obj.metadata as AnyObject["metadata"] & { managedFields?: unknown };
  const annotations = meta.annotations;
  if (meta.managedFields === undefined && annotations?.[LAST_APPLIED] === undefined) return obj;
  const { managedFields: _m, ...rest } = meta;
  const kept =
    annotations === undefined
      ? undefined
      : Object.fromEntries(Object.entries(annotations).filter(([k]) => k !== LAST_APPLIED));
  return { ...obj, metadata: { ...rest, ...(kept === undefined ? {} : { annotations: kept }) } };
}
