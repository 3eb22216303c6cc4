import type { IncomingMessage, ServerResponse } from "node:http";
import { randomBytes } from "node:crypto";
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
 * Zomro simulator: ISPsystem BILLmanager conventions, after ../shared/providers/zomro.txt and
 * the Zomro section of providers/README.md. Choices where the material is silent:
 * - one endpoint (`POST /`, form fields; a GET query works too, as in BILLmanager); `out=json`;
 *   every answer is HTTP 200 `{"doc": …}` with scalars as `{"$": "…"}`, errors as
 *   `doc.error` `{"$type", "$object", "msg": {"$"}}` — HTTP errors only for injected faults
 *   (503, 429 + Retry-After: a proxy in front);
 * - sessions: `func=auth&username&password` -> `doc.auth.$id`; they expire after
 *   `sessionIdleMs` without use (BILLmanager: an hour) and then answer `$type: "auth"`;
 *   `authinfo=user:pass` is accepted too;
 * - forms (`v2.instances.order.param`, `instances.fleio.rebuild`, `service.changepricelist`,
 *   `instances.delete`) only preview without `sok=ok`: the answer echoes the form fields and the
 *   choices (`slist`), nothing changes; `service.start`/`service.stop` act at once, as the
 *   document's examples (without `sok`) show;
 * - ordering answers `doc.id.$` = the new service id; services go 1 ordered -> 5 processing ->
 *   2 active; start/stop go through 5; delete sets 5 then 4 (deleted) and the service leaves
 *   the list; `instances.edit&elid` reads one service; a missing elid is `$type: "missing"`;
 * - the balance pays for orders (`$type: "balance"` when short); prices per month below;
 * - lists page with `p_cnt`/`p_num` (BILLmanager's paging) and answer `doc.p_elems`.
 */
export const ZOMRO_PRICELISTS = [
  { id: "3601", name: "Cloud VPS Start", price: 3 },
  { id: "3602", name: "Cloud VPS Basic", price: 6 },
  { id: "3603", name: "Cloud VPS Pro", price: 12 },
  { id: "3604", name: "Cloud VPS Ultra", price: 24 },
] as const;
export const ZOMRO_IMAGES = ["ubuntu-22.04", "debian-12", "almalinux-9"] as const;
export const ZOMRO_LOCATIONS = ["nl", "de", "pl"] as const;
/** Hostnames the driver gives: `cio-<uid>` (the UID is the ownership mark). */
const OWNER_PREFIX = "cio-";

interface Service {
  id: string;
  hostname: string;
  status: number;
  pricelist: string;
  ostempl: string;
  datacenter: string;
  ip: string;
  period: string;
  createdate: string;
  timer?: NodeJS.Timeout | undefined;
}

export interface ZomroSimulator extends Simulator {
  /** Forget every session (as after an hour idle): the next call with one answers `auth`. */
  expireSessions(): void;
  balance: number;
  mutate(id: string, change: Partial<Pick<Service, "status" | "pricelist">>): void;
  /** Calls that were previews (no `sok`), by func. */
  readonly previews: Map<string, number>;
}

const wrap = (v: string | number): { $: string } => ({ $: String(v) });

export async function startZomroSimulator(
  opts: {
    faults?: Partial<FaultKnobs>;
    profile?: SimProfile;
    username?: string;
    password?: string;
    sessionIdleMs?: number;
  } = {},
): Promise<ZomroSimulator> {
  const username = opts.username ?? "client@example.com";
  const password = opts.password ?? "zomro-sim-Passw0rd!";
  const idleMs = opts.sessionIdleMs ?? 3_600_000;
  const injector = new FaultInjector(opts.faults);
  const sessions = new Map<string, number>();
  const services = new Map<string, Service>();
  const counts = new Map<string, number>();
  const previews = new Map<string, number>();
  let seq = 5_116_800;
  const state = { balance: 1_000 };

  const doc = (res: ServerResponse, body: Record<string, unknown>): void => sendJson(res, 200, { doc: body });
  const fail = (res: ServerResponse, type: string, msg: string, object = ""): void =>
    doc(res, { error: { $type: type, $object: object, msg: wrap(msg) } });
  const row = (s: Service): Record<string, unknown> => ({
    id: wrap(s.id),
    name: wrap(s.hostname),
    hostname: wrap(s.hostname),
    status: wrap(s.status),
    pricelist: wrap(s.pricelist),
    ostempl: wrap(s.ostempl),
    datacenter: wrap(s.datacenter),
    ip: wrap(s.ip),
    period: wrap(s.period),
    createdate: wrap(s.createdate),
  });
  const later = (s: Service, status: number, then?: () => void): void => {
    clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.timer = undefined;
      s.status = status;
      then?.();
    }, injector.knobs.transitionMs);
  };
  const preview = (res: ServerResponse, func: string, fields: Record<string, string>): void => {
    previews.set(func, (previews.get(func) ?? 0) + 1);
    doc(res, {
      ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, wrap(v)])),
      slist: [
        { $name: "pricelist", val: ZOMRO_PRICELISTS.map((p) => ({ $key: p.id, $: p.name })) },
        { $name: "ostempl", val: ZOMRO_IMAGES.map((i) => ({ $key: i, $: i })) },
        { $name: "datacenter", val: ZOMRO_LOCATIONS.map((l) => ({ $key: l, $: l.toUpperCase() })) },
      ],
    });
  };

  async function handle(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    await Promise.resolve();
    const url = new URL(req.url ?? "/", "http://sim");
    const form = new URLSearchParams(req.method === "POST" ? body : url.search);
    const fields = Object.fromEntries(form.entries());
    const func = fields.func ?? "";
    countRequest(counts, func);
    const decision = injector.decide(fields.auth ?? fields.username ?? "", func);
    if (applyConnectionFault(decision, res)) return;
    if (decision.kind === "rateLimited") {
      res.writeHead(429, {
        "Retry-After": String(decision.retryAfterSeconds ?? 1),
        "content-type": "text/html",
      });
      res.end("<html><body>429 Too Many Requests</body></html>");
      return;
    }
    if (decision.kind === "error") {
      res.writeHead(503, { "content-type": "text/html" });
      res.end("<html><body>503 Service Unavailable</body></html>");
      return;
    }
    if (fields.out !== "json") {
      res.writeHead(200, { "content-type": "text/xml" });
      res.end('<?xml version="1.0" encoding="UTF-8"?><doc/>');
      return;
    }

    if (func === "auth") {
      if (fields.username !== username || fields.password !== password) {
        fail(res, "auth", "Неверное имя пользователя или пароль / Invalid username or password");
        return;
      }
      const id = randomBytes(12).toString("hex");
      sessions.set(id, Date.now());
      doc(res, { auth: { $id: id, $: id } });
      return;
    }
    // Every other function needs a live session or authinfo.
    const session = fields.auth;
    const seen = session === undefined ? undefined : sessions.get(session);
    const byAuthinfo = fields.authinfo === `${username}:${password}`;
    if (!byAuthinfo) {
      if (session === undefined || seen === undefined || Date.now() - seen > idleMs) {
        if (session !== undefined) sessions.delete(session);
        fail(res, "auth", "Сессия истекла / Session expired, log in again");
        return;
      }
      sessions.set(session, Date.now());
    }
    const sok = fields.sok === "ok";
    const service = (): Service | undefined => {
      const s = services.get(fields.elid ?? "");
      if (!s || s.status === 4)
        fail(res, "missing", `Услуга не найдена / Service ${fields.elid ?? ""} not found`, "elid");
      return s && s.status !== 4 ? s : undefined;
    };

    switch (func) {
      case "v2.instances.order.pricelist": {
        doc(res, {
          elem: ZOMRO_PRICELISTS.map((p) => ({
            id: wrap(p.id),
            pricelist: wrap(p.id),
            name: wrap(p.name),
            cost: wrap(p.price),
          })),
        });
        return;
      }
      case "instances":
      case "vds": {
        const all = [...services.values()].filter((s) => s.status !== 4);
        const cnt = Math.max(1, Number(fields.p_cnt ?? all.length) || all.length || 1);
        const num = Math.max(1, Number(fields.p_num ?? 1) || 1);
        const page = all.slice((num - 1) * cnt, num * cnt);
        // BILLmanager sends one row as an object and an empty list without `elem`.
        const elem = page.length === 0 ? {} : { elem: page.length === 1 ? row(page[0]!) : page.map(row) };
        doc(res, { ...elem, p_elems: wrap(all.length), p_num: wrap(num), p_cnt: wrap(cnt) });
        return;
      }
      case "instances.edit":
      case "vds.edit": {
        const s = service();
        if (!s) return;
        doc(res, { ...row(s), elid: wrap(s.id) });
        return;
      }
      case "v2.instances.order.param": {
        const order = {
          pricelist: fields.pricelist ?? "",
          ostempl: fields.ostempl ?? "",
          datacenter: fields.datacenter ?? "",
          hostname: fields.hostname ?? "",
          order_period: fields.order_period ?? "1",
        };
        if (!sok) {
          preview(res, func, order);
          return;
        }
        const plan = ZOMRO_PRICELISTS.find((p) => p.id === order.pricelist);
        if (!plan) {
          fail(res, "value", `Неверное значение поля / Invalid value of field "pricelist"`, "pricelist");
          return;
        }
        if (!ZOMRO_IMAGES.includes(order.ostempl as never)) {
          fail(res, "value", `Invalid value of field "ostempl"`, "ostempl");
          return;
        }
        if (order.datacenter !== "" && !ZOMRO_LOCATIONS.includes(order.datacenter as never)) {
          fail(res, "value", `Invalid value of field "datacenter"`, "datacenter");
          return;
        }
        if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9-]+)*$/i.test(order.hostname)) {
          fail(res, "value", `Invalid value of field "hostname"`, "hostname");
          return;
        }
        if (fields.licence_agreement !== "on") {
          fail(res, "value", "You must accept the licence agreement", "licence_agreement");
          return;
        }
        const cost = plan.price * Number(order.order_period || "1");
        if (state.balance < cost) {
          fail(
            res,
            "balance",
            `Недостаточно средств на счете / Not enough money on the account: ${String(cost)} EUR needed`,
          );
          return;
        }
        state.balance -= cost;
        const id = String(++seq);
        const s: Service = {
          id,
          hostname: order.hostname,
          status: 1,
          pricelist: plan.id,
          ostempl: order.ostempl,
          datacenter: order.datacenter || "nl",
          ip: "",
          period: order.order_period,
          createdate: new Date().toISOString().slice(0, 10),
        };
        services.set(id, s);
        later(s, 5, () => {
          s.ip = `185.${String((Number(id) >> 16) & 255)}.${String((Number(id) >> 8) & 255)}.${String(Number(id) & 255)}`;
          later(s, 2);
        });
        doc(res, { ok: {}, id: wrap(id) });
        return;
      }
      case "service.start":
      case "instances.start": {
        const s = service();
        if (!s) return;
        if (s.status !== 3) {
          fail(res, "status", `Service is not suspended (status ${String(s.status)})`);
          return;
        }
        s.status = 5;
        later(s, 2);
        doc(res, { ok: {} });
        return;
      }
      case "service.stop":
      case "instances.stop": {
        const s = service();
        if (!s) return;
        if (s.status !== 2) {
          fail(res, "status", `Service is not active (status ${String(s.status)})`);
          return;
        }
        s.status = 5;
        later(s, 3);
        doc(res, { ok: {} });
        return;
      }
      case "service.changepricelist": {
        const s = service();
        if (!s) return;
        if (!sok) {
          preview(res, func, { elid: s.id, pricelist: fields.pricelist ?? s.pricelist });
          return;
        }
        if (!ZOMRO_PRICELISTS.some((p) => p.id === fields.pricelist)) {
          fail(res, "value", `Invalid value of field "pricelist"`, "pricelist");
          return;
        }
        if (s.status !== 2 && s.status !== 3) {
          fail(res, "status", "Service is busy");
          return;
        }
        const after = s.status;
        s.status = 5;
        later(s, after, () => (s.pricelist = fields.pricelist ?? s.pricelist));
        doc(res, { ok: {} });
        return;
      }
      case "instances.fleio.rebuild": {
        const s = service();
        if (!s) return;
        if (!sok) {
          preview(res, func, { elid: s.id, select_rebuild: fields.select_rebuild ?? s.ostempl });
          return;
        }
        if (!ZOMRO_IMAGES.includes(fields.select_rebuild as never)) {
          fail(res, "value", `Invalid value of field "select_rebuild"`, "select_rebuild");
          return;
        }
        if (s.status !== 2 && s.status !== 3) {
          fail(res, "status", "Service is busy");
          return;
        }
        s.status = 5;
        later(s, 2, () => (s.ostempl = fields.select_rebuild ?? s.ostempl));
        doc(res, { ok: {} });
        return;
      }
      case "instances.delete":
      case "vds.delete": {
        const s = service();
        if (!s) return;
        if (!sok) {
          preview(res, func, { elid: s.id });
          return;
        }
        s.status = 5;
        later(s, 4);
        doc(res, { ok: {} });
        return;
      }
      default: {
        fail(res, "missing", `Функция не найдена / Function "${func}" not found`, "func");
        return;
      }
    }
  }

  const server = await listen(handle, () => injector.knobs.latencyMs);
  return {
    provider: "zomro",
    profile: opts.profile ?? "default",
    url: `${server.url}/`,
    credentials: { username, password },
    faults: injector.knobs,
    requestCounts: counts,
    previews,
    get balance() {
      return state.balance;
    },
    set balance(v: number) {
      state.balance = v;
    },
    vms(): SimVm[] {
      return [...services.values()]
        .filter((s) => s.status !== 4)
        .map((s) => ({
          id: s.id,
          ownerUID: s.hostname.startsWith(OWNER_PREFIX) ? s.hostname.slice(OWNER_PREFIX.length) : undefined,
          status: String(s.status),
          plan: s.pricelist,
          image: s.ostempl,
          region: s.datacenter,
        }));
    },
    expireSessions() {
      sessions.clear();
    },
    mutate(id, change) {
      const s = services.get(id);
      if (s) Object.assign(s, change);
    },
    async close() {
      for (const s of services.values()) clearTimeout(s.timer);
      await server.close();
    },
  };
}
