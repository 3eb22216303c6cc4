import type {
  CoreV1Event,
  KubernetesObject,
  V1DeleteOptions,
  V1Lease,
  V1ListMeta,
  V1ObjectReference,
  V1Secret,
  V1Status,
  V1WatchEvent,
} from "@kubernetes/client-node";
import type { ObjectMeta, Wire } from "../api/index.ts";

/**
 * The Kubernetes core types the operator reads and writes, taken from @kubernetes/client-node
 * (type-only imports: nothing of it loads at runtime) as they travel as JSON (see `Wire`).
 * Objects the API server returns always carry metadata, so it is required here.
 */
export type KubeObject = Wire<KubernetesObject> & { metadata: ObjectMeta };
export type ObjectReference = Wire<V1ObjectReference>;
export type KubeEvent = Wire<CoreV1Event>;
export type Lease = Wire<V1Lease> & { metadata: ObjectMeta };
export type Secret = Wire<V1Secret> & { metadata: ObjectMeta };
export type KubeStatus = Wire<V1Status>;
/** client-node renames the JSON field `continue` (a reserved word) to `_continue`; on the wire it is `continue`. */
export type ListMeta = Omit<Wire<V1ListMeta>, "_continue"> & { continue?: string };
export type DeleteOptions = Pick<Wire<V1DeleteOptions>, "preconditions" | "propagationPolicy">;

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";
/** client-node's V1WatchEvent with its `type` and `object` narrowed to what a typed watch yields. */
export type WatchEvent<T> = Omit<V1WatchEvent, "type" | "object"> & { type: WatchEventType; object: T };
