import type { ObjectMeta } from "../api/index.ts";

/** Anything with Kubernetes object metadata: the constraint of every typed kube call. */
export interface AnyObject {
  apiVersion?: string | undefined;
  kind?: string | undefined;
  metadata: ObjectMeta;
}

/** The cache and queue key of an object: `namespace/name`, or `name` for cluster-scoped kinds. */
export function objectKey(obj: AnyObject): string {
  const ns = obj.metadata.namespace;
  const name = obj.metadata.name ?? "";
  return ns ? `${ns}/${name}` : name;
}

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
