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
