import type { KubeObject } from "../kube/core-types.ts";

/**
 * What reconcilers need from the Kubernetes side, kept this narrow so the decision code
 * never depends on transport details. Implemented over the kube client and the caches.
 * The object types themselves are client-node's (src/kube/core-types.ts).
 */
export type { KubeObject, Secret } from "../kube/core-types.ts";

export interface ReadCache<T> {
  get(namespace: string, name: string): T | undefined;
}

export interface MetadataPatch {
  /** The full new list (merge patch replaces lists). */
  finalizers?: string[];
  /** null removes an annotation. */
  annotations?: Record<string, string | null>;
}

export interface ObjectWriter<T extends KubeObject, S> {
  /** Merge-patches metadata guarded by the object's resourceVersion; returns the updated object. */
  patchMetadata(obj: T, patch: MetadataPatch, signal?: AbortSignal): Promise<T>;
  /**
   * Replaces .status through the status subresource. Status belongs to the controller alone,
   * so a conflict is resolved by re-reading and writing again (last writer wins on status).
   */
  replaceStatus(obj: T, status: S, signal?: AbortSignal): Promise<T>;
  /** replaceStatus for a caller that does not use the updated object (it is not read back). */
  writeStatus(obj: T, status: S, signal?: AbortSignal): Promise<void>;
  create(obj: T, signal?: AbortSignal): Promise<T>;
  /** Resolves when deleted or already gone. */
  delete(namespace: string, name: string, signal?: AbortSignal): Promise<void>;
}

export interface EventSink {
  /** Never throws: events are best-effort, a failure is logged by the implementation. */
  record(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void;
}
