import { z } from "zod";
import { InvalidRequestError } from "../errors.ts";
import { TtlCache } from "../ttl-cache.ts";
import type { MulticloudApi, Signal } from "./api.ts";
import type { MulticloudOptions } from "./options.ts";

/** What a machine template is made of: the spec's fields and the object's providerOptions. */
export interface TemplateFields {
  region: string | undefined;
  plan: string | undefined;
  image: string | undefined;
  options: MulticloudOptions;
}

const TTL_MS = 600_000;

/** A catalogue row's string column; a row of another shape counts as no entry (see Entry). */
function column(key: "RegionName" | "ImageId" | "ZoneName"): z.ZodType<string | undefined> {
  return z
    .looseObject({ [key]: z.string() })
    .transform((row) => row[key])
    .optional()
    .catch(undefined);
}

/**
 * Catalogue rows as the document shows them (names, or objects with the named column); a row
 * of another shape counts as no entry, so one odd row of another cloud hides nothing else.
 */
const Entry = {
  cloud: z.string().optional().catch(undefined),
  region: column("RegionName"),
  type: z.string().optional().catch(undefined),
  image: column("ImageId"),
  zone: column("ZoneName"),
};

/**
 * jupiter's catalogues (clouds, regions, zones, instance types, images), cached per driver —
 * that is per endpoint and account, so every object of the account shares them.
 */
export class Catalogue {
  readonly #api: MulticloudApi;
  readonly #lists = new Map<string, TtlCache<string[]>>();

  constructor(api: MulticloudApi) {
    this.#api = api;
  }

  /**
   * A catalogue, loaded with the signal of the call that found it missing. Callers that join
   * that load share its fate: a cancelled load fails them too, and they retry like after any
   * transient failure (cancellation is operator-wide: leadership lost, shutdown).
   */
  #list(path: string, entry: z.ZodType<string | undefined>, signal: Signal): Promise<string[]> {
    let cache = this.#lists.get(path);
    if (!cache) {
      cache = new TtlCache<string[]>();
      this.#lists.set(path, cache);
    }
    return cache.get(TTL_MS, async () => {
      const rows = await this.#api.call(
        { method: "GET", path, operation: "catalogue", signal },
        z.array(entry),
      );
      return rows.filter((v): v is string => v !== undefined);
    });
  }

  /** The instance types jupiter offers for a backend cloud (names like "1Core-1GB"). */
  types(cloud: string, signal: Signal): Promise<string[]> {
    return this.#list(`/v1/instance/type/${encodeURIComponent(cloud)}`, Entry.type, signal);
  }

  /** Checks the fields against every catalogue, naming the valid choices; returns the zone to use. */
  async validate(fields: TemplateFields, signal: Signal): Promise<string> {
    const { cloud } = fields.options;
    if (fields.region === undefined || fields.plan === undefined || fields.image === undefined)
      throw refuse("multicloud needs spec.region, spec.plan (instance type) and spec.image", "InvalidSpec");
    const clouds = await this.#list("/v1/instance/provider", Entry.cloud, signal);
    if (!clouds.includes(cloud))
      throw refuse(
        `no backend cloud "${cloud}"; providerOptions.cloud is one of ${clouds.join(", ")}`,
        "UnknownCloud",
      );
    const c = encodeURIComponent(cloud);
    const r = encodeURIComponent(fields.region);
    const regions = await this.#list(`/v1/instance/regions/${c}`, Entry.region, signal);
    if (!regions.includes(fields.region))
      throw refuse(
        `${cloud} has no region "${fields.region}"; choose one of ${regions.join(", ")}`,
        "UnknownRegion",
      );
    const types = await this.types(cloud, signal);
    if (!types.includes(fields.plan))
      throw refuse(
        `${cloud} has no instance type "${fields.plan}"; choose one of ${types.join(", ")}`,
        "UnknownPlan",
      );
    const images = await this.#list(`/v1/instance/image/${c}/${r}`, Entry.image, signal);
    if (!images.includes(fields.image))
      throw refuse(
        `${cloud} ${fields.region} has no image "${fields.image}"; choose one of ${images.join(", ")}`,
        "UnknownImage",
      );
    const zones = await this.#list(`/v1/instance/zones/${c}/${r}`, Entry.zone, signal);
    const zone = fields.options.zone ?? zones[0];
    if (zone === undefined || !zones.includes(zone))
      throw refuse(
        zones.length === 0
          ? `region "${fields.region}" of ${cloud} has no zones`
          : `no zone "${String(zone)}" in ${fields.region}; choose one of ${zones.join(", ")}`,
        "UnknownZone",
      );
    return zone;
  }

  /** The template body jupiter takes on template create and on expand, after validating it. */
  async templateBody(name: string, fields: TemplateFields, signal: Signal): Promise<Record<string, unknown>> {
    const zone = await this.validate(fields, signal);
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
}

/**
 * The catalogue name an instance was made with. jupiter stores the backend cloud's own type
 * for some clouds (the document reads "ecs.n1.tiny" back for a template made as "1核1G"), so
 * a stored type that is not a catalogue name is matched by the CPU and RAM the catalogue name
 * spells; when that is not exactly one name, the plan is not reported rather than misreported.
 */
export function catalogueName(
  stored: string | undefined,
  size: { cpu: number | undefined; ram: number | undefined },
  types: readonly string[],
): string | undefined {
  if (stored !== undefined && types.includes(stored)) return stored;
  if (size.cpu === undefined || size.ram === undefined) return undefined;
  const matches = types.filter((t) => {
    const [cpu, ram, ...rest] = t.match(/\d+/g)?.map(Number) ?? [];
    return rest.length === 0 && cpu === size.cpu && ram === size.ram;
  });
  return matches.length === 1 ? matches[0] : undefined;
}

export function refuse(message: string, reason: string): InvalidRequestError {
  return new InvalidRequestError(`multicloud: ${message}`, { provider: "multicloud", reason });
}
