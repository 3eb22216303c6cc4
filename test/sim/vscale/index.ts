import type { IncomingMessage, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
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
 * Vscale simulator, after ../shared/providers/vscale.txt and the Vscale section of
 * providers/README.md (public clients: selectel-vds/go-vscale, ansible vscale modules).
 * Choices where the document is silent, following the public clients where they tell:
 * - every error carries the `Vscale-Error-Message` header; 400s also carry a JSON body
 *   `{"error", "field"}` (as go-vscale decodes it); other errors have an empty JSON body;
 * - a missing or unknown token is 401; a read-only token on anything but GET is 403 with
 *   "read-only token"; an action on a locked scalet is 409 "scalet is locked";
 * - starting a scalet blocked for non-payment (`billing`) is 402 "insufficient funds";
 * - `POST /scalets/:ctid/upgrade` to the same or a smaller rplan is 400 (downgrade refused);
 * - long operations answer at once with `locked: true` and a `Vscale-Task-Id` header; the
 *   task is listed by `GET /tasks` until a minute after it ends; `defined` becomes `started`
 *   (do_start) or `stopped` after `transitionMs`;
 * - `DELETE` marks the scalet `deleted` (timestamp) and locked, then it disappears (404);
 * - rplans are ordered small < medium < large < huge < monster (memory, disk, cpus);
 * - `PATCH /scalets/:ctid/rebuild` reinstalls the scalet's own image (no image parameter).
 */
export const VSCALE_RPLANS = [
  { id: "small", memory: 512, disk: 20480, cpus: 1, addresses: 1 },
  { id: "medium", memory: 1024, disk: 30720, cpus: 1, addresses: 1 },
  { id: "large", memory: 2048, disk: 40960, cpus: 2, addresses: 1 },
  { id: "huge", memory: 4096, disk: 61440, cpus: 2, addresses: 1 },
  { id: "monster", memory: 8192, disk: 81920, cpus: 4, addresses: 1 },
] as const;
export const VSCALE_LOCATIONS = ["spb0", "msk0"] as const;
export const VSCALE_IMAGES = [
  "ubuntu_14.04_64_002_master",
  "debian_8.1_64_001_master",
  "centos_7.1_64_001_master",
] as const;
/** The ownership mark the driver writes into the scalet name, before the UID. */
export const VSCALE_OWNER_SEPARATOR = "--cio-";

interface Scalet {
  ctid: number;
  name: string;
  hostname: string;
  status: string;
  active: boolean;
  locked: boolean;
  location: string;
  rplan: string;
  made_from: string;
  keys: { id: number; name: string }[];
  public_address: Record<string, string>;
  private_address: Record<string, string>;
  created: string;
  deleted: string | null;
  timer?: NodeJS.Timeout | undefined;
}

interface Task {
  id: string;
  location: string;
  d_insert: string;
  d_start: string;
  d_end: string | null;
  done: boolean;
  error: boolean;
  scalet: number;
  method: string;
}

export interface VscaleSimulator extends Simulator {
  /** A token that may only GET. */
  readonly readOnlyToken: string;
  /** Change a scalet behind the operator's back (drift, billing block). */
  mutate(ctid: string, change: Partial<Pick<Scalet, "status" | "rplan" | "locked">>): void;
  /** Make the next long operation on this scalet end with a failed task. */
  failNextTask(ctid: string): void;
  /** The registered SSH keys. */
  sshKeys(): { id: number; name: string; key: string }[];
}

const dateText = (d: Date): string => {
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${p(d.getDate())}.${p(d.getMonth() + 1)}.${String(d.getFullYear())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
};

export async function startVscaleSimulator(
  opts: { faults?: Partial<FaultKnobs>; profile?: SimProfile; token?: string } = {},
): Promise<VscaleSimulator> {
  const token = opts.token ?? "vscale-sim-token-5c22a088f3b37c93";
  const readOnlyToken = "vscale-sim-readonly-0e74803";
  const injector = new FaultInjector(opts.faults);
  const scalets = new Map<number, Scalet>();
  const tasks = new Map<string, Task>();
  const keys = new Map<number, { id: number; name: string; key: string }>();
  const tags = new Map<number, { id: number; name: string; scalets: number[] }>();
  const failTaskFor = new Set<number>();
  const counts = new Map<string, number>();
  let ctidSeq = 12600;
  let keySeq = 90;
  let tagSeq = 1;

  const fail = (res: ServerResponse, status: number, message: string, field?: string): void => {
    const headers = { "Vscale-Error-Message": message };
    sendJson(res, status, status === 400 ? { error: message, ...(field ? { field } : {}) } : {}, headers);
  };
  const view = (s: Scalet): Record<string, unknown> => {
    const { timer: _t, ...rest } = s;
    return rest;
  };

  /** Starts a long operation: locked now, `apply` after the transition, task recorded. */
  const operate = (s: Scalet, method: string, res: ServerResponse, apply: () => void, status = 200): void => {
    const now = new Date();
    const task: Task = {
      id: randomUUID(),
      location: s.location,
      d_insert: now.toISOString().replace("T", " ").slice(0, 19),
      d_start: now.toISOString().replace("T", " ").slice(0, 19),
      d_end: null,
      done: false,
      error: false,
      scalet: s.ctid,
      method,
    };
    tasks.set(task.id, task);
    s.locked = true;
    const failed = failTaskFor.delete(s.ctid);
    clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.timer = undefined;
      if (!failed) apply();
      s.locked = false;
      task.done = true;
      task.error = failed;
      task.d_end = new Date().toISOString().replace("T", " ").slice(0, 19);
      const forget = setTimeout(() => tasks.delete(task.id), 60_000);
      forget.unref();
    }, injector.knobs.transitionMs);
    sendJson(res, status, view(s), { "Vscale-Task-Id": task.id });
  };

  const rank = (rplan: string): number => VSCALE_RPLANS.findIndex((r) => r.id === rplan);

  async function handle(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    await Promise.resolve();
    const url = new URL(req.url ?? "/", "http://sim");
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "");
    const operation = `${method} ${path.replace(/\/\d+(?=\/|$)/g, "/:id")}`;
    countRequest(counts, operation);
    const given = req.headers["x-token"];
    const decision = injector.decide(typeof given === "string" ? given : "", operation);
    if (applyConnectionFault(decision, res)) return;
    if (decision.kind === "rateLimited") {
      res.setHeader("Retry-After", String(decision.retryAfterSeconds ?? 1));
      fail(res, 429, "Too many requests");
      return;
    }
    if (decision.kind === "error") {
      fail(res, 503, "Service temporarily unavailable");
      return;
    }
    if (given !== token && given !== readOnlyToken) {
      fail(res, 401, "Invalid token");
      return;
    }
    if (given === readOnlyToken && method !== "GET") {
      fail(res, 403, "Forbidden: read-only token may only use GET requests");
      return;
    }

    let json: Record<string, unknown> = {};
    if (body.trim() !== "") {
      try {
        const parsed = JSON.parse(body) as unknown;
        if (typeof parsed === "object" && parsed !== null) json = parsed as Record<string, unknown>;
      } catch {
        fail(res, 400, "Invalid JSON");
        return;
      }
    }
    const parts = path.split("/").filter(Boolean);
    if (parts[0] !== "v1") {
      fail(res, 404, "Not found");
      return;
    }
    const [, resource, a, b] = parts;

    if (resource === "rplans" && method === "GET" && a === undefined) {
      sendJson(
        res,
        200,
        VSCALE_RPLANS.map((r) => ({ ...r, locations: [...VSCALE_LOCATIONS], templates: [...VSCALE_IMAGES] })),
      );
      return;
    }
    if (resource === "images" && method === "GET" && a === undefined) {
      sendJson(
        res,
        200,
        VSCALE_IMAGES.map((id) => ({
          id,
          description: id.replace(/_/g, " "),
          active: true,
          size: 20480,
          locations: [...VSCALE_LOCATIONS],
          // The smallest plan cannot run CentOS, so a cross-field refusal exists to test.
          rplans: VSCALE_RPLANS.filter((r) => !(id.startsWith("centos") && r.id === "small")).map(
            (r) => r.id,
          ),
        })),
      );
      return;
    }
    if (resource === "locations" && method === "GET" && a === undefined) {
      sendJson(
        res,
        200,
        VSCALE_LOCATIONS.map((id) => ({
          id,
          description: id === "spb0" ? "Санкт-Петербург" : "Москва",
          active: true,
          private_networking: false,
          rplans: VSCALE_RPLANS.map((r) => r.id),
          templates: [...VSCALE_IMAGES],
        })),
      );
      return;
    }
    if (resource === "tasks" && method === "GET") {
      sendJson(res, 200, [...tasks.values()]);
      return;
    }
    if (resource === "sshkeys") {
      if (method === "GET" && a === undefined) {
        sendJson(res, 200, [...keys.values()]);
        return;
      }
      if (method === "POST" && a === undefined) {
        if (typeof json.key !== "string" || !/^(ssh-|ecdsa-)/.test(json.key)) {
          fail(res, 400, "Invalid key", "key");
          return;
        }
        if (typeof json.name !== "string" || json.name === "") {
          fail(res, 400, "Name is required", "name");
          return;
        }
        const k = { id: ++keySeq, name: json.name, key: json.key };
        keys.set(k.id, k);
        sendJson(res, 201, k);
        return;
      }
      if (method === "DELETE" && a !== undefined) {
        if (!keys.delete(Number(a))) {
          fail(res, 404, "Key not found");
          return;
        }
        sendJson(res, 204, {});
        return;
      }
    }
    if (resource !== "scalets") {
      fail(res, 404, "Not found");
      return;
    }

    if (a === "tags") {
      if (method === "GET" && b === undefined) {
        sendJson(res, 200, [...tags.values()]);
        return;
      }
      const list = (v: unknown): number[] | undefined =>
        Array.isArray(v) && v.every((x) => typeof x === "number" && scalets.has(x))
          ? (v as number[])
          : undefined;
      if (method === "POST" && b === undefined) {
        if (typeof json.name !== "string" || json.name === "") {
          fail(res, 400, "Name is required", "name");
          return;
        }
        if ([...tags.values()].some((t) => t.name === json.name)) {
          fail(res, 400, "Tag already exists", "name");
          return;
        }
        const members = list(json.scalets ?? []);
        if (!members) {
          fail(res, 400, "Unknown scalet", "scalets");
          return;
        }
        const t = { id: tagSeq++, name: json.name, scalets: [...new Set(members)] };
        tags.set(t.id, t);
        sendJson(res, 201, t);
        return;
      }
      const t = b === undefined ? undefined : tags.get(Number(b));
      if (!t) {
        fail(res, 404, "Tag not found");
        return;
      }
      if (method === "GET") {
        sendJson(res, 200, t);
        return;
      }
      if (method === "PUT") {
        const members = list(json.scalets ?? t.scalets);
        if (!members) {
          fail(res, 400, "Unknown scalet", "scalets");
          return;
        }
        if (typeof json.name === "string" && json.name !== "") t.name = json.name;
        t.scalets = [...new Set(members)];
        sendJson(res, 200, t);
        return;
      }
      if (method === "DELETE") {
        tags.delete(t.id);
        sendJson(res, 200, t);
        return;
      }
      fail(res, 405, "Method not allowed");
      return;
    }

    if (a === undefined) {
      if (method === "GET") {
        sendJson(res, 200, [...scalets.values()].map(view));
        return;
      }
      if (method !== "POST") {
        fail(res, 405, "Method not allowed");
        return;
      }
      for (const f of ["make_from", "rplan", "name", "location"])
        if (typeof json[f] !== "string" || json[f] === "") {
          fail(res, 400, `${f} is required`, f);
          return;
        }
      if (rank(json.rplan as string) < 0) {
        fail(res, 400, "Unknown rplan", "rplan");
        return;
      }
      if (!VSCALE_IMAGES.includes(json.make_from as never)) {
        fail(res, 400, "Unknown image", "make_from");
        return;
      }
      if (!VSCALE_LOCATIONS.includes(json.location as never)) {
        fail(res, 400, "Unknown location", "location");
        return;
      }
      const keyIds = Array.isArray(json.keys) ? json.keys : [];
      const scaletKeys: { id: number; name: string }[] = [];
      for (const id of keyIds) {
        const k = typeof id === "number" ? keys.get(id) : undefined;
        if (!k) {
          fail(res, 400, `Unknown key ${String(id)}`, "keys");
          return;
        }
        scaletKeys.push({ id: k.id, name: k.name });
      }
      const ctid = ++ctidSeq;
      const s: Scalet = {
        ctid,
        name: json.name as string,
        hostname: `cs${String(ctid)}.vscale.io`,
        status: "defined",
        active: false,
        locked: true,
        location: json.location as string,
        rplan: json.rplan as string,
        made_from: json.make_from as string,
        keys: scaletKeys,
        public_address: {},
        private_address: {},
        created: dateText(new Date()),
        deleted: null,
      };
      scalets.set(ctid, s);
      const start = json.do_start !== false;
      operate(
        s,
        "scalet_create",
        res,
        () => {
          s.status = start ? "started" : "stopped";
          s.active = true;
          s.public_address = {
            address: `95.213.${String((ctid >> 8) & 255)}.${String(ctid & 255)}`,
            netmask: "255.255.255.0",
            gateway: `95.213.${String((ctid >> 8) & 255)}.1`,
          };
        },
        201,
      );
      return;
    }

    const s = scalets.get(Number(a));
    if (!s) {
      fail(res, 404, "Scalet not found");
      return;
    }
    if (b === undefined && method === "GET") {
      sendJson(res, 200, view(s));
      return;
    }
    if (b === undefined && method === "DELETE") {
      if (s.deleted !== null) {
        fail(res, 404, "Scalet not found");
        return;
      }
      s.deleted = dateText(new Date());
      operate(s, "scalet_delete", res, () => {
        scalets.delete(s.ctid);
        for (const t of tags.values()) t.scalets = t.scalets.filter((c) => c !== s.ctid);
      });
      return;
    }
    if (s.deleted !== null) {
      fail(res, 404, "Scalet not found");
      return;
    }
    if (s.locked) {
      fail(res, 409, "Scalet is locked by another operation");
      return;
    }
    const needs = (states: string[]): boolean => {
      if (s.status === "billing") {
        fail(res, 402, "Insufficient funds: scalet is blocked for non-payment");
        return false;
      }
      if (states.includes(s.status)) return true;
      fail(res, 400, `Scalet is ${s.status}`, "status");
      return false;
    };
    if (method === "PATCH" && b === "start") {
      if (!needs(["stopped"])) return;
      operate(s, "scalet_start", res, () => (s.status = "started"));
      return;
    }
    if (method === "PATCH" && b === "stop") {
      if (!needs(["started"])) return;
      operate(s, "scalet_stop", res, () => (s.status = "stopped"));
      return;
    }
    if (method === "PATCH" && b === "restart") {
      if (!needs(["started"])) return;
      operate(s, "scalet_restart", res, () => (s.status = "started"));
      return;
    }
    if (method === "PATCH" && b === "rebuild") {
      if (!needs(["started", "stopped"])) return;
      operate(s, "scalet_rebuild", res, () => (s.status = "started"));
      return;
    }
    if (method === "POST" && b === "upgrade") {
      if (!needs(["started", "stopped"])) return;
      const to = typeof json.rplan === "string" ? json.rplan : "";
      if (rank(to) < 0) {
        fail(res, 400, "Unknown rplan", "rplan");
        return;
      }
      if (rank(to) <= rank(s.rplan)) {
        fail(res, 400, "Downgrade is not possible: choose a larger rplan", "rplan");
        return;
      }
      operate(s, "scalet_upgrade", res, () => (s.rplan = to));
      return;
    }
    fail(res, 405, "Method not allowed");
  }

  const server = await listen(handle, () => injector.knobs.latencyMs);
  return {
    provider: "vscale",
    profile: opts.profile ?? "default",
    url: `${server.url}/v1`,
    credentials: { token },
    readOnlyToken,
    faults: injector.knobs,
    requestCounts: counts,
    vms(): SimVm[] {
      return [...scalets.values()].map((s) => {
        const at = s.name.lastIndexOf(VSCALE_OWNER_SEPARATOR);
        return {
          id: String(s.ctid),
          ownerUID: at < 0 ? undefined : s.name.slice(at + VSCALE_OWNER_SEPARATOR.length),
          status: s.deleted === null ? s.status : "deleted",
          plan: s.rplan,
          image: s.made_from,
          region: s.location,
        };
      });
    },
    mutate(ctid, change) {
      const s = scalets.get(Number(ctid));
      if (s) Object.assign(s, change);
    },
    failNextTask(ctid) {
      failTaskFor.add(Number(ctid));
    },
    sshKeys: () => [...keys.values()],
    async close() {
      for (const s of scalets.values()) clearTimeout(s.timer);
      await server.close();
    },
  };
}
