import type { IncomingMessage, ServerResponse } from "node:http";
import {
  applyConnectionFault,
  countRequest,
  FaultInjector,
  listen,
  sendJson,
  type FaultKnobs,
  type SimProfile,
  type Simulator,
  type SimVm,
} from "../common.ts";

/**
 * Multi-cloud API simulator (Weibo OpenDCP "jupiter"), after ../shared/providers/multicloud.md
 * and the multicloud section of providers/README.md. Choices where the document is silent:
 * - every answer is the envelope `{code, msg, content, ext}`; code 10999 goes with HTTP 500,
 *   11996/12996/12997 with HTTP 400 (as the source does); injected faults are HTTP 503 with
 *   10999 (a proxy in front of the service), rate limits 429 + Retry-After with 10999;
 * - a missing row is 10999 with the ORM's text "QuerySeter no row found" (the document's
 *   example); for an instance: "get one instance err: QuerySeter no row found";
 * - `routes: "document"` serves `GET /v1/start/:id` and `GET /v1/status/:ids`, `"source"`
 *   serves `POST /v1/instance/start/:id` and `GET /v1/instance/status/:ids`; the other
 *   spelling is a plain 404 (no envelope), as a router answers an unknown path;
 * - expand needs `X-CORRELATION-ID` (12997 otherwise) and logs "expand" lines under it, which
 *   `GET /v1/instance/log/:correlationId/:instanceId` returns (`content: []` when none);
 * - instances go 0 pending -> 3 initialising -> 1 success, one `transitionMs` per step;
 *   `DELETE /v1/instance/:ids` goes 6 deleting -> 5 deleted; deleted rows stay readable;
 * - a template may be deleted while instances made from it live (instances keep a copy);
 * - the document has no authentication; with `token` set the simulator requires
 *   `Authorization: Bearer <token>` and answers 401 with 10999 otherwise.
 */
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

interface Cluster {
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

interface Instance {
  Id: number;
  Cluster: Cluster;
  InstanceId: string;
  Status: number;
  Provider: string;
  CreateTime: string;
  InstanceType: string;
  ImageId: string;
  RegionId: string;
  ZoneId: string;
  PrivateIpAddress: string;
  PublicIpAddress: string;
  correlationId: string;
  timer?: NodeJS.Timeout | undefined;
}

export interface MulticloudSimulator extends Simulator {
  /** Remote templates that exist (not deleted). */
  clusters(): { id: number; name: string; instanceType: string; imageId: string }[];
  /** Delete a template behind the operator's back. */
  dropCluster(id: number): void;
  /** Make the next expand's instance end in status 4 (initialisation timed out). */
  failNextInit(): void;
  setStatus(instanceId: string, status: number): void;
}

export async function startMulticloudSimulator(
  opts: {
    faults?: Partial<FaultKnobs>;
    profile?: SimProfile;
    routes?: "document" | "source";
    token?: string;
  } = {},
): Promise<MulticloudSimulator> {
  const routes = opts.routes ?? "document";
  const injector = new FaultInjector(opts.faults);
  const clusters = new Map<number, Cluster>();
  const instances = new Map<string, Instance>();
  const logs = new Map<string, { time: string; message: string }[]>();
  const counts = new Map<string, number>();
  let clusterSeq = 0;
  let instanceSeq = 0;
  let failInit = false;

  const envelope = (
    res: ServerResponse,
    http: number,
    code: number,
    msg: string | null,
    content: unknown,
    ext: unknown = null,
  ): void => sendJson(res, http, { code, msg, content, ext });
  const ok = (res: ServerResponse, content: unknown, ext: unknown = null): void =>
    envelope(res, 200, 0, null, content, ext);
  const serviceError = (res: ServerResponse, msg: string): void => envelope(res, 500, 10999, msg, null);
  const badRequest = (res: ServerResponse, code: 11996 | 12996 | 12997, msg: string): void =>
    envelope(res, 400, code, msg, null);

  const publicInstance = (i: Instance): Record<string, unknown> => {
    const { timer: _t, correlationId: _c, ...rest } = i;
    return {
      ...rest,
      Cpu: i.Cluster.Cpu,
      Ram: i.Cluster.Ram,
      KeyName: i.Cluster.KeyName,
      VpcId: "",
      SubnetId: "",
      SecurityGroupId: "",
      DataDiskNum: i.Cluster.DataDiskNum,
      DataDiskSize: i.Cluster.DataDiskSize,
      DataDiskCategory: i.Cluster.DataDiskCategory,
      SystemDiskCategory: i.Cluster.SystemDiskCategory,
      CostWay: "",
      PreBuyMonth: 0,
      NatIpAddress: "",
      TenantID: "",
      UserID: "",
      Name: "",
    };
  };
  const step = (i: Instance, next: number, then?: () => void): void => {
    clearTimeout(i.timer);
    i.timer = setTimeout(() => {
      i.timer = undefined;
      i.Status = next;
      then?.();
    }, injector.knobs.transitionMs);
  };
  const log = (correlationId: string, instanceId: string, message: string): void => {
    const key = `${correlationId}\u0000${instanceId}`;
    const list = logs.get(key) ?? [];
    list.push({ time: new Date().toISOString(), message });
    logs.set(key, list);
  };

  /** Validates a template body as jupiter's create does; returns an error already sent, or the cluster. */
  function readTemplate(json: Record<string, unknown>, res: ServerResponse): Cluster | undefined {
    for (const f of ["Name", "Provider", "InstanceType", "SystemDiskCategory", "DataDiskCategory"]) {
      if (typeof json[f] !== "string" || json[f] === "") {
        badRequest(res, 12997, `Missing requisite parameter(${f})!`);
        return undefined;
      }
    }
    const provider = json.Provider as string;
    if (!MC_CLOUDS.includes(provider as never)) {
      serviceError(res, `unknown backend provider driver: ${provider}`);
      return undefined;
    }
    const num = typeof json.DataDiskNum === "number" ? json.DataDiskNum : -1;
    if (num <= 0 || num > 4) {
      badRequest(
        res,
        11996,
        "The paramter (DataDiskNum) over size limited and the size range is larger than 0 and less equal 4.!",
      );
      return undefined;
    }
    const zone = (json.Zone ?? {}) as { RegionName?: unknown; ZoneName?: unknown };
    const region = typeof zone.RegionName === "string" ? zone.RegionName : "";
    const zoneName = typeof zone.ZoneName === "string" ? zone.ZoneName : "";
    if (!MC_REGIONS[provider]?.includes(region) || !MC_ZONES[region]?.includes(zoneName)) {
      badRequest(res, 12996, "Input error!");
      return undefined;
    }
    if (!MC_TYPES.includes(json.InstanceType as never) || !MC_IMAGES.includes(json.ImageId as never)) {
      badRequest(res, 12996, "Input error!");
      return undefined;
    }
    const [cpu, ram] = (json.InstanceType as string).match(/\d+/g)?.map(Number) ?? [0, 0];
    return {
      Id: 0,
      Name: json.Name as string,
      Provider: provider,
      LastestPartNum: 0,
      Desc: typeof json.Desc === "string" ? json.Desc : "",
      CreateTime: new Date().toISOString(),
      DeleteTime: "0001-01-01T00:00:00Z",
      Cpu: cpu ?? 0,
      Ram: ram ?? 0,
      InstanceType: json.InstanceType as string,
      ImageId: json.ImageId as string,
      PostScript: typeof json.PostScript === "string" ? json.PostScript : "",
      KeyName: typeof json.KeyName === "string" ? json.KeyName : "",
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

  async function handle(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    await Promise.resolve();
    const url = new URL(req.url ?? "/", "http://sim");
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "");
    const operation = `${method} ${path.replace(/\/(i-[a-z0-9]+|\d+)(,[^/]*)?(?=\/|$)/g, "/:id")}`;
    countRequest(counts, operation);
    const auth = req.headers.authorization ?? "";
    const decision = injector.decide(auth, operation);
    if (applyConnectionFault(decision, res)) return;
    if (decision.kind === "rateLimited") {
      res.setHeader("Retry-After", String(decision.retryAfterSeconds ?? 1));
      envelope(res, 429, 10999, "too many requests", null);
      return;
    }
    if (decision.kind === "error") {
      envelope(res, 503, 10999, "service unavailable", null);
      return;
    }
    if (opts.token !== undefined && auth !== `Bearer ${opts.token}`) {
      envelope(res, 401, 10999, "unauthorized: bad or missing token", null);
      return;
    }

    let json: Record<string, unknown> = {};
    if (body.trim() !== "") {
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        badRequest(res, 12996, "Input error!");
        return;
      }
    }
    const p = path.split("/").filter(Boolean);
    if (p[0] !== "v1") {
      notFound(res);
      return;
    }
    const correlation = req.headers["x-correlation-id"];

    // Templates.
    if (p[1] === "cluster") {
      if (p.length === 2 && method === "GET") {
        ok(res, [...clusters.values()]);
        return;
      }
      if (p.length === 2 && method === "POST") {
        const c = readTemplate(json, res);
        if (!c) return;
        c.Id = ++clusterSeq;
        c.Zone.Id = c.Id;
        clusters.set(c.Id, c);
        ok(res, c.Id);
        return;
      }
      const id = Number(p[2]);
      if (!Number.isInteger(id)) {
        badRequest(res, 12996, "Input error!");
        return;
      }
      const c = clusters.get(id);
      if (p.length === 3 && method === "GET") {
        if (c) ok(res, c);
        else serviceError(res, "QuerySeter no row found");
        return;
      }
      if (p.length === 3 && method === "DELETE") {
        if (!c) {
          serviceError(res, "QuerySeter no row found");
          return;
        }
        clusters.delete(id);
        ok(res, true);
        return;
      }
      if (p.length === 5 && p[3] === "expand" && method === "POST") {
        if (typeof correlation !== "string" || correlation === "") {
          badRequest(res, 12997, "Missing requisite parameter(X-CORRELATION-ID)!");
          return;
        }
        if (!c) {
          serviceError(res, "QuerySeter no row found");
          return;
        }
        const n = Number(p[4]);
        if (!Number.isInteger(n) || n < 1 || n > 100) {
          badRequest(res, 12996, "Input error!");
          return;
        }
        const ids: string[] = [];
        for (let k = 0; k < n; k++) {
          const seq = ++instanceSeq;
          const instanceId = `i-${seq.toString(36).padStart(12, "0")}`;
          const i: Instance = {
            Id: seq,
            Cluster: { ...c },
            InstanceId: instanceId,
            Status: 0,
            Provider: c.Provider,
            CreateTime: new Date().toISOString(),
            InstanceType: c.InstanceType,
            ImageId: c.ImageId,
            RegionId: c.Zone.RegionName,
            ZoneId: c.Zone.ZoneName,
            PrivateIpAddress: "",
            PublicIpAddress: "",
            correlationId: correlation,
          };
          instances.set(instanceId, i);
          log(correlation, instanceId, `expand cluster ${String(c.Id)}: instance ${instanceId} created`);
          const fails = failInit;
          failInit = false;
          step(i, 3, () => {
            i.PrivateIpAddress = `10.41.${String((seq >> 8) & 255)}.${String(seq & 255)}`;
            i.PublicIpAddress = `101.1.${String((seq >> 8) & 255)}.${String(seq & 255)}`;
            step(i, fails ? 4 : 1);
          });
          ids.push(instanceId);
        }
        ok(res, ids, c.Id);
        return;
      }
      if (p.length === 4 && p[2] === "number") {
        ok(res, [{ Time: new Date().toISOString(), Number: instances.size }]);
        return;
      }
      notFound(res);
      return;
    }

    const startRoute =
      routes === "document"
        ? method === "GET" && p[1] === "start" && p.length === 3
        : method === "POST" && p[1] === "instance" && p[2] === "start" && p.length === 4;
    if (startRoute) {
      const i = instances.get(p[p.length - 1] ?? "");
      if (!i || i.Status === 5) {
        envelope(res, 500, 10999, "Could not start instances", false);
        return;
      }
      if (i.Status === 2 || i.Status === 4 || i.Status === 7) {
        i.Status = 3;
        step(i, 1);
      }
      ok(res, true);
      return;
    }
    const statusRoute =
      method === "GET" &&
      (routes === "document"
        ? p[1] === "status" && p.length === 3
        : p[1] === "instance" && p[2] === "status" && p.length === 4);
    if (statusRoute) {
      const ids = (p[p.length - 1] ?? "").split(",").filter(Boolean);
      if (ids.length === 0) {
        badRequest(res, 12997, "Missing requisite parameter!");
        return;
      }
      ok(
        res,
        ids
          .map((id) => instances.get(id))
          .filter((i): i is Instance => i !== undefined)
          .map((i) => ({ instance_id: i.InstanceId, status: i.Status, ip_address: i.PrivateIpAddress })),
      );
      return;
    }
    if (method === "POST" && p[1] === "status" && p.length === 2) {
      const i = instances.get(typeof json.InstanceId === "string" ? json.InstanceId : "");
      if (!i || typeof json.Status !== "number") {
        badRequest(res, 12996, "Input error");
        return;
      }
      i.Status = json.Status;
      ok(res, 1);
      return;
    }

    if (p[1] !== "instance") {
      notFound(res);
      return;
    }
    if (p.length === 3 && p[2] === "provider" && method === "GET") {
      ok(res, [...MC_CLOUDS]);
      return;
    }
    if (p.length === 3 && p[2] === "list" && method === "GET") {
      ok(res, [...instances.values()].filter((i) => i.Status !== 5).map(publicInstance));
      return;
    }
    if (p.length === 4 && p[2] === "regions" && method === "GET") {
      const regions = MC_REGIONS[p[3] ?? ""];
      if (!regions) {
        serviceError(res, `unknown backend provider driver: ${p[3] ?? ""}`);
        return;
      }
      ok(
        res,
        regions.map((r) => ({ Endpoint: "", RegionName: r })),
      );
      return;
    }
    if (p.length === 5 && p[2] === "zones" && method === "GET") {
      if (!MC_REGIONS[p[3] ?? ""]) {
        serviceError(res, `unknown backend provider driver: ${p[3] ?? ""}`);
        return;
      }
      ok(
        res,
        (MC_ZONES[p[4] ?? ""] ?? []).map((z) => ({
          Messages: null,
          RegionName: p[4],
          State: "",
          ZoneName: z,
        })),
      );
      return;
    }
    if (p.length === 4 && p[2] === "type" && method === "GET") {
      if (!MC_REGIONS[p[3] ?? ""]) {
        serviceError(res, `unknown backend provider driver: ${p[3] ?? ""}`);
        return;
      }
      ok(res, [...MC_TYPES]);
      return;
    }
    if (p.length === 5 && p[2] === "image" && method === "GET") {
      if (!MC_REGIONS[p[3] ?? ""]) {
        serviceError(res, `unknown backend provider driver: ${p[3] ?? ""}`);
        return;
      }
      ok(
        res,
        MC_IMAGES.map((id) => ({
          ImageId: id,
          Name: id,
          State: "Available",
          OwnerId: "self",
          Public: false,
        })),
      );
      return;
    }
    if (p.length === 4 && p[2] === "cluster" && method === "GET") {
      const id = Number(p[3]);
      ok(
        res,
        [...instances.values()].filter((i) => i.Cluster.Id === id && i.Status !== 5).map(publicInstance),
      );
      return;
    }
    if (p.length === 5 && p[2] === "log" && method === "GET") {
      ok(res, logs.get(`${p[3] ?? ""}\u0000${p[4] ?? ""}`) ?? []);
      return;
    }
    if (p.length === 3 && method === "GET") {
      const i = instances.get(p[2] ?? "");
      if (i) ok(res, publicInstance(i));
      else serviceError(res, "get one instance err: QuerySeter no row found");
      return;
    }
    if (p.length === 3 && method === "DELETE") {
      if (typeof correlation !== "string" || correlation === "") {
        badRequest(res, 12997, "Missing requisite parameter(X-CORRELATION-ID)!");
        return;
      }
      for (const id of (p[2] ?? "").split(",")) {
        const i = instances.get(id);
        if (!i || i.Status === 5 || i.Status === 6) continue;
        i.Status = 6;
        log(correlation, id, "delete requested");
        step(i, 5);
      }
      ok(res, null);
      return;
    }
    notFound(res);
  }

  function notFound(res: ServerResponse): void {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("404 page not found");
  }

  const server = await listen(handle, () => injector.knobs.latencyMs);
  return {
    provider: "multicloud",
    profile: opts.profile ?? "default",
    url: server.url,
    credentials: opts.token === undefined ? {} : { token: opts.token },
    faults: injector.knobs,
    requestCounts: counts,
    vms(): SimVm[] {
      return [...instances.values()]
        .filter((i) => i.Status !== 5)
        .map((i) => ({
          id: i.InstanceId,
          ownerUID: i.correlationId.startsWith("cio-") ? i.correlationId.slice(4) : undefined,
          status: String(i.Status),
          plan: i.InstanceType,
          image: i.ImageId,
          region: i.RegionId,
        }));
    },
    clusters: () =>
      [...clusters.values()].map((c) => ({
        id: c.Id,
        name: c.Name,
        instanceType: c.InstanceType,
        imageId: c.ImageId,
      })),
    dropCluster(id) {
      clusters.delete(id);
    },
    failNextInit() {
      failInit = true;
    },
    setStatus(instanceId, status) {
      const i = instances.get(instanceId);
      if (i) {
        clearTimeout(i.timer);
        i.Status = status;
      }
    },
    async close() {
      for (const i of instances.values()) clearTimeout(i.timer);
      await server.close();
    },
  };
}
