import { createHash } from "node:crypto";
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
import { InvalidRequestError, NotFoundError, TransientError, UnsupportedError } from "../errors.ts";
import { TtlCache } from "../ttl-cache.ts";
import {
  ClusterSchema,
  InstanceSchema,
  MulticloudApi,
  StatusRowSchema,
  type Cluster,
  type Instance,
  type RouteChoice,
} from "./api.ts";

export const MULTICLOUD_DEFAULT_ENDPOINT = "http://jupiter.example.internal";
/** Names of the remote templates the operator owns: `cio-<kubernetes uid>[-<spec digest>]`. */
const NAME_PREFIX = "cio-";
/** X-CORRELATION-ID of every expand/delete for one CloudInstance. */
export const correlationId = (ownerUID: string): string => `${NAME_PREFIX}${ownerUID}`;

export const MulticloudOptionsSchema = z
  .object({
    cloud: z.string().min(1).describe("Backend cloud of the multi-cloud service: aliyun, aws, openstack …"),
    zone: z.string().min(1).optional().describe("ZoneName; the region's first zone when unset"),
    systemDiskCategory: z.string().min(1).default("cloud_efficiency"),
    dataDiskCategory: z.string().min(1).default("cloud_efficiency"),
    dataDiskSize: z.number().int().min(0).default(100),
    dataDiskNum: z.number().int().min(1).max(4).default(1).describe("1 to 4, the service's own limit"),
    keyName: z.string().optional(),
    network: z
      .object({
        vpcId: z.string().default(""),
        subnetId: z.string().default(""),
        securityGroup: z.string().default(""),
        internetChargeType: z.string().default("PayByBandwidth"),
        internetMaxBandwidthOut: z.number().int().min(0).default(5),
      })
      .strict()
      .default({
        vpcId: "",
        subnetId: "",
        securityGroup: "",
        internetChargeType: "PayByBandwidth",
        internetMaxBandwidthOut: 5,
      }),
  })
  .strict();
export type MulticloudOptions = z.infer<typeof MulticloudOptionsSchema>;

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
const DELETED = 5;

export function observe(i: Instance, ownerUID: string | undefined): ObservedMachine {
  const s = STATES[i.Status] ?? { phase: "Provisioning" as const, transitional: true, text: "unknown" };
  const zone = i.Cluster?.Zone;
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
    ...(i.InstanceType ? { plan: i.InstanceType } : {}),
    ...(i.ImageId ? { image: i.ImageId } : {}),
    addresses: {
      public: i.PublicIpAddress ? [i.PublicIpAddress] : [],
      private: i.PrivateIpAddress ? [i.PrivateIpAddress] : [],
    },
  };
}

interface TemplateFields {
  region: string | undefined;
  plan: string | undefined;
  image: string | undefined;
  options: MulticloudOptions;
}

class MulticloudDriver implements Driver<MulticloudOptions> {
  readonly provider = "multicloud" as const;
  readonly capabilities = CAPABILITIES;
  readonly #api: MulticloudApi;
  readonly #catalogue = new Map<string, TtlCache<string[]>>();
  /** instance id -> owner UID, learnt from expands and log lookups (an optimisation only). */
  readonly #owners = new Map<string, string>();
  readonly #start: RouteChoice = {
    spellings: [
      { method: "GET", path: (id) => `/v1/start/${encodeURIComponent(id)}` },
      { method: "POST", path: (id) => `/v1/instance/start/${encodeURIComponent(id)}` },
    ],
    working: 0,
  };
  readonly #status: RouteChoice = {
    spellings: [
      { method: "GET", path: (ids) => `/v1/status/${ids}` },
      { method: "GET", path: (ids) => `/v1/instance/status/${ids}` },
    ],
    working: 0,
  };

  constructor(api: MulticloudApi) {
    this.#api = api;
  }

  #list(key: string, path: string, pick: (row: unknown) => string | undefined): Promise<string[]> {
    let cache = this.#catalogue.get(key);
    if (!cache) {
      cache = new TtlCache<string[]>();
      this.#catalogue.set(key, cache);
    }
    return cache.get(600_000, async () => {
      const rows = await this.#api.call(
        { method: "GET", path, operation: "catalogue" },
        z.array(z.unknown()),
      );
      return rows.map(pick).filter((v): v is string => v !== undefined);
    });
  }

  async #zone(fields: TemplateFields): Promise<string> {
    const { cloud } = fields.options;
    const region = fields.region ?? "";
    const zones = await this.#list(
      `zones/${cloud}/${region}`,
      `/v1/instance/zones/${encodeURIComponent(cloud)}/${encodeURIComponent(region)}`,
      (z) => field(z, "ZoneName"),
    );
    const zone = fields.options.zone ?? zones[0];
    if (zone === undefined || !zones.includes(zone))
      throw refuse(
        zones.length === 0
          ? `region "${region}" of ${cloud} has no zones`
          : `no zone "${String(zone)}" in ${region}; choose one of ${zones.join(", ")}`,
        "UnknownZone",
      );
    return zone;
  }

  async #validateFields(fields: TemplateFields): Promise<string> {
    const { cloud } = fields.options;
    if (fields.region === undefined || fields.plan === undefined || fields.image === undefined)
      throw refuse("multicloud needs spec.region, spec.plan (instance type) and spec.image", "InvalidSpec");
    const clouds = await this.#list("clouds", "/v1/instance/provider", (v) =>
      typeof v === "string" ? v : undefined,
    );
    if (!clouds.includes(cloud))
      throw refuse(
        `no backend cloud "${cloud}"; providerOptions.cloud is one of ${clouds.join(", ")}`,
        "UnknownCloud",
      );
    const c = encodeURIComponent(cloud);
    const r = encodeURIComponent(fields.region);
    const regions = await this.#list(`regions/${cloud}`, `/v1/instance/regions/${c}`, (v) =>
      field(v, "RegionName"),
    );
    if (!regions.includes(fields.region))
      throw refuse(
        `${cloud} has no region "${fields.region}"; choose one of ${regions.join(", ")}`,
        "UnknownRegion",
      );
    const types = await this.#list(`types/${cloud}`, `/v1/instance/type/${c}`, (v) =>
      typeof v === "string" ? v : undefined,
    );
    if (!types.includes(fields.plan))
      throw refuse(
        `${cloud} has no instance type "${fields.plan}"; choose one of ${types.join(", ")}`,
        "UnknownPlan",
      );
    const images = await this.#list(`images/${cloud}/${fields.region}`, `/v1/instance/image/${c}/${r}`, (v) =>
      field(v, "ImageId"),
    );
    if (!images.includes(fields.image))
      throw refuse(
        `${cloud} ${fields.region} has no image "${fields.image}"; choose one of ${images.join(", ")}`,
        "UnknownImage",
      );
    return this.#zone(fields);
  }

  async validate(desired: DesiredMachine<MulticloudOptions>): Promise<void> {
    if (desired.powerState === "Stopped")
      throw refuse("the multi-cloud API cannot stop machines: powerState must be Running", "Unsupported");
    await this.#validateFields(desired);
  }

  /** The template body jupiter takes on create and expand. */
  async #templateBody(name: string, fields: TemplateFields): Promise<Record<string, unknown>> {
    const zone = await this.#validateFields(fields);
    const o = fields.options;
    return {
      Id: 0,
      Name: name,
      Provider: o.cloud,
      Cpu: 0,
      Ram: 0,
      InstanceType: fields.plan,
      ImageId: fields.image,
      KeyName: o.keyName ?? "",
      Network: {
        Id: 0,
        VpcId: o.network.vpcId,
        SubnetId: o.network.subnetId,
        SecurityGroup: o.network.securityGroup,
        InternetChargeType: o.network.internetChargeType,
        InternetMaxBandwidthOut: o.network.internetMaxBandwidthOut,
      },
      Zone: { Id: 0, RegionName: fields.region, ZoneName: zone },
      Replication: null,
      SystemDiskCategory: o.systemDiskCategory,
      DataDiskSize: o.dataDiskSize,
      DataDiskNum: o.dataDiskNum,
      DataDiskCategory: o.dataDiskCategory,
      FlavorId: "",
    };
  }

  async #clusters(): Promise<Cluster[]> {
    return this.#api.call(
      { method: "GET", path: "/v1/cluster", operation: "templates" },
      z.array(ClusterSchema),
    );
  }

  async #cluster(id: string): Promise<Cluster | undefined> {
    try {
      return await this.#api.call(
        { method: "GET", path: `/v1/cluster/${encodeURIComponent(id)}`, operation: "template" },
        ClusterSchema,
      );
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * Finds or creates the remote template with this exact name. The name carries the owner's
   * UID and a digest of the fields, so a create lost in a crash is found, never repeated.
   */
  async #ensureCluster(name: string, fields: TemplateFields): Promise<string> {
    const existing = (await this.#clusters()).find((c) => c.Name === name);
    if (existing) return String(existing.Id);
    const body = await this.#templateBody(name, fields);
    const id = await this.#api.call(
      { method: "POST", path: "/v1/cluster", json: body, operation: "createTemplate" },
      z.union([z.number(), z.string()]),
    );
    return String(id);
  }

  async create(desired: DesiredMachine<MulticloudOptions>): Promise<CreateResult> {
    let clusterId = desired.providerData.clusterId;
    let providerData: Record<string, string> = {};
    if (clusterId === undefined) {
      // No InstanceTemplate behind this instance: it gets a remote template of its own.
      clusterId = await this.#ensureCluster(`${NAME_PREFIX}${desired.ownerUID}`, desired);
      providerData = { privateClusterId: clusterId };
    }
    const body = await this.#templateBody(`${NAME_PREFIX}${desired.ownerUID}`, desired);
    const ids = await this.#api.call(
      {
        method: "POST",
        path: `/v1/cluster/${encodeURIComponent(clusterId)}/expand/1`,
        headers: { "x-correlation-id": correlationId(desired.ownerUID) },
        json: body,
        operation: "expand",
      },
      z.array(z.string()).min(1),
    );
    const id = ids[0] ?? "";
    this.#owners.set(id, desired.ownerUID);
    // Kept so a restarted operator still deletes with the object's correlation id.
    return { id, providerData: { ...providerData, ownerUID: desired.ownerUID } };
  }

  async get(ref: MachineRef): Promise<ObservedMachine | undefined> {
    let instance: Instance;
    try {
      instance = await this.#api.call(
        { method: "GET", path: `/v1/instance/${encodeURIComponent(ref.id)}`, operation: "get" },
        InstanceSchema,
      );
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
    if (instance.Status === DELETED) return undefined;
    return observe(instance, this.#owners.get(ref.id) ?? ref.providerData.ownerUID);
  }

  /**
   * Instances of the template the object expands carrying its correlation id. A private
   * template holds only the owner's instances; in a shared one, the instance logs kept under
   * the correlation id tell whose an instance is (one lookup per instance not yet known).
   */
  async findByOwner(
    ownerUID: string,
    desired: DesiredMachine<MulticloudOptions>,
  ): Promise<ObservedMachine[]> {
    const privateName = `${NAME_PREFIX}${ownerUID}`;
    const shared = desired.providerData.clusterId;
    const clusterIds = new Set<string>();
    if (shared !== undefined) clusterIds.add(shared);
    for (const c of await this.#clusters()) if (c.Name === privateName) clusterIds.add(String(c.Id));
    const found: ObservedMachine[] = [];
    for (const clusterId of clusterIds) {
      const rows = await this.#api.call(
        { method: "GET", path: `/v1/instance/cluster/${encodeURIComponent(clusterId)}`, operation: "list" },
        z.array(InstanceSchema),
      );
      const live = rows.filter((i) => i.Status !== DELETED);
      if (live.length === 0) continue;
      // One batched status read confirms which of them are still alive.
      const statuses = await this.#api.routed(
        this.#status,
        live.map((i) => encodeURIComponent(i.InstanceId)).join(","),
        "status",
        z.array(StatusRowSchema),
      );
      const alive = new Set(statuses.filter((s) => s.status !== DELETED).map((s) => s.instance_id));
      for (const i of live) {
        if (!alive.has(i.InstanceId)) continue;
        const mine = i.Cluster?.Name === privateName || (await this.#ownedBy(i.InstanceId, ownerUID));
        if (mine) found.push(observe(i, ownerUID));
      }
    }
    return found;
  }

  async #ownedBy(instanceId: string, ownerUID: string): Promise<boolean> {
    const known = this.#owners.get(instanceId);
    if (known !== undefined) return known === ownerUID;
    const entries = await this.#api.call(
      {
        method: "GET",
        path: `/v1/instance/log/${encodeURIComponent(correlationId(ownerUID))}/${encodeURIComponent(instanceId)}`,
        operation: "log",
      },
      z.array(z.unknown()).nullable(),
    );
    const mine = (entries ?? []).length > 0;
    if (mine) this.#owners.set(instanceId, ownerUID);
    return mine;
  }

  async start(ref: MachineRef): Promise<void> {
    const ok = await this.#api.routed(this.#start, encodeURIComponent(ref.id), "start", z.boolean());
    if (!ok)
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
  setTags(): Promise<void> {
    return unsupported("tags");
  }

  async delete(ref: MachineRef): Promise<void> {
    const owner = this.#owners.get(ref.id) ?? ref.providerData.ownerUID;
    await this.#api.call(
      {
        method: "DELETE",
        path: `/v1/instance/${encodeURIComponent(ref.id)}`,
        headers: { "x-correlation-id": owner === undefined ? `cio-delete-${ref.id}` : correlationId(owner) },
        operation: "delete",
      },
      z.unknown(),
    );
    const own = ref.providerData.privateClusterId;
    if (own !== undefined) await this.deleteTemplate({ clusterId: own });
  }

  async syncTemplate(desired: DesiredTemplate<MulticloudOptions>): Promise<Record<string, string>> {
    // jupiter cannot update a template: a changed spec gets a new one (named by its digest)
    // and the old one is deleted; instances already made keep their own copy.
    const digest = createHash("sha256")
      .update(JSON.stringify([desired.region, desired.plan, desired.image, desired.options]))
      .digest("hex")
      .slice(0, 10);
    const id = await this.#ensureCluster(`${NAME_PREFIX}${desired.ownerUID}-${digest}`, desired);
    const previous = desired.providerData.clusterId;
    if (previous !== undefined && previous !== id) await this.deleteTemplate({ clusterId: previous });
    return { clusterId: id };
  }

  async templateExists(providerData: Readonly<Record<string, string>>): Promise<boolean> {
    const id = providerData.clusterId;
    return id !== undefined && (await this.#cluster(id)) !== undefined;
  }

  async deleteTemplate(providerData: Readonly<Record<string, string>>): Promise<void> {
    const id = providerData.clusterId;
    if (id === undefined) return;
    try {
      await this.#api.call(
        { method: "DELETE", path: `/v1/cluster/${encodeURIComponent(id)}`, operation: "deleteTemplate" },
        z.unknown(),
      );
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function field(row: unknown, name: string): string | undefined {
  const v = typeof row === "object" && row !== null ? (row as Record<string, unknown>)[name] : undefined;
  return typeof v === "string" ? v : undefined;
}

function refuse(message: string, reason: string): InvalidRequestError {
  return new InvalidRequestError(`multicloud: ${message}`, { provider: "multicloud", reason });
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
    return new MulticloudDriver(new MulticloudApi(http));
  },
};
