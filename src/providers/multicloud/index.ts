import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { z } from "zod";
import type {
  Capability,
  CreateResult,
  DesiredMachine,
  DesiredTemplate,
  Driver,
  DriverContext,
  DriverFactory,
  MachineRef,
  ObservedMachine,
  ObservedPhase,
} from "../driver.ts";
import { NotFoundError, ProviderError, TransientError, UnsupportedError } from "../errors.ts";
import {
  clusterSegment,
  InstanceSchema,
  instanceSegment,
  isAmbiguous,
  MulticloudApi,
  type Instance,
  type RouteChoice,
} from "./api.ts";
import { Catalogue, catalogueName, refuse } from "./catalogue.ts";
import { MulticloudOptionsSchema, type MulticloudOptions } from "./options.ts";
import { correlationId, NAME_PREFIX, Ownership, PRIVATE_TEMPLATE, privateTemplateName } from "./ownership.ts";
import { DELETED, RemoteTemplates } from "./templates.ts";

export { MulticloudOptionsSchema, type MulticloudOptions } from "./options.ts";
export { correlationId } from "./ownership.ts";

export const MULTICLOUD_DEFAULT_ENDPOINT = "http://jupiter.example.internal";

/** No stop, resize, rebuild or tags in jupiter's API: the reconciler reports those Unsupported. */
const CAPABILITIES: ReadonlySet<Capability> = new Set(["start", "findByOwner", "remoteTemplates"]);

/** jupiter's integer Status. 5 (deleted) is "gone" and never reaches this table. */
const STATES: Record<number, { phase: ObservedPhase; transitional: boolean; text: string }> = {
  0: { phase: "Provisioning", transitional: true, text: "pending" },
  1: { phase: "Running", transitional: false, text: "success" },
  2: { phase: "Provisioning", transitional: true, text: "uninitialised" },
  3: { phase: "Provisioning", transitional: true, text: "initialising" },
  4: { phase: "Failed", transitional: false, text: "initialisation timed out" },
  6: { phase: "Deleting", transitional: true, text: "deleting" },
  7: { phase: "Failed", transitional: false, text: "error" },
  8: { phase: "Running", transitional: false, text: "in service pool" },
};

/**
 * An instance in the operator's vocabulary. `types` is the backend cloud's catalogue of
 * instance types, to report the plan by its catalogue name; without it no plan is reported.
 */
export function observe(
  i: Instance,
  ownerUID: string | undefined,
  types: readonly string[] | undefined,
): ObservedMachine {
  const s = STATES[i.Status] ?? { phase: "Provisioning" as const, transitional: true, text: "unknown" };
  const zone = i.Cluster?.Zone;
  const plan =
    types === undefined
      ? undefined
      : catalogueName(i.InstanceType || undefined, { cpu: i.Cpu, ram: i.Ram }, types);
  return {
    id: i.InstanceId,
    providerStatus: `${String(i.Status)} (${s.text})`,
    phase: s.phase,
    transitional: s.transitional,
    ...(s.phase === "Failed"
      ? { message: `the multi-cloud service reports status ${String(i.Status)}: ${s.text}` }
      : {}),
    ...(ownerUID === undefined ? {} : { ownerUID }),
    ...(zone?.RegionName ? { region: zone.RegionName } : i.RegionId ? { region: i.RegionId } : {}),
    ...(plan === undefined ? {} : { plan }),
    ...(i.ImageId ? { image: i.ImageId } : {}),
    addresses: {
      public: i.PublicIpAddress ? [i.PublicIpAddress] : [],
      private: i.PrivateIpAddress ? [i.PrivateIpAddress] : [],
    },
  };
}

const UID = /^[A-Za-z0-9][A-Za-z0-9-]{0,99}$/;

/** The owner UID kept in providerData, when it is one (it names the correlation id of deletes). */
function ownerOf(providerData: Readonly<Record<string, string>>): string | undefined {
  const uid = providerData.ownerUID;
  return uid !== undefined && UID.test(uid) ? uid : undefined;
}

/** The shared templates an object may have expanded: the template's twin and the ones it replaced. */
function sharedTemplates(providerData: Readonly<Record<string, string>>): string[] {
  const ids = [providerData.clusterId ?? "", ...(providerData.retiredClusterIds ?? "").split(",")];
  return [...new Set(ids.filter((id) => id !== ""))];
}

class MulticloudDriver implements Driver<MulticloudOptions> {
  readonly provider = "multicloud" as const;
  readonly capabilities = CAPABILITIES;
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

  async validate(desired: DesiredMachine<MulticloudOptions>): Promise<void> {
    if (desired.powerState === "Stopped")
      throw refuse("the multi-cloud API cannot stop machines: powerState must be Running", "Unsupported");
    await this.#catalogue.validate(desired);
  }

  async create(desired: DesiredMachine<MulticloudOptions>): Promise<CreateResult> {
    if (!UID.test(desired.ownerUID))
      throw refuse(`owner UID "${desired.ownerUID}" is not a UID`, "InvalidSpec");
    const name = privateTemplateName(desired.ownerUID);
    const body = () => this.#catalogue.templateBody(name, desired);
    const shared = desired.providerData.clusterId;
    // No InstanceTemplate behind this instance: it gets a remote template of its own.
    const clusterId = shared ?? (await this.#templates.ensure(name, body));
    const ids = await this.#api.call(
      {
        method: "POST",
        path: `/v1/cluster/${clusterSegment(clusterId, "expand")}/expand/1`,
        headers: { "x-correlation-id": correlationId(desired.ownerUID) },
        json: await body(),
        operation: "expand",
      },
      z.array(z.string().min(1)).min(1),
    );
    // ownerUID is kept so a restarted operator still deletes under the object's correlation id.
    return {
      id: ids[0] ?? "",
      providerData: {
        ...(shared === undefined ? { privateClusterId: clusterId } : {}),
        ownerUID: desired.ownerUID,
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
  async get(ref: MachineRef): Promise<ObservedMachine | undefined> {
    const path = `/v1/instance/${instanceSegment(ref.id, "get")}`;
    let instance: Instance | undefined;
    try {
      instance = await this.#api.call({ method: "GET", path, operation: "get" }, InstanceSchema);
    } catch (err) {
      if (err instanceof NotFoundError) instance = undefined;
      else if (isAmbiguous(err)) instance = await this.#settle(ref.id, err);
      else throw err;
    }
    if (instance === undefined || instance.Status === DELETED) {
      await this.#afterGone(ref.providerData);
      return undefined;
    }
    return observe(instance, ownerOf(ref.providerData), await this.#types(ref.options));
  }

  /**
   * jupiter refuses to delete a template while its instances live, so a private template goes
   * once its instance is gone: the recorded one (a failure is retried with the next read), or,
   * when the object adopted its instance without learning the template (a lost create answer),
   * every private template no instance uses (best effort).
   */
  async #afterGone(providerData: Readonly<Record<string, string>>): Promise<void> {
    const own = providerData.privateClusterId;
    if (own !== undefined) return this.#templates.delete(own);
    if (providerData.clusterId !== undefined) return;
    try {
      const deleted = await this.#templates.sweep((name) => PRIVATE_TEMPLATE.test(name));
      if (deleted > 0)
        this.#logger.debug({ deleted }, "multicloud: deleted private templates no instance uses");
    } catch (err) {
      this.#logger.debug({ err }, "multicloud: sweeping unused private templates failed; tried again later");
    }
  }

  /** Reads the instance from the list of all instances; when that fails too, the read's own error stands. */
  async #settle(id: string, readError: unknown): Promise<Instance | undefined> {
    try {
      return await this.#templates.fromList(id);
    } catch {
      throw readError;
    }
  }

  /** The catalogue of instance types for the object's cloud, when its options are at hand. */
  async #types(options: unknown): Promise<string[] | undefined> {
    const parsed = MulticloudOptionsSchema.safeParse(options);
    if (!parsed.success) return undefined;
    return this.#catalogue.types(parsed.data.cloud).catch(() => undefined);
  }

  /**
   * Instances carrying this owner: every live instance of its private template (named by its
   * UID), and the live instances of the shared templates it may have expanded whose logs are
   * kept under its correlation id (see Ownership).
   */
  async findByOwner(
    ownerUID: string,
    desired: DesiredMachine<MulticloudOptions>,
  ): Promise<ObservedMachine[]> {
    const privateName = privateTemplateName(ownerUID);
    const types = await this.#types(desired.options);
    const found: ObservedMachine[] = [];
    const own = (await this.#templates.list()).filter((c) => c.Name === privateName).map((c) => String(c.Id));
    for (const id of own) {
      const instances = await this.#templates.instances(id);
      for (const i of instances) found.push(observe(i, ownerUID, types));
      // Empty: made before a crash that came before its expand, or left by a deletion that
      // never knew it. A create makes a new one; an object being deleted leaves none behind.
      if (instances.length === 0)
        await this.#templates.delete(id).catch((err: unknown) => {
          this.#logger.debug(
            { err },
            "multicloud: an empty private template was not deleted; tried again later",
          );
        });
    }
    for (const id of sharedTemplates(desired.providerData)) {
      if (own.includes(id)) continue;
      for (const i of await this.#templates.instances(id))
        if (await this.#ownership.owns(i.InstanceId, ownerUID, id)) found.push(observe(i, ownerUID, types));
    }
    return found;
  }

  async start(ref: MachineRef): Promise<void> {
    const started = await this.#api.routed(
      this.#start,
      instanceSegment(ref.id, "start"),
      "start",
      z.boolean(),
    );
    if (!started)
      throw new TransientError(`multicloud start: instance ${ref.id} did not start`, {
        provider: "multicloud",
      });
  }

  stop(): Promise<void> {
    return unsupported("stop");
  }
  reboot(): Promise<void> {
    return unsupported("reboot");
  }
  resize(): Promise<void> {
    return unsupported("resize (a new instance type needs a new instance)");
  }
  rebuild(): Promise<void> {
    return unsupported("rebuild");
  }
  /** jupiter keeps no tags: refused, never dropped (the capability is not declared either). */
  setTags(): Promise<void> {
    return unsupported("tags");
  }

  /** Asks jupiter to delete the instance; `get` tells when it is gone (and removes its private template). */
  async delete(ref: MachineRef): Promise<void> {
    const segment = instanceSegment(ref.id, "delete");
    const owner = ownerOf(ref.providerData);
    try {
      await this.#api.call(
        {
          method: "DELETE",
          path: `/v1/instance/${segment}`,
          headers: {
            "x-correlation-id": owner === undefined ? `${NAME_PREFIX}delete-${ref.id}` : correlationId(owner),
          },
          operation: "delete",
        },
        z.unknown(),
      );
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  /**
   * jupiter cannot update a template: a changed spec gets a new one (named by its digest).
   * The one it replaces is deleted once no instance uses it; until then it is kept in
   * `retiredClusterIds` and tried again at the next sync and when the template is deleted.
   */
  async syncTemplate(desired: DesiredTemplate<MulticloudOptions>): Promise<Record<string, string>> {
    const digest = createHash("sha256")
      .update(JSON.stringify([desired.region, desired.plan, desired.image, desired.options]))
      .digest("hex")
      .slice(0, 10);
    const name = `${NAME_PREFIX}${desired.ownerUID}-${digest}`;
    const id = await this.#templates.ensure(name, () => this.#catalogue.templateBody(name, desired));
    const retired: string[] = [];
    for (const old of sharedTemplates(desired.providerData)) {
      if (old === id) continue;
      try {
        await this.#templates.delete(old);
      } catch (err) {
        if (!(err instanceof ProviderError)) throw err;
        retired.push(old);
      }
    }
    return { clusterId: id, retiredClusterIds: retired.join(",") };
  }

  async templateExists(providerData: Readonly<Record<string, string>>): Promise<boolean> {
    const id = providerData.clusterId;
    return id !== undefined && (await this.#templates.get(id)) !== undefined;
  }

  async deleteTemplate(providerData: Readonly<Record<string, string>>): Promise<void> {
    const failures: unknown[] = [];
    for (const id of sharedTemplates(providerData))
      await this.#templates.delete(id).catch((err: unknown) => failures.push(err));
    if (failures.length > 0) throw failures[0];
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function unsupported(what: string): Promise<never> {
  return Promise.reject(
    new UnsupportedError(`the multi-cloud API has no ${what}`, { provider: "multicloud", operation: what }),
  );
}

export const factory: DriverFactory<MulticloudOptions> = {
  provider: "multicloud",
  defaultEndpoint: MULTICLOUD_DEFAULT_ENDPOINT,
  // The document has no authentication; a token, when the Secret has one, goes in
  // `Authorization: Bearer` (what gateways in front of jupiter use).
  credentialKeys: { required: [], optional: ["token"] },
  optionsSchema: MulticloudOptionsSchema,
  mirrorsTemplates: true,
  create(ctx: DriverContext): Driver<MulticloudOptions> {
    const token = ctx.credentials.token;
    const http = ctx.http.client({
      provider: "multicloud",
      baseUrl: ctx.endpoint ?? MULTICLOUD_DEFAULT_ENDPOINT,
      credentialKey: createHash("sha256")
        .update(token ?? "")
        .digest("hex")
        .slice(0, 16),
      secrets: token === undefined ? [] : [token],
      ...(token === undefined ? {} : { defaultHeaders: { authorization: `Bearer ${token}` } }),
    });
    return new MulticloudDriver(new MulticloudApi(http), ctx.logger);
  },
};
