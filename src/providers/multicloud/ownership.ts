import { z } from "zod";
import { InvalidRequestError, ProviderError } from "../errors.ts";
import { instanceSegment, type MulticloudApi } from "./api.ts";

/** Prefix of everything the operator names at jupiter: templates and correlation ids. */
export const NAME_PREFIX = "cio-";
/** X-CORRELATION-ID of every expand and delete for one CloudInstance. */
export const correlationId = (ownerUID: string): string => `${NAME_PREFIX}${ownerUID}`;
/** Name of the remote template of a CloudInstance without an InstanceTemplate. */
export const privateTemplateName = (ownerUID: string): string => `${NAME_PREFIX}${ownerUID}`;
/**
 * A private template of a Kubernetes object (its UID is a UUID). Shared twins of
 * InstanceTemplates carry a digest after the UID and never match.
 */
export const PRIVATE_TEMPLATE = /^cio-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A correlation id no object has (UIDs are UUIDs): logs under it prove the read does not filter. */
const PROBE = `${NAME_PREFIX}ownership-probe`;

type Logs = "some" | "none";

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

  async owns(instanceId: string, ownerUID: string, templateId: string): Promise<boolean> {
    try {
      if ((await this.#logs(correlationId(ownerUID), instanceId)) === "none") return false;
      if ((await this.#logs(PROBE, instanceId)) === "none") return true;
    } catch (err) {
      if (err instanceof ProviderError && !err.terminal) throw err;
      throw cannotTell(instanceId, templateId, `the instance log read failed: ${errorText(err)}`);
    }
    throw cannotTell(instanceId, templateId, "the instance log read answers for any correlation id");
  }

  async #logs(correlation: string, instanceId: string): Promise<Logs> {
    const content = await this.#api.call(
      {
        method: "GET",
        path: `/v1/instance/log/${encodeURIComponent(correlation)}/${instanceSegment(instanceId, "log")}`,
        operation: "log",
      },
      z.unknown(),
    );
    if (content === null || content === undefined) return "none";
    if (typeof content === "string") return content.trim() === "" ? "none" : "some";
    if (Array.isArray(content)) return content.length === 0 ? "none" : "some";
    if (typeof content === "object") return Object.keys(content).length === 0 ? "none" : "some";
    return "some";
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
