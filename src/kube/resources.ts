import { GROUP, VERSION, type CloudInstance, type InstanceTemplate } from "../api/index.ts";
import type { KubeEvent, KubeObject, Lease, Secret } from "./core-types.ts";

/**
 * Where a kind lives in the REST API. `T` is the object type the client returns for it
 * (phantom: only the type checker reads it).
 */
export interface Resource<T extends KubeObject = KubeObject> {
  /** "" for the core group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
  readonly apiVersion: string;
  /** Never set: carries `T` for inference. */
  readonly __type?: T;
}

function resource<T extends KubeObject>(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
): Resource<T> {
  return {
    group,
    version,
    kind,
    plural,
    namespaced,
    apiVersion: group === "" ? version : `${group}/${version}`,
  };
}

export const CloudInstanceResource = resource<CloudInstance>(
  GROUP,
  VERSION,
  "CloudInstance",
  "cloudinstances",
  true,
);
export const InstanceTemplateResource = resource<InstanceTemplate>(
  GROUP,
  VERSION,
  "InstanceTemplate",
  "instancetemplates",
  true,
);
export const SecretResource = resource<Secret>("", "v1", "Secret", "secrets", true);
export const NamespaceResource = resource<KubeObject>("", "v1", "Namespace", "namespaces", false);
export const EventResource = resource<KubeEvent>("", "v1", "Event", "events", true);
export const LeaseResource = resource<Lease>("coordination.k8s.io", "v1", "Lease", "leases", true);

/** The API server's own answer to "who is this token" and "may they do this" (metrics access). */
export interface AccessReview extends KubeObject {
  spec: Record<string, unknown>;
  status?: {
    authenticated?: boolean;
    allowed?: boolean;
    user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  };
}
export const TokenReviewResource = resource<AccessReview>(
  "authentication.k8s.io",
  "v1",
  "TokenReview",
  "tokenreviews",
  false,
);
export const SubjectAccessReviewResource = resource<AccessReview>(
  "authorization.k8s.io",
  "v1",
  "SubjectAccessReview",
  "subjectaccessreviews",
  false,
);

/** Collection path: /api/v1/namespaces/ns/secrets, /apis/g/v/cloudinstances (all namespaces) … */
export function collectionPath(res: Resource, namespace: string | undefined): string {
  const base = res.group === "" ? `/api/${res.version}` : `/apis/${res.group}/${res.version}`;
  const ns = res.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `${base}${ns}/${res.plural}`;
}

export function objectPath(res: Resource, namespace: string | undefined, name: string): string {
  return `${collectionPath(res, namespace)}/${encodeURIComponent(name)}`;
}
