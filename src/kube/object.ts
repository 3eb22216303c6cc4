import type { KubeObject } from "./core-types.ts";

export type { KubeObject } from "./core-types.ts";
/** The name src/controller/manager.ts still imports; the same type as KubeObject. */
export type AnyObject = KubeObject;

/** The cache and queue key of an object: `namespace/name`, or `name` for cluster-scoped kinds. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata.namespace;
  const name = obj.metadata.name ?? "";
  return ns ? `${ns}/${name}` : name;
}

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
