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
import { catalogueRows, instanceView, MC_CLOUDS, MC_REGIONS, readTemplate, RULES } from "./model.ts";
import type { Cluster, Instance } from "./model.ts";

export { MC_ALIYUN_TYPES, MC_CLOUDS, MC_IMAGES, MC_REGIONS, MC_TYPES, MC_ZONES } from "./model.ts";

/**
 * Multi-cloud API simulator (Weibo OpenDCP "jupiter"), after ../shared/providers/multicloud.md.
 * Where the document is silent, both profiles follow jupiter's source (weibocom/opendcp):
 * - Every answer is the envelope `{code, msg, content, ext}`: code 0 with HTTP 200, 10999 with
 *   500, 11996/12996/12997 with 400. Injected faults: 503 + 10999 (a proxy in front); rate
 *   limits: 429 + Retry-After + 10999. An unknown path or method: a plain-text 404 without an
 *   envelope, as a Go router answers.
 * - Status integers (the document shows 1, 3 and 7 but no table; meanings as in
 *   providers/README.md): an expanded instance goes 0 pending -> 3 initialising -> 1 success,
 *   one `transitionMs` per step; `DELETE /v1/instance/:id` answers at once, then 6 deleting ->
 *   5 deleted. A deleted instance is in no list and no single read (the source's queries exclude
 *   status 5): the read answers 10999 as for an id never issued, the status read the document's
 *   own example row (status 7, empty ip_address), as the source does for any id it cannot read.
 * - A template whose instances are not all deleted cannot be deleted (10999), as in the source;
 *   instances keep a copy of their template.
 * - aliyun templates store the cloud's own instance type for the catalogue name they were
 *   given ("1Core-1GB" -> "ecs.n1.tiny"; the document creates "1核1G" and reads back
 *   "ecs.n1.tiny", Cpu 1, Ram 1); Cpu and Ram are the numbers in the catalogue name.
 * - Expand logs a line under its X-CORRELATION-ID for each instance, delete under its own;
 *   `GET /v1/instance/log/:correlationId/:instanceId` answers those lines as one string (the
 *   source's shape; the document shows only "{日志信息}"), "" when there are none.
 * - `routes: "document"` (default) serves `GET /v1/start/:id` and `GET /v1/status/:id`;
 *   `"source"` serves jupiter's own routing instead, `POST /v1/instance/start/:id` and
 *   `GET /v1/instance/status/:ids`. A real jupiter routes the latter, so the driver must hold
 *   on either spelling in either profile; the other spelling is an unknown path.
 * - The document has no authentication; with `token` set, `Authorization: Bearer <token>` is
 *   required (401 + 10999 otherwise), as a gateway in front of jupiter would.
 * - Served: the template paths, `GET /v1/instance/:id`, start, status (GET and POST), delete,
 *   the catalogues (provider, regions, zones, type, image, charge, disk_category), list,
 *   cluster/:id, both log reads and cluster/number. The other documented paths (create by
 *   IP, ssh keys, VPC/subnet/security group, physical devices, OpenStack, cluster/oldnumber)
 *   are unknown paths: the driver never calls them.
 * - Every list is one answer, as in the document (no page, limit or offset anywhere): there is
 *   no page a list could repeat or never end on, so no such knob either.
 * - Test hooks, not part of the API: `arrived()` counts requests as they arrive (before
 *   `latencyMs` holds them) and `onArrival` runs then, so a test can abort a driver call at an
 *   exact request; `vms()` reads the owner UID from the expand's correlation id
 *   (`cio-<uid>` or `cio-<uid>.<cluster>`).
 *
 * strict: only what the document shows:
 * - missing rows answer the document's own texts: `GET /v1/instance/:id` "get one instance
 *   err" (no hint whether the instance is gone or the service failed), a template read or
 *   expand "QuerySeter no row found", a template delete "Delete cluster err" whether the
 *   template is unknown or still in use;
 * - `:instanceId`/`:instanceIds` is one id (the document shows no separator);
 * - a missing documented field (template fields, X-CORRELATION-ID on expand) is 12996
 *   "Input error!"; X-CORRELATION-ID on delete 12997 (the document's example).
 * default adds what jupiter's source does:
 * - every missing row answers the ORM's error, "<QuerySeter> no row found" (the document's
 *   "QuerySeter no row found" lost its <…> to Markdown), a template in use the source's
 *   "Can't delete this cluster, because still exsit instance by cluster model created.";
 * - comma-separated ids in the status read and delete (the source splits on ",");
 * - expand without X-CORRELATION-ID is 12997 "Missing requisite parameter(X-CORRELATION-ID)!";
 * - the log read by correlation id ends with the host's own lines once the instance has an IP
 *   (the source appends what octans logged for that IP, whatever the correlation id).
 */
export interface MulticloudSimulator extends Simulator {
  /** Remote templates that exist (not deleted). */
  clusters(): { id: number; name: string; instanceType: string; imageId: string }[];
  /** Delete a template behind the operator's back (even one still in use). */
  dropCluster(id: number): void;
  /** Make the next expand's instance end in status 4 (initialisation timed out). */
  failNextInit(): void;
  setStatus(instanceId: string, status: number): void;
  /** Requests received so far, counted as they arrive (before faults.latencyMs holds them). */
  arrived(): number;
  /**
   * Called as each request arrives, before latency and faults: a test aborts a driver call
   * here, at an exact request of it.
   */
  onArrival: () => void;
}

export interface MulticloudSimOptions {
  faults?: Partial<FaultKnobs>;
  profile?: SimProfile;
  routes?: "document" | "source";
  token?: string;
}

export async function startMulticloudSimulator(
  opts: MulticloudSimOptions = {},
): Promise<MulticloudSimulator> {
  const profile = opts.profile ?? "default";
  const rules = RULES[profile];
  const routes = opts.routes ?? "document";
  const injector = new FaultInjector(opts.faults);
  const clusters = new Map<number, Cluster>();
  const instances = new Map<string, Instance>();
  const logs = new Map<string, string[]>();
  const counts = new Map<string, number>();
  let clusterSeq = 0;
  let instanceSeq = 0;
  let failInit = false;

  const answer = (
    res: ServerResponse,
    code: number,
    msg: string | null,
    content: unknown = null,
    ext: unknown = null,
  ) => sendJson(res, code === 0 ? 200 : code === 10999 ? 500 : 400, { code, msg, content, ext });
  const ok = (res: ServerResponse, content: unknown, ext: unknown = null): void =>
    answer(res, 0, null, content, ext);
  const notFound = (res: ServerResponse): void => {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("404 page not found");
  };
  /** An instance the API shows: issued and not deleted. */
  const shown = (id: string): Instance | undefined => {
    const i = instances.get(id);
    return i && i.Status !== 5 ? i : undefined;
  };
  const ids = (segment: string): string[] =>
    (rules.commaLists ? segment.split(",") : [segment]).filter((s) => s !== "");
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
    logs.set(key, [...(logs.get(key) ?? []), `${new Date().toISOString()} ${message}`]);
  };

  function expand(c: Cluster, n: number, correlation: string): string[] {
    const made: string[] = [];
    for (let k = 0; k < n; k++) {
      const seq = ++instanceSeq;
      const i: Instance = {
        Id: seq,
        Cluster: { ...c },
        InstanceId: `i-${seq.toString(36).padStart(12, "0")}`,
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
      instances.set(i.InstanceId, i);
      log(correlation, i.InstanceId, `expand cluster ${String(c.Id)}: instance ${i.InstanceId} created`);
      const fails = failInit;
      failInit = false;
      step(i, 3, () => {
        i.PrivateIpAddress = `10.41.${String((seq >> 8) & 255)}.${String(seq & 255)}`;
        i.PublicIpAddress = `101.1.${String((seq >> 8) & 255)}.${String(seq & 255)}`;
        step(i, fails ? 4 : 1);
      });
      injector.knobs.onCreated(i.InstanceId);
      made.push(i.InstanceId);
    }
    return made;
  }

  function templates(
    method: string,
    p: string[],
    json: Record<string, unknown>,
    correlation: string,
    res: ServerResponse,
  ): void {
    if (p.length === 2 && method === "GET") return ok(res, [...clusters.values()]);
    if (p.length === 2 && method === "POST") {
      const c = readTemplate(json);
      if ("code" in c) return answer(res, c.code, c.msg);
      c.Id = ++clusterSeq;
      c.Zone.Id = c.Id;
      clusters.set(c.Id, c);
      return ok(res, c.Id);
    }
    if (p.length === 4 && p[2] === "number" && method === "GET") {
      const byCloud = Object.fromEntries(
        MC_CLOUDS.map((cloud) => [
          cloud,
          String([...instances.values()].filter((i) => i.Status !== 5 && i.Provider === cloud).length),
        ]),
      );
      const total = [...instances.values()].filter((i) => i.Status !== 5).length;
      return ok(res, [{ ...byCloud, time: new Date().toISOString(), total: String(total) }]);
    }
    const id = Number(p[2]);
    if (!/^\d+$/.test(p[2] ?? "")) return answer(res, 12996, "Input error!");
    const c = clusters.get(id);
    if (p.length === 3 && method === "GET") return c ? ok(res, c) : answer(res, 10999, rules.noTemplate);
    if (p.length === 3 && method === "DELETE") {
      if (!c) return answer(res, 10999, rules.noTemplateOnDelete);
      if ([...instances.values()].some((i) => i.Cluster.Id === id && i.Status !== 5))
        return answer(res, 10999, rules.templateInUse);
      clusters.delete(id);
      return ok(res, true);
    }
    if (p.length === 5 && p[3] === "expand" && method === "POST") {
      if (correlation === "") return answer(res, ...rules.missingCorrelationOnExpand);
      if (!c) return answer(res, 10999, rules.noTemplate);
      const n = Number(p[4]);
      if (!Number.isInteger(n) || n < 1 || n > 100) return answer(res, 12996, "Input error!");
      return ok(res, expand(c, n, correlation), c.Id);
    }
    notFound(res);
  }

  function statusRows(segment: string): Record<string, unknown>[] {
    return ids(segment).map((id) => {
      const i = shown(id);
      return {
        instance_id: id,
        status: i?.Status ?? 7,
        ip_address: i ? i.PublicIpAddress || i.PrivateIpAddress : "",
      };
    });
  }

  function start(id: string, res: ServerResponse): void {
    const i = shown(id);
    if (!i || i.Status === 6) return answer(res, 10999, "Could not start instances", false);
    if (i.Status === 2 || i.Status === 4 || i.Status === 7) {
      i.Status = 3;
      step(i, 1);
    }
    ok(res, true);
  }

  function deleteInstances(segment: string, correlation: string, res: ServerResponse): void {
    if (correlation === "") return answer(res, 12997, "Missing requisite parameter(X-CORRELATION-ID)!");
    for (const id of ids(segment)) {
      const i = shown(id);
      if (!i || i.Status === 6) continue;
      i.Status = 6;
      log(correlation, id, `delete instance ${id} requested`);
      step(i, 5, () => log(correlation, id, `delete instance ${id} success`));
    }
    ok(res, null);
  }

  /** The catalogues: `/v1/instance/<what>/:provider[/:regionId]`. */
  function catalogue(p: string[], res: ServerResponse): void {
    const cloud = p[3] ?? "";
    if (!MC_REGIONS[cloud]) return answer(res, 10999, `unknown backend provider driver: ${cloud}`);
    const rows = catalogueRows(p[2] ?? "", cloud, p[4] ?? "", p.length);
    return rows === undefined ? notFound(res) : ok(res, rows);
  }

  function instanceRoutes(method: string, p: string[], correlation: string, res: ServerResponse): void {
    const live = (): Instance[] => [...instances.values()].filter((i) => i.Status !== 5);
    if (method === "GET" && p.length === 3 && p[2] === "provider") return ok(res, [...MC_CLOUDS]);
    if (method === "GET" && p.length === 3 && p[2] === "list") return ok(res, live().map(instanceView));
    if (method === "GET" && p.length === 4 && p[2] === "cluster") {
      if (!/^\d+$/.test(p[3] ?? "")) return answer(res, 12996, "Input error!");
      return ok(
        res,
        live()
          .filter((i) => i.Cluster.Id === Number(p[3]))
          .map(instanceView),
      );
    }
    if (method === "GET" && p[2] === "log" && (p.length === 4 || p.length === 5)) {
      const [corr, id] = p.length === 5 ? [p[3] ?? "", p[4] ?? ""] : [undefined, p[3] ?? ""];
      const lines = [...logs.entries()]
        .filter(([key]) => (corr === undefined ? key.endsWith(`\u0000${id}`) : key === `${corr}\u0000${id}`))
        .flatMap(([, l]) => l);
      // The source appends the host's own logs (from octans, by IP) to the filtered read.
      const ip = corr !== undefined && rules.hostLogs ? instances.get(id)?.PrivateIpAddress : undefined;
      return ok(res, ip ? `${lines.join("\n")}\nhost ${ip}: initialised by octans` : lines.join("\n"));
    }
    if (
      method === "GET" &&
      ["regions", "zones", "type", "charge", "disk_category", "image"].includes(p[2] ?? "")
    )
      return catalogue(p, res);
    if (p.length !== 3) return notFound(res);
    if (method === "GET") {
      const i = shown(p[2] ?? "");
      return i ? ok(res, instanceView(i)) : answer(res, 10999, rules.noInstance);
    }
    if (method === "DELETE") return deleteInstances(p[2] ?? "", correlation, res);
    notFound(res);
  }

  function handle(req: IncomingMessage, body: string, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://sim");
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "");
    const label = path.replace(/\/log\/[^/]+\/(?=[^/]+$)/, "/log/:correlationId/");
    const operation = `${method} ${label.replace(/\/(i-[a-z0-9]+|\d+)(,[^/]*)?(?=\/|$)/g, "/:id")}`;
    countRequest(counts, operation);
    const auth = req.headers.authorization ?? "";
    const decision = injector.decide(auth, operation);
    if (applyConnectionFault(decision, res)) return;
    if (decision.kind === "rateLimited") {
      res.setHeader("Retry-After", String(decision.retryAfterSeconds ?? 1));
      return sendJson(res, 429, { code: 10999, msg: "too many requests", content: null, ext: null });
    }
    if (decision.kind === "error")
      return sendJson(res, 503, { code: 10999, msg: "service unavailable", content: null, ext: null });
    if (opts.token !== undefined && auth !== `Bearer ${opts.token}`)
      return sendJson(res, 401, {
        code: 10999,
        msg: "unauthorized: bad or missing token",
        content: null,
        ext: null,
      });

    let json: Record<string, unknown> = {};
    try {
      if (body.trim() !== "") json = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return answer(res, 12996, "Input error!");
    }
    let p: string[];
    try {
      p = path.split("/").filter(Boolean).map(decodeURIComponent);
    } catch {
      return answer(res, 12996, "Input error!");
    }
    const header = req.headers["x-correlation-id"];
    const correlation = typeof header === "string" ? header : "";
    if (p[0] !== "v1") return notFound(res);
    if (p[1] === "cluster") return templates(method, p, json, correlation, res);
    const doc = routes === "document";
    if (
      doc
        ? method === "GET" && p[1] === "start" && p.length === 3
        : method === "POST" && p[1] === "instance" && p[2] === "start" && p.length === 4
    )
      return start(p[p.length - 1] ?? "", res);
    if (
      method === "GET" &&
      (doc ? p[1] === "status" && p.length === 3 : p[1] === "instance" && p[2] === "status" && p.length === 4)
    )
      return ok(res, statusRows(p[p.length - 1] ?? ""));
    if (method === "POST" && p[1] === "status" && p.length === 2) {
      const i = shown(typeof json.InstanceId === "string" ? json.InstanceId : "");
      if (!i || typeof json.Status !== "number") return answer(res, 12996, "Input error");
      i.Status = json.Status;
      return ok(res, json.Status);
    }
    if (p[1] === "instance") return instanceRoutes(method, p, correlation, res);
    notFound(res);
  }

  let arrived = 0;
  let onArrival = (): void => undefined;
  const server = await listen(handle, injector.knobs, () => {
    arrived++;
    onArrival();
  });
  return {
    provider: "multicloud",
    profile,
    url: server.url,
    credentials: opts.token === undefined ? {} : { token: opts.token },
    faults: injector.knobs,
    requestCounts: counts,
    vms(): SimVm[] {
      return [...instances.values()]
        .filter((i) => i.Status !== 5)
        .map((i) => ({
          id: i.InstanceId,
          // The expand's correlation id is the mark: cio-<uid>, or cio-<uid>.<cluster>.
          ownerUID: /^cio-([^.]+)/.exec(i.correlationId)?.[1],
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
    arrived: () => arrived,
    get onArrival() {
      return onArrival;
    },
    set onArrival(hook) {
      onArrival = hook;
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
