import { SPEC_DEFAULTS, type CloudInstance } from "../../src/api/index.ts";
import type { Secret } from "../../src/controller/ports.ts";

/** A valid CloudInstance for the in-memory API server's CRD validation. */
export function instance(
  namespace: string,
  name: string,
  labels: Record<string, string> = {},
): CloudInstance {
  return {
    apiVersion: "compute.instance-operator.dev/v1alpha1",
    kind: "CloudInstance",
    metadata: { namespace, name, labels },
    spec: {
      provider: { name: "m2s", credentialsSecretRef: { name: "creds" } },
      region: "fr-par-1",
      plan: "business",
      image: "ubuntu-22.04",
      ...SPEC_DEFAULTS,
    },
  };
}

export function secret(namespace: string, name: string, data: Record<string, string>): Secret {
  return {
    metadata: { namespace, name },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
  };
}
