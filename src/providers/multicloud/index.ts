import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { z } from "zod";
import type {
  CallContext,
  CreateResult,
  DesiredMachine,
  DesiredTemplate,
  Driver,
  DriverContext,
  MachineRef,
  ObservedMachine,
  OwnedMachine,
} from "../driver.ts";
import { absentIfNotFound, NotFoundError, ProviderError, TransientError } from "../errors.ts";
import {
  clusterSegment,
  InstanceSchema,
  instanceSegment,
  isAmbiguous,
  MulticloudApi,
  type Instance,
  type RouteChoice,
  type Signal,
} from "./api.ts";
import { Catalogue, refuse } from "./catalogue.ts";
import { markOf, observe, ownedRows, STATES } from "./observe.ts";
import { credentialDigest, defineProvider, providerClient } from "../definition.ts";
import { MulticloudOptionsSchema, type MulticloudOptions } from "./options.ts";
import {
  isOwnerUID,
  isPrivateOf,
  isPrivateTemplate,
  NAME_PREFIX,
  ownerMark,
  ownerOf,
  Ownership,
  readMark,
} from "./ownership.ts";
import { DELETED, RemoteTemplates } from "./templates.ts";

export { MulticloudOptionsSchema, type MulticloudOptions } from "./options.ts";
export { ownerMark } from "./ownership.ts";

export const MULTICLOUD_DEFAULT_ENDPOINT = "http://jupiter.example.internal";

/** The shared templates an object may have expanded: the template's twin and the ones it replaced. */
function sharedTemplates(providerData: Readonly<Record<string, string>>): string[] {
  const ids = [providerData.clusterId ?? "", ...(providerData.retiredClusterIds ?? "").split(",")];
  return [...new Set(ids.filter((id) => id !== ""))];
}

/**
 * No stop, reboot, resize (a new instance type needs a new instance), rebuild or tags in
 * jupiter's API, so no such methods: the reconciler reports those as Unsupported, never a
 * silent success.
 */
class MulticloudDriver implements Driver<MulticloudOptions> {
  readonly provider = "multicloud" as const;
  readonly #api: MulticloudApi;
  readonly #catalogue: Catalogue;
  readonly #templates: RemoteTemplates;
  readonly #ownership: Ownership;
  readonly #logger: Logger;
  readonly #start: RouteChoice = {
    spellings: [
      { method: "GET", path: (id) => `/v1/start/${id}` },
      { method: "POST", path: (id) => `/v1/instance/start/${id}` },
    ],
    working: 0,
  };

  constructor(api: MulticloudApi, logger: Logger) {
    this.#api = api;
    this.#logger = logger;
    this.#catalogue = new Catalogue(api);
    this.#templates = new RemoteTemplates(api);
    this.#ownership = new Ownership(api);
  }

  async validate(desired: DesiredMachine<MulticloudOptions>, ctx?: CallContext): Promise<void> {
    if (desired.powerState === "Stopped")
      throw refuse("the multi-cloud API cannot stop machines: powerState must be Running", "Unsupported");
    await this.#catalogue.validate(desired, ctx?.signal);
  }

  async create(desired: DesiredMachine<MulticloudOptions>, ctx?: CallContext): Promise<CreateResult> {
    const signal = ctx?.signal;
    if (!isOwnerUID(desired.ownerUID))
      throw refuse(`owner UID "${desired.ownerUID}" is not a UID`, "InvalidSpec");
    // The private template's name and the expand's correlation id: the VM's ownership mark.
    const mark = ownerMark(desired.ownerUID, desired.clusterID);
    const body = () => this.#catalogue.templateBody(mark, desired, signal);
    const shared = desired.providerData.clusterId;
    // No InstanceTemplate behind this instance: it gets a remote template of its own.
    const clusterId = shared ?? (await this.#templates.ensure(mark, body, signal));
    const ids = await this.#api.call(
      {
        method: "POST",
        path: `/v1/cluster/${clusterSegment(clusterId, "expand")}/expand/1`,
        headers: { "x-correlation-id": mark },
        json: await body(),
        operation: "expand",
        signal,
      },
      z.array(z.string().min(1)).min(1),
    );
    // The owner is kept so a restarted operator still deletes under the object's correlation id.
    return {
      id: ids[0] ?? "",
      providerData: {
        ...(shared === undefined ? { privateClusterId: clusterId } : {}),
        ownerUID: desired.ownerUID,
        ...(desired.clusterID === "" ? {} : { ownerCluster: desired.clusterID }),
      },
    };
  }

  /**
   * The instance, or undefined once it is gone. The document's only failed read is 10999
   * "get one instance err", for an instance that does not exist as for a service failure; a
   * failed read is settled with the list of every instance not deleted: absent there, the
   * instance is gone; present, it is observed from the list; when the list fails too, the
   * read failed (retried later), so an outage never reads as "gone".
   */
  async get(ref: MachineRef, ctx?: CallContext): Promise<ObservedMachine | undefined> {
    const signal = ctx?.signal;
    const path = `/v1/instance/${instanceSegment(ref.id, "get")}`;
    let instance: Instance | undefined;
    try {
      instance = await this.#api.call({ method: "GET", path, operation: "get", signal }, InstanceSchema);
    } catch (err) {
      if (err instanceof NotFoundError) instance = undefined;
      else if (isAmbiguous(err)) instance = await this.#settle(ref.id, err, signal);
      else throw err;
    }
    if (instance === undefined || instance.Status === DELETED) {
      await this.#afterGone(ref.providerData, signal);
      return undefined;
    }
    return observe(instance, markOf(instance, ref.providerData), await this.#types(ref.options, signal));
  }

  /**
   * jupiter refuses to delete a template while its instances live, so a private template goes
   * once its instance is gone: the recorded one (a failure is retried with the next read), or,
   * when the object adopted its instance without learning the template (a lost create answer),
   * every private template no instance uses (best effort).
   */
  async #afterGone(providerData: Readonly<Record<string, string>>, signal: Signal): Promise<void> {
    const own = providerData.privateClusterId;
    if (own !== undefined) return this.#templates.delete(own, signal);
    if (providerData.clusterId !== undefined) return;
    try {
      const deleted = await this.#templates.sweep(isPrivateTemplate, signal);
      if (deleted > 0)
        this.#logger.debug({ deleted }, "multicloud: deleted private templates no instance uses");
    } catch (err) {
      this.#logger.debug({ err }, "multicloud: sweeping unused private templates failed; tried again later");
    }
  }

  /** Reads the instance from the list of all instances; when that fails too, the read's own error stands. */
  async #settle(id: string, readError: unknown, signal: Signal): Promise<Instance | undefined> {
    try {
      return await this.#templates.fromList(id, signal);
    } catch {
      throw readError;
    }
  }

  /**
   * The catalogue of instance types for the object's cloud, when its options are at hand; a
   * failed read costs the plan of this observation only — unless the call was cancelled.
   */
  async #types(options: unknown, signal: Signal): Promise<string[] | undefined> {
    const parsed = MulticloudOptionsSchema.safeParse(options);
    if (!parsed.success) return undefined;
    return this.#catalogue.types(parsed.data.cloud, signal).catch((err: unknown) => {
      if (signal?.aborted) throw err;
      return undefined;
    });
  }

  /**
   * Instances carrying this owner: every live instance of its private templates (named by its
   * mark, with or without a cluster), and the live instances of the shared templates it may
   * have expanded whose logs are kept under its mark (see Ownership).
   */
  async findByOwner(
    ownerUID: string,
    desired: DesiredMachine<MulticloudOptions>,
    ctx?: CallContext,
  ): Promise<ObservedMachine[]> {
    const signal = ctx?.signal;
    const types = await this.#types(desired.options, signal);
    const found: ObservedMachine[] = [];
    const own = (await this.#templates.list(signal)).filter((c) => isPrivateOf(c.Name, ownerUID));
    for (const template of own) {
      const instances = await this.#templates.instances(String(template.Id), signal);
      const mark = readMark(template.Name) ?? { ownerUID, cluster: undefined };
      for (const i of instances) found.push(observe(i, mark, types));
      // Empty: made before a crash that came before its expand, or left by a deletion that
      // never knew it. A create makes a new one; an object being deleted leaves none behind.
      if (instances.length === 0)
        await this.#templates.delete(String(template.Id), signal).catch((err: unknown) => {
          this.#logger.debug(
            { err },
            "multicloud: an empty private template was not deleted; tried again later",
          );
        });
    }
    const owner = { ownerUID, clusterID: desired.clusterID };
    for (const id of sharedTemplates(desired.providerData)) {
      if (own.some((c) => String(c.Id) === id)) continue;
      for (const i of await this.#templates.instances(id, signal)) {
        const mark = await this.#ownership.owns(i.InstanceId, owner, id, signal);
        if (mark) found.push(observe(i, mark, types));
      }
    }
    return found;
  }

  /**
   * Every instance whose private template carries the operator's mark, from the one list of
   * every instance (one call). Instances of shared templates are not listed: their owner is
   * only in jupiter's logs, which the document lets one read only under a known correlation id.
   */
  async listOwned(ctx?: CallContext): Promise<OwnedMachine[]> {
    return ownedRows(await this.#templates.all(ctx?.signal));
  }

  async start(ref: MachineRef, ctx?: CallContext): Promise<void> {
    const started = await this.#api.routed(
      this.#start,
      instanceSegment(ref.id, "start"),
      "start",
      z.boolean(),
      ctx?.signal,
    );
    if (!started)
      throw new TransientError(`multicloud start: instance ${ref.id} did not start`, {
        provider: "multicloud",
      });
  }

  /** Asks jupiter to delete the instance; `get` tells when it is gone (and removes its private template). */
  async delete(ref: MachineRef, ctx?: CallContext): Promise<void> {
    const segment = instanceSegment(ref.id, "delete");
    const owner = ownerOf(ref.providerData);
    await absentIfNotFound(
      this.#api.send({
        method: "DELETE",
        path: `/v1/instance/${segment}`,
        headers: {
          "x-correlation-id":
            owner === undefined
              ? `${NAME_PREFIX}delete-${ref.id}`
              : ownerMark(owner.ownerUID, owner.cluster ?? ""),
        },
        operation: "delete",
        signal: ctx?.signal,
      }),
    );
  }

  /**
   * jupiter cannot update a template: a changed spec gets a new one (named by its digest).
   * The one it replaces is deleted once no instance uses it; until then it is kept in
   * `retiredClusterIds` and tried again at the next sync and when the template is deleted.
   */
  async syncTemplate(
    desired: DesiredTemplate<MulticloudOptions>,
    ctx?: CallContext,
  ): Promise<Record<string, string>> {
    const signal = ctx?.signal;
    const digest = createHash("sha256")
      .update(JSON.stringify([desired.region, desired.plan, desired.image, desired.options]))
      .digest("hex")
      .slice(0, 10);
    const name = `${NAME_PREFIX}${desired.ownerUID}-${digest}`;
    const id = await this.#templates.ensure(
      name,
      () => this.#catalogue.templateBody(name, desired, signal),
      signal,
    );
    const retired: string[] = [];
    for (const old of sharedTemplates(desired.providerData)) {
      if (old === id) continue;
      try {
        await this.#templates.delete(old, signal);
      } catch (err) {
        if (!(err instanceof ProviderError) || signal?.aborted) throw err;
        retired.push(old);
      }
    }
    return { clusterId: id, retiredClusterIds: retired.join(",") };
  }

  async templateExists(providerData: Readonly<Record<string, string>>, ctx?: CallContext): Promise<boolean> {
    const id = providerData.clusterId;
    return id !== undefined && (await this.#templates.get(id, ctx?.signal)) !== undefined;
  }

  async deleteTemplate(providerData: Readonly<Record<string, string>>, ctx?: CallContext): Promise<void> {
    const failures: unknown[] = [];
    for (const id of sharedTemplates(providerData))
      await this.#templates.delete(id, ctx?.signal).catch((err: unknown) => failures.push(err));
    if (failures.length > 0) throw failures[0];
  }
}

export const definition = defineProvider({
  provider: "multicloud",
  defaultEndpoint: MULTICLOUD_DEFAULT_ENDPOINT,
  // The document has no authentication; a token, when the Secret has one, goes in
  // `Authorization: Bearer` (what gateways in front of jupiter use).
  credentialKeys: { required: [], optional: ["token"] },
  fields: { region: "multicloud zone", plan: "multicloud InstanceType", image: "multicloud ImageId" },
  docs: {
    actions: { create: "create (expand)" },
    notes: "InstanceTemplates mirrored as remote templates; no stop/resize/rebuild",
  },
  redact: { fields: [], logPaths: [] },
  optionsSchema: MulticloudOptionsSchema,
  states: STATES,
  driver: MulticloudDriver,
  create(ctx: DriverContext): Driver<MulticloudOptions> {
    const token = ctx.credentials.token;
    const http = providerClient(definition, ctx, {
      credentialKey: credentialDigest(token ?? ""),
      secrets: token === undefined ? [] : [token],
      ...(token === undefined ? {} : { defaultHeaders: { authorization: `Bearer ${token}` } }),
    });
    return new MulticloudDriver(new MulticloudApi(http), ctx.logger);
  },
});
