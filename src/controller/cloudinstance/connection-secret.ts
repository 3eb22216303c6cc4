import type { CloudInstance, CloudInstanceStatus } from "../../api/index.ts";
import { API_VERSION } from "../../api/index.ts";
import { shortDigest } from "../../util/digest.ts";
import { ed25519KeyPair } from "../../util/ssh-keys.ts";
import type { Secret } from "../ports.ts";
import { decodeSecret } from "../secrets.ts";

/** Where connection Secrets are read and written: the API server itself (they are never cached). */
export interface ConnectionSecretStore {
  get(namespace: string, name: string): Promise<Secret | undefined>;
  create(secret: Secret): Promise<void>;
  /** Replaces the Secret, guarded by its resourceVersion. */
  update(secret: Secret): Promise<void>;
  delete(namespace: string, name: string): Promise<void>;
}

/** An existing Secret of that name belongs to something else: it is never overwritten. */
export class ConnectionSecretConflictError extends Error {
  override readonly name = "ConnectionSecretConflictError";
  readonly code = "ERR_CONNECTION_SECRET_CONFLICT";
  readonly reason = "ConnectionSecretConflict";
  readonly terminal = true;
}

const KEYS = ["ssh-privatekey", "ssh-publickey"] as const;

/** Default login of well-known cloud images; anything else is not guessed. */
const IMAGE_USERS: readonly [RegExp, string][] = [
  [/ubuntu/i, "ubuntu"],
  [/debian/i, "debian"],
  [/centos/i, "centos"],
  [/fedora/i, "fedora"],
  [/rocky/i, "rocky"],
  [/alma/i, "almalinux"],
];

export function sshUserFor(image: string | undefined): string | undefined {
  return image === undefined ? undefined : IMAGE_USERS.find(([re]) => re.test(image))?.[1];
}

/** How to reach the VM, from what status observed. Pure. */
export function connectionData(
  status: CloudInstanceStatus,
  image: string | undefined,
): Record<string, string> {
  const user = sshUserFor(status.image ?? image);
  return {
    ...(status.instanceID === undefined ? {} : { instanceID: status.instanceID }),
    publicIP: status.addresses?.public?.[0] ?? "",
    privateIP: status.addresses?.private?.[0] ?? "",
    ...(user === undefined ? {} : { sshUser: user }),
  };
}

const ownedBy = (secret: Secret, obj: CloudInstance): boolean =>
  secret.metadata.ownerReferences?.some((o) => o.uid === obj.metadata.uid) ?? false;

/**
 * Keeps one object's connection Secret: made before the VM (so a generated private key is
 * never lost to a crash), rewritten only when what it says changes (a digest in status), and
 * deleted with the object. It refuses to touch a Secret this object does not own.
 */
export class ConnectionSecrets {
  readonly #store: ConnectionSecretStore;

  constructor(store: ConnectionSecretStore) {
    this.#store = store;
  }

  /** The public key to install on a VM about to be created, generating the pair once. */
  async keyPairFor(obj: CloudInstance, name: string): Promise<string> {
    const existing = await this.#owned(obj, name);
    const data = existing === undefined ? {} : decodeSecret(existing);
    const known = data["ssh-publickey"];
    if (known !== undefined && data["ssh-privatekey"] !== undefined) return known;
    const pair = ed25519KeyPair(`${obj.metadata.namespace ?? ""}/${obj.metadata.name ?? ""}`);
    await this.#write(obj, name, existing, {
      ...data,
      "ssh-privatekey": pair.privateKey,
      "ssh-publickey": pair.publicKey,
    });
    return pair.publicKey;
  }

  /** Writes what status says about the VM when it changed; returns the status to record. */
  async sync(
    obj: CloudInstance,
    name: string,
    status: CloudInstanceStatus,
    image: string | undefined,
  ): Promise<CloudInstanceStatus> {
    if (status.instanceID === undefined) return status;
    const wanted = connectionData(status, image);
    const digest = shortDigest(name, JSON.stringify(wanted));
    if (status.connectionSecret?.name === name && status.connectionSecret.digest === digest) return status;
    const existing = await this.#owned(obj, name);
    const keep = existing === undefined ? {} : decodeSecret(existing);
    const keys = Object.fromEntries(KEYS.flatMap((k) => (keep[k] === undefined ? [] : [[k, keep[k]]])));
    await this.#write(obj, name, existing, { ...keys, ...wanted });
    return { ...status, connectionSecret: { name, digest } };
  }

  async remove(obj: CloudInstance, name: string): Promise<void> {
    const existing = await this.#store.get(obj.metadata.namespace ?? "", name);
    if (existing !== undefined && ownedBy(existing, obj))
      await this.#store.delete(obj.metadata.namespace ?? "", name);
  }

  async #owned(obj: CloudInstance, name: string): Promise<Secret | undefined> {
    const existing = await this.#store.get(obj.metadata.namespace ?? "", name);
    if (existing !== undefined && !ownedBy(existing, obj))
      throw new ConnectionSecretConflictError(
        `Secret "${obj.metadata.namespace ?? ""}/${name}" exists and is not this object's; choose another writeConnectionSecretToRef`,
      );
    return existing;
  }

  async #write(
    obj: CloudInstance,
    name: string,
    existing: Secret | undefined,
    data: Record<string, string>,
  ): Promise<void> {
    const secret: Secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name,
        namespace: obj.metadata.namespace ?? "",
        ...(existing?.metadata.resourceVersion === undefined
          ? {}
          : { resourceVersion: existing.metadata.resourceVersion }),
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: "CloudInstance",
            name: obj.metadata.name ?? "",
            uid: obj.metadata.uid ?? "",
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
    };
    if (existing === undefined) await this.#store.create(secret);
    else await this.#store.update(secret);
  }
}
