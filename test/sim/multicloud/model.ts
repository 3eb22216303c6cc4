/**
 * What the multi-cloud simulator stores and how it reads a template body: catalogues, the
 * template and instance rows in the document's field names, and the profile-dependent texts.
 * The choices themselves are listed at the top of ./index.ts.
 */
import type { SimProfile } from "../common.ts";

export const MC_CLOUDS = ["aliyun", "aws", "openstack"] as const;
export const MC_REGIONS: Record<string, string[]> = {
  aliyun: ["cn-beijing", "cn-zhangjiakou"],
  aws: ["cn-north-1"],
  openstack: ["dc1"],
};
export const MC_ZONES: Record<string, string[]> = {
  "cn-beijing": ["cn-beijing-a", "cn-beijing-c", "cn-beijing-d"],
  "cn-zhangjiakou": ["cn-zhangjiakou-a"],
  "cn-north-1": ["cn-north-1a"],
  dc1: ["dc1-az1"],
};
export const MC_TYPES = ["1Core-1GB", "1Core-2GB", "4Cores-8GB", "16Cores-16GB", "16Cores-64GB"] as const;
export const MC_IMAGES = ["centos7u2_64_40G_cloudinit_20160728.raw", "m-2zefnwiq237sjwnt7oez"] as const;
/**
 * The aliyun instance type a template stores for a catalogue name: the document creates a
 * template with "1核1G" and reads it back as "ecs.n1.tiny" (Cpu 1, Ram 1), and lists
 * "ecs.n2.3xlarge" with Cpu 16, Ram 64.
 */
export const MC_ALIYUN_TYPES: Record<string, string> = {
  "1Core-1GB": "ecs.n1.tiny",
  "1Core-2GB": "ecs.n1.small",
  "4Cores-8GB": "ecs.n1.large",
  "16Cores-16GB": "ecs.n1.3xlarge",
  "16Cores-64GB": "ecs.n2.3xlarge",
};

/**
 * The rows of catalogue `what` (`/v1/instance/<what>/:provider[/:regionId]`, `segments` path
 * segments in all) for a known cloud; undefined when no such catalogue path exists.
 */
export function catalogueRows(
  what: string,
  cloud: string,
  region: string,
  segments: number,
): unknown[] | undefined {
  const rows: Record<string, () => unknown[] | undefined> = {
    regions: () => MC_REGIONS[cloud]?.map((r) => ({ Endpoint: "", RegionName: r })),
    zones: () =>
      (MC_ZONES[region] ?? []).map((z) => ({ Messages: null, RegionName: region, State: "", ZoneName: z })),
    type: () => [...MC_TYPES],
    charge: () => ["PayByBandwidth", "PayByTraffic"],
    disk_category: () => ["cloud_efficiency", "cloud_ssd"],
    image: () =>
      MC_IMAGES.map((id) => ({
        ImageId: id,
        Name: id,
        State: "Available",
        OwnerId: "self",
        Public: false,
        Tags: null,
      })),
  };
  const arity: Record<string, number> = {
    regions: 4,
    type: 4,
    charge: 4,
    disk_category: 4,
    zones: 5,
    image: 5,
  };
  const make = rows[what];
  return make && arity[what] === segments ? (make() ?? []) : undefined;
}

export interface Cluster {
  Id: number;
  Name: string;
  Provider: string;
  LastestPartNum: number;
  Desc: string;
  CreateTime: string;
  DeleteTime: string;
  Cpu: number;
  Ram: number;
  InstanceType: string;
  ImageId: string;
  PostScript: string;
  KeyName: string;
  Network: Record<string, unknown>;
  Zone: { Id: number; RegionName: string; ZoneName: string };
  Replication: null;
  SystemDiskCategory: string;
  DataDiskSize: number;
  DataDiskNum: number;
  DataDiskCategory: string;
  FlavorId: string;
}

export interface Instance {
  Id: number;
  Cluster: Cluster;
  InstanceId: string;
  Status: number;
  Provider: string;
  CreateTime: string;
  ImageId: string;
  InstanceType: string;
  RegionId: string;
  ZoneId: string;
  PrivateIpAddress: string;
  PublicIpAddress: string;
  /** X-CORRELATION-ID of the expand that made it (not shown by the API). */
  correlationId: string;
  timer?: NodeJS.Timeout | undefined;
}

/** An instance in the document's field set, as the single read and both lists show it. */
export function instanceView(i: Instance): Record<string, unknown> {
  const c = i.Cluster;
  return {
    Id: i.Id,
    Cluster: c,
    Provider: i.Provider,
    CreateTime: i.CreateTime,
    Cpu: c.Cpu,
    Ram: c.Ram,
    InstanceId: i.InstanceId,
    ImageId: i.ImageId,
    InstanceType: i.InstanceType,
    KeyName: c.KeyName,
    VpcId: "",
    SubnetId: "",
    SecurityGroupId: "",
    RegionId: i.RegionId,
    ZoneId: i.ZoneId,
    DataDiskNum: c.DataDiskNum,
    DataDiskSize: c.DataDiskSize,
    DataDiskCategory: c.DataDiskCategory,
    SystemDiskCategory: c.SystemDiskCategory,
    CostWay: "",
    PreBuyMonth: 0,
    PrivateIpAddress: i.PrivateIpAddress,
    PublicIpAddress: i.PublicIpAddress,
    NatIpAddress: "",
    Status: i.Status,
    TenantID: "",
    UserID: "",
    Name: "",
  };
}

/** The texts and codes where the two profiles differ (see the comment at the top of ./index.ts). */
export interface ProfileRules {
  /** msg of GET /v1/instance/:id for an instance it does not show. */
  noInstance: string;
  /** msg of a template read or expand that finds no template. */
  noTemplate: string;
  /** msg of DELETE /v1/cluster/:id for an unknown template. */
  noTemplateOnDelete: string;
  /** msg of DELETE /v1/cluster/:id while instances of it are not deleted. */
  templateInUse: string;
  /** Answer to an expand without X-CORRELATION-ID. */
  missingCorrelationOnExpand: readonly [12996 | 12997, string];
  /** Whether `:instanceIds` path segments are split on ",". */
  commaLists: boolean;
  /** Whether the log read by correlation id appends the host's own logs (not filtered). */
  hostLogs: boolean;
}

const NO_ROW = "<QuerySeter> no row found";

export const RULES: Record<SimProfile, ProfileRules> = {
  strict: {
    noInstance: "get one instance err",
    noTemplate: "QuerySeter no row found",
    noTemplateOnDelete: "Delete cluster err",
    templateInUse: "Delete cluster err",
    missingCorrelationOnExpand: [12996, "Input error!"],
    commaLists: false,
    hostLogs: false,
  },
  default: {
    noInstance: NO_ROW,
    noTemplate: NO_ROW,
    noTemplateOnDelete: NO_ROW,
    templateInUse: "Can't delete this cluster, because still exsit instance by cluster model created.",
    missingCorrelationOnExpand: [12997, "Missing requisite parameter(X-CORRELATION-ID)!"],
    commaLists: true,
    hostLogs: true,
  },
};

export interface TemplateProblem {
  code: 10999 | 11996 | 12996;
  msg: string;
}

/** Reads a template body as jupiter's create does: the template, or the answer refusing it. */
export function readTemplate(json: Record<string, unknown>): Cluster | TemplateProblem {
  for (const f of ["Name", "Provider", "InstanceType", "SystemDiskCategory", "DataDiskCategory"])
    if (typeof json[f] !== "string" || json[f] === "") return { code: 12996, msg: "Input error!" };
  const provider = json.Provider as string;
  if (!MC_CLOUDS.includes(provider as never))
    return { code: 10999, msg: `unknown backend provider driver: ${provider}` };
  const num = typeof json.DataDiskNum === "number" ? json.DataDiskNum : -1;
  if (num <= 0 || num > 4)
    return {
      code: 11996,
      msg: "The paramter (DataDiskNum) over size limited and the size range is larger than 0 and less equal 4.!",
    };
  const zone = (json.Zone ?? {}) as { RegionName?: unknown; ZoneName?: unknown };
  const region = typeof zone.RegionName === "string" ? zone.RegionName : "";
  const zoneName = typeof zone.ZoneName === "string" ? zone.ZoneName : "";
  if (!MC_REGIONS[provider]?.includes(region) || !MC_ZONES[region]?.includes(zoneName))
    return { code: 12996, msg: "Input error!" };
  const type = json.InstanceType as string;
  if (!MC_TYPES.includes(type as never) || !MC_IMAGES.includes(json.ImageId as never))
    return { code: 12996, msg: "Input error!" };
  const [cpu, ram] = type.match(/\d+/g)?.map(Number) ?? [0, 0];
  const text = (v: unknown): string => (typeof v === "string" ? v : "");
  return {
    Id: 0,
    Name: json.Name as string,
    Provider: provider,
    LastestPartNum: 0,
    Desc: text(json.Desc),
    CreateTime: new Date().toISOString(),
    DeleteTime: "0001-01-01T00:00:00Z",
    Cpu: cpu ?? 0,
    Ram: ram ?? 0,
    InstanceType: provider === "aliyun" ? (MC_ALIYUN_TYPES[type] ?? type) : type,
    ImageId: json.ImageId as string,
    PostScript: text(json.PostScript),
    KeyName: text(json.KeyName),
    Network:
      typeof json.Network === "object" && json.Network !== null
        ? (json.Network as Record<string, unknown>)
        : {},
    Zone: { Id: 0, RegionName: region, ZoneName: zoneName },
    Replication: null,
    SystemDiskCategory: json.SystemDiskCategory as string,
    DataDiskSize: typeof json.DataDiskSize === "number" ? json.DataDiskSize : 0,
    DataDiskNum: num,
    DataDiskCategory: json.DataDiskCategory as string,
    FlavorId: "",
  };
}
