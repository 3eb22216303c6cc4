import type { ProviderDefinition } from "../providers/definition.ts";
import type { ProviderRef } from "../api/index.ts";
import type { Driver } from "../providers/driver.ts";
import type { EndpointPolicy } from "../providers/endpoint-policy.ts";
import type { DriverPool } from "../providers/pool.ts";
import type { ReadCache, Secret } from "./ports.ts";
import { decodeSecret } from "./secrets.ts";

/** The label a Secret must carry before the operator reads it as provider credentials. */
export const CREDENTIALS_LABEL = "compute.instance-operator.dev/credentials";
export const CREDENTIALS_SELECTOR = `${CREDENTIALS_LABEL}=true`;

export type AccessRefusal = "EndpointNotAllowed" | "SecretNotFound" | "SecretNotLabelled";

/** The object cannot reach its provider until its user (or the cluster admin) changes something. */
export class AccessRefusedError extends Error {
  override readonly name = "AccessRefusedError";
  readonly code = "ERR_ACCESS_REFUSED";
  readonly terminal = true;
  readonly reason: AccessRefusal;
  constructor(reason: AccessRefusal, message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface ProviderAccessDeps {
  drivers: DriverPool;
  endpoints: EndpointPolicy;
  /** Labelled Secrets only (the cache's label selector): unrelated Secrets are never held. */
  secrets: ReadCache<Secret>;
  /**
   * Whether a Secret missing from the cache exists without the label, read from the API
   * server and dropped: the user then learns which label to add instead of "not found".
   */
  secretExists(namespace: string, name: string): Promise<boolean>;
}

export interface OpenedDriver {
  driver: Driver<unknown>;
  factory: ProviderDefinition;
}

/**
 * Decoded credentials by cached Secret object: the cache replaces an object on every change
 * and never mutates one, so the same object decodes to the same credentials, and the pool
 * sees the same record (and keeps its digest) until the Secret changes.
 */
const decodedSecrets = new WeakMap<Secret, Record<string, string>>();
function decoded(secret: Secret): Record<string, string> {
  let credentials = decodedSecrets.get(secret);
  if (credentials === undefined) {
    credentials = Object.freeze(decodeSecret(secret));
    decodedSecrets.set(secret, credentials);
  }
  return credentials;
}

/**
 * The one way from an object's `spec.provider` to a driver: the endpoint is checked against
 * the admin's policy before any Secret is read, the Secret must be in the object's namespace
 * and opt in with the credentials label, and the pool hands out the account's shared driver.
 */
export async function openDriver(
  deps: ProviderAccessDeps,
  namespace: string,
  provider: ProviderRef,
): Promise<OpenedDriver> {
  const factory = deps.drivers.factory(provider.name);
  const endpoint = provider.endpoint ?? factory.defaultEndpoint;
  const verdict = deps.endpoints.check(endpoint);
  if (!verdict.ok) throw new AccessRefusedError("EndpointNotAllowed", verdict.message);
  const secretName = provider.credentialsSecretRef?.name;
  let credentials: Record<string, string> = {};
  if (secretName !== undefined) {
    const secret = deps.secrets.get(namespace, secretName);
    if (secret?.metadata.labels?.[CREDENTIALS_LABEL] !== "true") {
      if (secret !== undefined || (await deps.secretExists(namespace, secretName))) {
        throw new AccessRefusedError(
          "SecretNotLabelled",
          `Secret "${namespace}/${secretName}" is not labelled as credentials; add the label ${CREDENTIALS_SELECTOR} ` +
            `(kubectl label secret ${secretName} -n ${namespace} ${CREDENTIALS_SELECTOR})`,
        );
      }
      throw new AccessRefusedError("SecretNotFound", `Secret "${namespace}/${secretName}" not found`);
    }
    credentials = decoded(secret);
  }
  const driver = deps.drivers.get({
    provider: provider.name,
    endpoint: provider.endpoint,
    secretName: secretName === undefined ? undefined : `${namespace}/${secretName}`,
    credentials,
  });
  return { driver, factory };
}
