import { z } from "zod";
import {
  mapState,
  observedHead,
  type ObservedMachine,
  type OwnedMachine,
  type StateTable,
} from "../driver.ts";
import { InvalidRequestError } from "../errors.ts";

/**
 * InstanceName of every VM the operator creates: `cio-<uid>--<cluster>`, or `cio-<uid>` when
 * the cluster identity is unknown (and on VMs made before marks carried one). The name is the
 * only field CreateInstance sets atomically with the VM and DescribeInstances both filters by
 * and lists, so one paged list tells every VM's owner. `--` is in no Kubernetes UID (a UUID)
 * and no cluster identity ([a-z0-9]), so the mark splits at its first one.
 */
export const OWNER_PREFIX = "cio-";
const CLUSTER_SEPARATOR = "--";

/** The InstanceName marking a VM as the owner's, in this cluster. */
export function ownerName(ownerUID: string, clusterID: string): string {
  return clusterID === ""
    ? `${OWNER_PREFIX}${ownerUID}`
    : `${OWNER_PREFIX}${ownerUID}${CLUSTER_SEPARATOR}${clusterID}`;
}

/**
 * Names an owner's VM may carry: this cluster's mark, and the mark without a cluster (VMs
 * made before marks carried one, or while the cluster identity could not be read).
 */
export function ownerNames(ownerUID: string, clusterID: string): string[] {
  return clusterID === ""
    ? [ownerName(ownerUID, "")]
    : [ownerName(ownerUID, clusterID), ownerName(ownerUID, "")];
}

/** The owner and cluster a name marks, undefined for a name the operator did not give. */
export function markOf(name: string | undefined): Omit<OwnedMachine, "id"> | undefined {
  if (name?.startsWith(OWNER_PREFIX) !== true) return undefined;
  const rest = name.slice(OWNER_PREFIX.length);
  const at = rest.indexOf(CLUSTER_SEPARATOR);
  const ownerUID = at < 0 ? rest : rest.slice(0, at);
  const cluster = at < 0 ? "" : rest.slice(at + CLUSTER_SEPARATOR.length);
  if (ownerUID === "" || (at >= 0 && cluster === "")) return undefined;
  return { ownerUID, cluster: at < 0 ? undefined : cluster };
}
/**
 * Metadata keys the driver owns. DescribeInstances shows neither the image nor any tag, so
 * both live in the instance's metadata (GetInstanceMetadata / PutInstanceMetadata, documented).
 */
export const META = {
  tags: "cio-tags",
  image: "cio-image",
  /**
   * The lease end (GetInstanceContractInfo.expireAt) a renewal was last sent from, written
   * before RenewInstance: a lease end is never charged twice, a crash included.
   */
  renewedFrom: "cio-renewed-from",
} as const;
/**
 * providerData key, written only when the metadata write after create failed: the image the VM
 * was created from, so a later read can write it again (the status keeps it across restarts).
 */
export const CREATED_IMAGE = "mosCreatedImage";

/** Every instance id in the document is a UUID; InstanceId also accepts a *name*, so nothing else goes out. */
const INSTANCE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The id, checked before it goes into a request: a name there would address another VM. */
export function instanceId(id: string): string {
  if (INSTANCE_ID.test(id)) return id;
  throw new InvalidRequestError(
    `mos: ${JSON.stringify(id.slice(0, 64))} is not a MOS instance id (a UUID such as 027ff1d8-e3a0-4e2e-a1e1-03d6ee03c353); nothing was sent`,
    { provider: "mos", reason: "InvalidInstanceID" },
  );
}

/**
 * running, ready and suspend are the document's; the rest are assumptions (an EC2/OpenStack
 * vocabulary) that only refine the phase shown while waiting. Any other status goes through
 * mapState: waited on, reported after a while, never holding a deletion.
 */
export const STATES: StateTable = {
  running: { phase: "Running", transitional: false },
  ready: { phase: "Stopped", transitional: false },
  // MOS accepts no start while suspended: Failed stops the reconciler from asking until the
  // lease is renewed or the balance topped up (auto-renewal still runs on a Failed VM).
  suspend: {
    phase: "Failed",
    transitional: false,
    message: "suspended by MOS for billing (the lease expired or the balance ran out): renew or top up",
  },
  error: { phase: "Failed", transitional: false },
  stopping: { phase: "Stopping", transitional: true },
  terminating: { phase: "Deleting", transitional: true },
  deleting: { phase: "Deleting", transitional: true },
  pending: { phase: "Provisioning", transitional: true },
  // Powered on while they run: a deletion need not wait for them.
  starting: { phase: "Running", transitional: true },
  rebooting: { phase: "Running", transitional: true },
  rebuilding: { phase: "Provisioning", transitional: true },
  resizing: { phase: "Provisioning", transitional: true },
};

/** XML renders an empty set as an empty element (""); it means "none", like a missing one. */
const orNone = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (v === "" ? undefined : v), schema.nullable().optional());

export const InstanceSchema = z.looseObject({
  instanceId: z.coerce.string(),
  instanceName: z.coerce.string().optional(),
  instanceType: z.coerce.string().optional(),
  status: z.coerce.string(),
  ipAddresses: z
    .union([z.string(), z.array(z.string())])
    .nullable()
    .optional(),
});
export type Instance = z.infer<typeof InstanceSchema>;
export const InstanceSetSchema = z.looseObject({
  InstanceSet: orNone(
    z.looseObject({
      Instance: z.array(InstanceSchema).optional(),
      Total: z.coerce.number().optional(),
    }),
  ),
});
export const ReturnSchema = z.looseObject({ return: z.coerce.string() });
export const MetadataSchema = z.looseObject({
  InstanceMetadata: orNone(z.record(z.string(), z.unknown())),
});
export const InstanceTypeSetSchema = z.looseObject({
  InstanceTypeSet: orNone(
    z.looseObject({
      InstanceType: z
        .array(
          z.looseObject({ instanceType: z.coerce.string(), instanceTypeId: z.coerce.string().optional() }),
        )
        .optional(),
      Total: z.coerce.number().optional(),
    }),
  ),
});
export const TemplateSetSchema = z.looseObject({
  TemplateSet: orNone(
    z.looseObject({
      Template: z
        .array(
          z.looseObject({
            templateId: z.coerce.string(),
            templateName: z.coerce.string().optional(),
            status: z.coerce.string().optional(),
          }),
        )
        .optional(),
    }),
  ),
});
export const KeyPairSetSchema = z.looseObject({
  KeyPairSet: orNone(
    z.looseObject({ KeyPair: z.array(z.looseObject({ keyName: z.coerce.string() })).optional() }),
  ),
});

export type Metadata = Readonly<Record<string, unknown>>;

/** A metadata value the driver wrote, or undefined when it is missing or empty. */
export function metaValue(metadata: Metadata | undefined, key: string): string | undefined {
  const v = metadata?.[key];
  return typeof v === "string" && v !== "" ? v : undefined;
}

function tagsOf(metadata: Metadata): string[] {
  const raw = metaValue(metadata, META.tags);
  if (raw === undefined) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    return Array.isArray(parsed) ? parsed.map(String) : [];
  } catch {
    return [];
  }
}

const PRIVATE = /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/;

/** One instance (a list item of DescribeInstances, or CreateInstance's answer) plus its metadata. */
export function observe(i: Instance, metadata: Metadata | undefined): ObservedMachine {
  const s = mapState(STATES, i.status, "mos");
  // "IP地址列表" is a string whose separator the document does not show.
  const ips = (Array.isArray(i.ipAddresses) ? i.ipAddresses : (i.ipAddresses ?? "").split(/[\s,;]+/)).filter(
    Boolean,
  );
  const name = i.instanceName ?? "";
  const image = metaValue(metadata, META.image);
  const mark = markOf(name);
  return {
    ...observedHead(i.instanceId, i.status, s, mark),
    ...(name === "" ? {} : { name }),
    ...(i.instanceType === undefined ? {} : { plan: i.instanceType }),
    ...(image === undefined ? {} : { image }),
    ...(metadata === undefined ? {} : { tags: tagsOf(metadata) }),
    addresses: { public: ips.filter((a) => !PRIVATE.test(a)), private: ips.filter((a) => PRIVATE.test(a)) },
  };
}

/** PutInstanceMetadata's parameters for the driver's keys. */
export function metadataParams(
  id: string,
  entries: { image?: string | undefined; tags?: readonly string[] | undefined; renewedFrom?: string },
): Record<string, string> {
  const pairs: [string, string][] = [];
  if (entries.image !== undefined) pairs.push([META.image, entries.image]);
  if (entries.tags !== undefined) pairs.push([META.tags, JSON.stringify([...entries.tags])]);
  if (entries.renewedFrom !== undefined) pairs.push([META.renewedFrom, entries.renewedFrom]);
  const params: Record<string, string> = { InstanceId: id };
  pairs.forEach(([k, v], n) => {
    params[`Name.${String(n + 1)}`] = k;
    params[`Value.${String(n + 1)}`] = v;
  });
  return params;
}
