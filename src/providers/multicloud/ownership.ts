import { z } from "zod";
import { InvalidRequestError, ProviderError } from "../errors.ts";
import { instanceSegment, type MulticloudApi, type Signal } from "./api.ts";

/** Prefix of everything the operator names at jupiter: templates and correlation ids. */
export const NAME_PREFIX = "cio-";

/** Who a VM belongs to, as its mark says: the object's UID and, since marks carry one, the cluster's. */
export interface Mark {
  ownerUID: string;
  cluster: string | undefined;
}

/** A Kubernetes UID, the owner part of a mark. */
const UID = "[A-Za-z0-9][A-Za-z0-9-]{0,99}";
/**
 * The cluster identity as it may stand in a mark (the operator's is 2-16 of [a-z0-9]; "-" is
 * let through for test identities). Never ".", which separates it from the UID.
 */
const CLUSTER = "[a-z0-9][a-z0-9-]{0,31}";
const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const whole = (pattern: string): RegExp => new RegExp(`^${pattern}$`);
/** A mark with a cluster: "." appears in no UID and no twin name, so any UID reads back. */
const WITH_CLUSTER = whole(`${NAME_PREFIX}(${UID})\\.(${CLUSTER})`);
/**
 * A mark without one (made before marks carried one, or with no cluster identity): only a
 * UUID reads back — a twin of an InstanceTemplate is `cio-<uid>-<digest>`, which any looser
 * pattern would take for an owner.
 */
const WITHOUT_CLUSTER = whole(`${NAME_PREFIX}(${UUID})`);
const IS_UID = whole(UID);
const IS_CLUSTER = whole(CLUSTER);
const IS_UUID = whole(UUID);

/** Whether a string may stand as the owner part of a mark (a Kubernetes UID). */
export const isOwnerUID = (uid: string): boolean => IS_UID.test(uid);
const isCluster = (cluster: string): boolean => IS_CLUSTER.test(cluster);

/** The owner the create recorded in providerData, when it is one. */
export function ownerOf(providerData: Readonly<Record<string, string>>): Mark | undefined {
  const uid = providerData.ownerUID;
  if (uid === undefined || !isOwnerUID(uid)) return undefined;
  const cluster = providerData.ownerCluster;
  return { ownerUID: uid, cluster: cluster !== undefined && isCluster(cluster) ? cluster : undefined };
}

/**
 * The ownership mark of one CloudInstance: the name of its private template and the
 * X-CORRELATION-ID of its expand and delete. `cio-<uid>.<cluster>`, or `cio-<uid>` without a
 * cluster identity (the form marks had before).
 */
export function ownerMark(ownerUID: string, clusterID: string): string {
  if (clusterID === "") return `${NAME_PREFIX}${ownerUID}`;
  if (!isCluster(clusterID))
    throw new InvalidRequestError(
      `multicloud: the cluster identity ${JSON.stringify(clusterID.slice(0, 40))} cannot stand in an ownership mark`,
      { provider: "multicloud", reason: "InvalidSpec" },
    );
  return `${NAME_PREFIX}${ownerUID}.${clusterID}`;
}

/** The owner a template name marks, when it is a private template's (either form). */
export function readMark(name: string): Mark | undefined {
  const withCluster = WITH_CLUSTER.exec(name);
  if (withCluster?.[1] !== undefined) return { ownerUID: withCluster[1], cluster: withCluster[2] };
  const without = WITHOUT_CLUSTER.exec(name);
  return without?.[1] === undefined ? undefined : { ownerUID: without[1], cluster: undefined };
}

/** Whether a template is this owner's private one: the exact legacy name, or any mark with its UID. */
export const isPrivateOf = (name: string, ownerUID: string): boolean =>
  name === ownerMark(ownerUID, "") || readMark(name)?.ownerUID === ownerUID;

/**
 * A private template of a Kubernetes object (its UID is a UUID), with or without a cluster.
 * Shared twins of InstanceTemplates carry a digest after the UID and never match.
 */
export const isPrivateTemplate = (name: string): boolean => {
  const mark = readMark(name);
  return mark !== undefined && IS_UUID.test(mark.ownerUID);
};

/** A correlation id no object has (UIDs are UUIDs): logs under it prove the read does not filter. */
const PROBE = `${NAME_PREFIX}ownership-probe`;

type Logs = "some" | "none";

/**
 * A log read's content ("日志信息", a JSON value the document does not detail), as far as it is
 * read: whether it holds any log at all.
 */
const LogContent = z
  .json()
  .optional()
  .transform((c): Logs => {
    if (c === null || c === undefined) return "none";
    if (typeof c === "string") return c.trim() === "" ? "none" : "some";
    if (Array.isArray(c)) return c.length === 0 ? "none" : "some";
    if (typeof c === "object") return Object.keys(c).length === 0 ? "none" : "some";
    return "some";
  });

/**
 * Who an instance of a shared template belongs to. The document says jupiter stores an
 * expand's logs under its X-CORRELATION-ID and filters log reads by it
 * (`GET /v1/instance/log/:correlationId/:instanceId`), but not what the content looks like.
 * An instance is the object's when logs come back under the object's correlation id and none
 * under a correlation id nobody uses; when the read does not filter (the source appends the
 * host's own logs to every answer), the driver says it cannot tell instead of guessing —
 * guessing "no" duplicates a VM, guessing "yes" hands one object another's VM.
 */
export class Ownership {
  readonly #api: MulticloudApi;
  constructor(api: MulticloudApi) {
    this.#api = api;
  }

  /**
   * The mark under which the instance's logs are kept, when it is this owner's: the one with
   * this cluster, then the one without (instances expanded before marks carried a cluster).
   * undefined when it is not the owner's.
   */
  async owns(
    instanceId: string,
    owner: { ownerUID: string; clusterID: string },
    templateId: string,
    signal: Signal,
  ): Promise<Mark | undefined> {
    const clusters = owner.clusterID === "" ? [undefined] : [owner.clusterID, undefined];
    const marks = clusters.map((cluster) => ({
      cluster,
      correlation: ownerMark(owner.ownerUID, cluster ?? ""),
    }));
    const read = (correlation: string) => this.#logs(correlation, instanceId, templateId, signal);
    for (const { cluster, correlation } of marks) {
      if ((await read(correlation)) === "none") continue;
      if ((await read(PROBE)) === "none") return { ownerUID: owner.ownerUID, cluster };
      throw cannotTell(instanceId, templateId, "the instance log read answers for any correlation id");
    }
    return undefined;
  }

  async #logs(correlation: string, instanceId: string, templateId: string, signal: Signal): Promise<Logs> {
    try {
      return await this.#api.call(
        {
          method: "GET",
          path: `/v1/instance/log/${encodeURIComponent(correlation)}/${instanceSegment(instanceId, "log")}`,
          operation: "log",
          signal,
        },
        LogContent,
      );
    } catch (err) {
      if (err instanceof ProviderError && !err.terminal) throw err;
      throw cannotTell(instanceId, templateId, `the instance log read failed: ${errorText(err)}`);
    }
  }
}

function cannotTell(instanceId: string, templateId: string, why: string): InvalidRequestError {
  return new InvalidRequestError(
    `multicloud: cannot tell whether instance ${instanceId} of shared template ${templateId} belongs to this object (${why}); ` +
      `rather than risk a duplicate VM nothing is created; if one of the template's instances is this object's, ` +
      `adopt it with the annotation compute.instance-operator.dev/external-id`,
    { provider: "multicloud", operation: "findByOwner", reason: "OwnershipUnknown" },
  );
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
