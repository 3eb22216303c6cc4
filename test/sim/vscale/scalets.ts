import type { ServerResponse } from "node:http";
import { sendJson } from "../common.ts";
import {
  dateText,
  VSCALE_DOCUMENTED_LOCATIONS,
  VSCALE_IMAGES,
  VSCALE_LOCATIONS,
  VSCALE_RPLANS,
  type Scalet,
  type VscaleAccount,
} from "./state.ts";

/** What one request asks, parsed once by the router. */
export interface Ask {
  method: string;
  /** Path segments after /v1. */
  parts: string[];
  json: Record<string, unknown>;
  res: ServerResponse;
}

const rank = (rplan: string): number => VSCALE_RPLANS.findIndex((r) => r.id === rplan);

/** The documented scalet API: create, read, delete, restart/stop/start, upgrade; `/tasks`. */
export function handleScalets(acc: VscaleAccount, ask: Ask): boolean {
  const { method, parts, res } = ask;
  const [resource, a, b, extra] = parts;
  if (resource === "tasks" && a === undefined) {
    if (method !== "GET") acc.fail(res, 405, "Method not allowed");
    else sendJson(res, 200, [...acc.tasks.values()]);
    return true;
  }
  if (resource !== "scalets" || extra !== undefined) return false;
  if (a === undefined) {
    if (method === "GET")
      sendJson(
        res,
        200,
        [...acc.scalets.values()].map((s) => acc.view(s)),
      );
    else if (method === "POST") create(acc, ask);
    else acc.fail(res, 405, "Method not allowed");
    return true;
  }
  if (!/^\d+$/.test(a)) return false;
  const s = acc.scalets.get(Number(a));
  if (b === undefined) {
    if (method !== "GET" && method !== "DELETE") {
      acc.fail(res, 405, "Method not allowed");
      return true;
    }
    if (!s || (method === "DELETE" && s.deleted !== null)) {
      acc.fail(res, 404, "Scalet not found");
      return true;
    }
    if (method === "GET") sendJson(res, 200, acc.view(s));
    else remove(acc, s, res);
    return true;
  }
  const actions: Record<string, string> = {
    start: "PATCH",
    stop: "PATCH",
    restart: "PATCH",
    upgrade: "POST",
  };
  if (actions[b] === undefined) return false;
  if (actions[b] !== method) {
    acc.fail(res, 405, "Method not allowed");
    return true;
  }
  if (!s || s.deleted !== null) {
    acc.fail(res, 404, "Scalet not found");
    return true;
  }
  act(acc, s, b, ask);
  return true;
}

function create(acc: VscaleAccount, { json, res }: Ask): void {
  for (const f of ["make_from", "rplan", "name", "location"])
    if (typeof json[f] !== "string" || json[f] === "") {
      acc.fail(res, 400, `${f} is required`, f);
      return;
    }
  if (rank(json.rplan as string) < 0) {
    acc.fail(res, 400, "Unknown rplan", "rplan");
    return;
  }
  if (!VSCALE_IMAGES.includes(json.make_from as never)) {
    acc.fail(res, 400, "Unknown image", "make_from");
    return;
  }
  const locations: readonly string[] = acc.strict ? VSCALE_DOCUMENTED_LOCATIONS : VSCALE_LOCATIONS;
  if (!locations.includes(json.location as string)) {
    acc.fail(res, 400, "Unknown location", "location");
    return;
  }
  if (!acc.strict && json.make_from === "centos_7.1_64_001_master" && json.rplan === "small") {
    acc.fail(res, 400, "Image is not available for this rplan", "make_from");
    return;
  }
  const keys: { name: string; id: number }[] = [];
  for (const id of Array.isArray(json.keys) ? json.keys : []) {
    const k = typeof id === "number" ? acc.keys.get(id) : undefined;
    if (!k) {
      acc.fail(res, 400, `Unknown key ${String(id)}`, "keys");
      return;
    }
    keys.push({ name: k.name, id: k.id });
  }
  const ctid = ++acc.ctidSeq;
  const s: Scalet = {
    name: json.name as string,
    deleted: null,
    rplan: json.rplan as string,
    made_from: json.make_from as string,
    status: "defined",
    hostname: `cs${String(ctid)}.vscale.io`,
    created: dateText(new Date()),
    ctid,
    private_address: {},
    location: json.location as string,
    keys,
    public_address: {},
    active: false,
    locked: true,
  };
  acc.scalets.set(ctid, s);
  const start = json.do_start !== false;
  acc.injector.knobs.onCreated(String(ctid));
  acc.operate(
    s,
    "scalet_create",
    res,
    () => {
      s.status = start ? "started" : "stopped";
      s.active = start;
      s.public_address = {
        address: `95.213.${String((ctid >> 8) & 255)}.${String(ctid & 255)}`,
        netmask: "255.255.255.0",
        gateway: `95.213.${String((ctid >> 8) & 255)}.1`,
      };
    },
    { status: 201 },
  );
}

function remove(acc: VscaleAccount, s: Scalet, res: ServerResponse): void {
  s.deleted = dateText(new Date());
  acc.operate(
    s,
    "scalet_delete",
    res,
    () => {
      acc.scalets.delete(s.ctid);
      for (const t of acc.tags.values()) t.scalets = t.scalets.filter((c) => c !== s.ctid);
    },
    // A failed deletion leaves the scalet as it was.
    { undo: () => (s.deleted = null) },
  );
}

/** Refuses an action the scalet's state does not allow; true when it may go ahead. */
export function allowed(
  acc: VscaleAccount,
  s: Scalet,
  res: ServerResponse,
  power: "on" | "off" | "any",
): boolean {
  if (s.locked || acc.running(s)) {
    acc.fail(res, 409, "Scalet is locked by another operation");
    return false;
  }
  if (!acc.strict && s.status === "billing") {
    acc.fail(res, 402, "Insufficient funds: scalet is blocked for non-payment");
    return false;
  }
  const ok = s.status !== "defined" && (power === "any" || (power === "on") === s.active);
  if (!ok) acc.fail(res, 400, `Scalet is ${s.status}`, "status");
  return ok;
}

function act(acc: VscaleAccount, s: Scalet, action: string, { json, res }: Ask): void {
  const power = (on: boolean, status: string) => () => {
    s.status = status;
    s.active = on;
  };
  switch (action) {
    case "start":
      if (allowed(acc, s, res, "off")) acc.operate(s, "scalet_start", res, power(true, "started"));
      return;
    case "stop":
      if (allowed(acc, s, res, "on")) acc.operate(s, "scalet_stop", res, power(false, "stopped"));
      return;
    case "restart":
      if (allowed(acc, s, res, "on")) acc.operate(s, "scalet_restart", res, power(true, "started"));
      return;
    default: {
      if (!allowed(acc, s, res, "any")) return;
      const to = typeof json.rplan === "string" ? json.rplan : "";
      if (rank(to) < 0) {
        acc.fail(res, 400, "Unknown rplan", "rplan");
        return;
      }
      if (rank(to) <= rank(s.rplan)) {
        acc.fail(res, 400, "Downgrade is not possible: choose a larger rplan", "rplan");
        return;
      }
      // The document's answer: status `updated`, not locked, still the old rplan.
      s.status = "updated";
      acc.operate(s, "scalet_upgrade", res, () => (s.rplan = to), { lock: false });
    }
  }
}
