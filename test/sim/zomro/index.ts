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
import {
  editView,
  listView,
  markOf,
  previewView,
  rulesFor,
  wrap,
  ZOMRO_IMAGES,
  ZOMRO_PRICELISTS,
  type EndlessList,
  type Service,
} from "./views.ts";
import { checkOrder, ghostService, orderForm } from "./order.ts";

export { ZOMRO_IMAGES, ZOMRO_LOCATIONS, ZOMRO_PRICELISTS } from "./views.ts";

/**
 * Zomro simulator: ISPsystem BILLmanager, after ../shared/providers/zomro.txt (start and stop
 * only) and the Zomro section of providers/README.md. What each profile serves and why:
 *
 * strict (only what the material shows; the document leaves everything else open):
 * - one endpoint, `POST /` with form fields (a GET query works too); `out=json`, anything else
 *   gets an empty XML document; every answer is HTTP 200 `{"doc": …}`, scalars `{"$": "…"}`,
 *   lists in `doc.elem` (one row as an object, none without `elem`), success `doc.ok`, errors
 *   `doc.error` `{"$type", "$object", "msg": {"$"}}`; HTTP errors only from injected faults
 *   (503, 429 + Retry-After: a proxy in front);
 * - sessions: `func=auth&username&password` -> `doc.auth.$id`, expiring after `sessionIdleMs`
 *   idle (BILLmanager: an hour) and then `$type: auth`; `authinfo=user:pass` works too;
 * - the document's `service.start`/`service.stop` and `instances.start`/`instances.stop` with
 *   `elid`, acting at once without `sok` as its curl examples do: 3 -> 5 -> 2 ("Active"),
 *   2 -> 5 -> 3 ("Temporary suspended"); a service in another state: `$type: status`;
 * - BILLmanager's lists `instances` and `vds` and `<list>.delete&elid&sok=ok` (the README); a
 *   list row has only `id, domain, status, pricelist, datacenter, ip`, with the tariff's and the
 *   datacenter's *names* (lists show display text); no paging (`p_cnt`/`p_num` ignored, no
 *   `p_elems`); a deleted service stays listed with status 4;
 * - the order form `v2.instances.order.param` (BILLmanager 6's `v2.<itemtype>.order.param`):
 *   without `sok` it previews — every field with its value plus the choices of `pricelist`,
 *   `ostempl` and `datacenter` in `slist` — and changes nothing; with `sok=ok` (and
 *   `licence_agreement=on`) it bills the balance and answers `doc.id.$`; its fields are
 *   ISPsystem's `domain` (the ownership mark; a random one when left out), `order_period`,
 *   `ostempl`, `datacenter` and Zomro's `instances_ssh_keys`; services go 1 -> 5 -> 2;
 * - `service.changepricelist&elid&pricelist&sok=ok`: issue 17 reports a document-only API
 *   accepting it; 5 while it works, back to the former state with the new tariff;
 * - delete goes 5 -> 4; an unknown or deleted `elid` answers `notFound` — by default
 *   `$type: value, $object: elid` (BILLmanager's check of a field's value), because the
 *   document shows no error body and a driver must not count on one spelling;
 * - an unknown function: `$type: missing, $object: func`; a short balance: `$type: balance`;
 *   a bad form value: `$type: value` naming the field.
 *
 * default adds (what Zomro's articles and BILLmanager itself are known to do):
 * - `instances.edit`/`vds.edit&elid` reads one service (BILLmanager's `<list>.edit`): a form, so
 *   `pricelist`, `ostempl`, `datacenter` hold keys, not names;
 * - an unknown or deleted `elid` answers BILLmanager's usual `$type: missing, $object: elid`;
 * - `v2.instances.order.pricelist` (tariffs with prices) and `instances.fleio.rebuild` (`elid`,
 *   `select_rebuild`, `ssh_keys`, `sok=ok`; 5 -> 2 with the new image), from Zomro's articles;
 * - the order form's `hostname` field (Zomro's Cloud VPS form) besides `domain`;
 * - list rows with `name, hostname, ostempl, period, createdate`; paging with `p_cnt`/`p_num`
 *   answering `p_elems` (BILLmanager's paging); deleted services leave the list at once.
 *
 * Test knobs, off in both profiles: `notFound` (another not-found spelling),
 * `echoFieldsInErrors` (every error's `$object` carries the raw request body, as a careless
 * BILLmanager plug-in does: the driver must keep its secrets out of messages) and
 * `endlessList` (a list that never ends, see views.ts) and `absentFunctions` (functions this
 * BILLmanager does not have, as an installation without `instances` has only `vds`).
 *
 * The driver's ownership mark (`cio-<uid>`, `cio-<uid>.<cluster>`) is read back only for
 * tests (`vms()`, `service()`); BILLmanager itself gives the name no meaning.
 */

export interface ZomroSimulator extends Simulator {
  /** Forget every session (as after an hour idle): the next call with one answers `auth`. */
  expireSessions(): void;
  balance: number;
  mutate(id: string, change: Partial<Pick<Service, "status" | "pricelist">>): void;
  /** Calls that were previews (no `sok`), by func. */
  readonly previews: Map<string, number>;
  /** A service as the simulator holds it, with the cluster its mark names (tests only). */
  service(id: string): (Readonly<Service> & { cluster: string | undefined }) | undefined;
}

export interface ZomroSimulatorOptions {
  faults?: Partial<FaultKnobs>;
  profile?: SimProfile;
  username?: string;
  password?: string;
  sessionIdleMs?: number;
  /** How an unknown or deleted `elid` is refused (default: per profile, see above). */
  notFound?: { type: string; object?: string };
  echoFieldsInErrors?: boolean;
  endlessList?: EndlessList;
  absentFunctions?: readonly string[];
}

export async function startZomroSimulator(opts: ZomroSimulatorOptions = {}): Promise<ZomroSimulator> {
  const profile = opts.profile ?? "default";
  const rules = rulesFor(profile, opts.notFound);
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

  async function handle(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    await Promise.resolve();
    const url = new URL(req.url ?? "/", "http://sim");
    const fields = Object.fromEntries(new URLSearchParams(req.method === "POST" ? body : url.search));
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
    const doc = (answer: Record<string, unknown>): void => sendJson(res, 200, { doc: answer });
    const fail = (type: string, msg: string, object = ""): void =>
      doc({ error: { $type: type, $object: opts.echoFieldsInErrors ? body : object, msg: wrap(msg) } });
    const call: Call = { fields, func, sok: fields.sok === "ok", doc, fail };

    if (func === "auth") {
      if (fields.username !== username || fields.password !== password) {
        fail("auth", "Неверное имя пользователя или пароль / Invalid username or password");
        return;
      }
      const id = randomBytes(12).toString("hex");
      sessions.set(id, Date.now());
      doc({ auth: { $id: id, $: id } });
      return;
    }
    if (!authorised(fields)) {
      fail("auth", "Сессия истекла / Session expired, log in again");
      return;
    }
    if (!rules.functions.has(func) || opts.absentFunctions?.includes(func)) {
      fail("missing", `Функция не найдена / Function "${func}" not found`, "func");
      return;
    }
    dispatch(call);
  }

  function authorised(fields: Record<string, string>): boolean {
    if (fields.authinfo === `${username}:${password}`) return true;
    const session = fields.auth;
    const seen = session === undefined ? undefined : sessions.get(session);
    if (session === undefined || seen === undefined || Date.now() - seen > idleMs) {
      if (session !== undefined) sessions.delete(session);
      return false;
    }
    sessions.set(session, Date.now());
    return true;
  }

  interface Call {
    fields: Record<string, string>;
    func: string;
    sok: boolean;
    doc(answer: Record<string, unknown>): void;
    fail(type: string, msg: string, object?: string): void;
  }

  const later = (s: Service, status: number, then?: () => void): void => {
    clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.timer = undefined;
      s.status = status;
      then?.();
    }, injector.knobs.transitionMs);
  };
  const preview = (c: Call, fields: Record<string, string>): void => {
    previews.set(c.func, (previews.get(c.func) ?? 0) + 1);
    c.doc(previewView(fields));
  };
  /** The service `elid` names, or the profile's not-found answer. */
  const service = (c: Call): Service | undefined => {
    const s = services.get(c.fields.elid ?? "");
    if (s && s.status !== 4) return s;
    c.fail(
      rules.notFound.type,
      `Услуга не найдена / Service ${c.fields.elid ?? ""} not found`,
      rules.notFound.object ?? "",
    );
    return undefined;
  };

  function dispatch(c: Call): void {
    switch (c.func) {
      case "v2.instances.order.pricelist":
        c.doc({
          elem: ZOMRO_PRICELISTS.map((p) => ({
            id: wrap(p.id),
            pricelist: wrap(p.id),
            name: wrap(p.name),
            cost: wrap(p.price),
          })),
        });
        return;
      case "instances":
      case "vds":
        list(c);
        return;
      case "instances.edit":
      case "vds.edit": {
        const s = service(c);
        if (s) c.doc(editView(s));
        return;
      }
      case "v2.instances.order.param":
        order(c);
        return;
      case "service.start":
      case "instances.start":
      case "service.stop":
      case "instances.stop":
        power(c, c.func.endsWith(".start"));
        return;
      case "service.changepricelist":
        serviceForm(
          c,
          "pricelist",
          ZOMRO_PRICELISTS.map((p) => p.id),
          (s, v) => (s.pricelist = v),
        );
        return;
      case "instances.fleio.rebuild":
        serviceForm(c, "select_rebuild", ZOMRO_IMAGES, (s, v) => (s.ostempl = v), 2);
        return;
      case "instances.delete":
      case "vds.delete": {
        const s = service(c);
        if (!s) return;
        if (!c.sok) {
          preview(c, { elid: s.id });
          return;
        }
        s.status = 5;
        later(s, 4);
        c.doc({ ok: {} });
        return;
      }
    }
  }

  /** An unmarked service nobody ordered, listed by the endless-list knob only. */
  let ghosts = 0;
  const ghost = (): Service => ghostService(opts.endlessList === "fresh" ? ++ghosts : 0);

  function list(c: Call): void {
    const all = [...services.values()].filter((s) => rules.listsDeleted || s.status !== 4);
    c.doc(listView(all, rules, c.fields, { mode: opts.endlessList, ghost }));
  }

  function order(c: Call): void {
    const form = orderForm(c.fields, rules);
    if (!c.sok) {
      preview(c, form);
      return;
    }
    const checked = checkOrder(form, c.fields);
    if ("refusal" in checked) return c.fail(...checked.refusal);
    const { plan, datacenter } = checked;
    const period = form.order_period ?? "1";
    const cost = plan.price * Number(period || "1");
    if (state.balance < cost)
      return c.fail(
        "balance",
        `Недостаточно средств на счете / Not enough money on the account: ${String(cost)} EUR needed`,
      );
    state.balance -= cost;
    const id = String(++seq);
    const s: Service = {
      id,
      domain: form.domain || `vps${id}.zomro.example`,
      hostname: form.hostname ?? "",
      status: 1,
      pricelist: plan.id,
      ostempl: form.ostempl ?? "",
      datacenter,
      ip: "",
      period,
      createdate: new Date().toISOString().slice(0, 10),
    };
    services.set(id, s);
    later(s, 5, () => {
      const n = Number(id);
      s.ip = `185.${String((n >> 16) & 255)}.${String((n >> 8) & 255)}.${String(n & 255)}`;
      later(s, 2);
    });
    injector.knobs.onCreated(id);
    c.doc({ ok: {}, id: wrap(id) });
  }

  function power(c: Call, start: boolean): void {
    const s = service(c);
    if (!s) return;
    const from = start ? 3 : 2;
    if (s.status !== from) {
      c.fail("status", `Service is not ${start ? "suspended" : "active"} (status ${String(s.status)})`);
      return;
    }
    s.status = 5;
    later(s, start ? 2 : 3);
    c.doc({ ok: {} });
  }

  /**
   * A service form changing one field: previews without `sok`; otherwise the service is busy
   * (5) for a while, then takes the value and goes to `end` (default: the state it was in).
   */
  function serviceForm(
    c: Call,
    field: "pricelist" | "select_rebuild",
    valid: readonly string[],
    apply: (s: Service, value: string) => void,
    end?: number,
  ): void {
    const s = service(c);
    if (!s) return;
    const to = c.fields[field] ?? "";
    if (!c.sok) return preview(c, { elid: s.id, [field]: to });
    if (!valid.includes(to)) return c.fail("value", `Invalid value of field "${field}"`, field);
    if (s.status !== 2 && s.status !== 3) return c.fail("status", "Service is busy");
    const back = end ?? s.status;
    s.status = 5;
    later(s, back, () => apply(s, to));
    c.doc({ ok: {} });
  }

  const server = await listen(handle, injector.knobs);
  return {
    provider: "zomro",
    profile,
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
          ownerUID: markOf(s)?.ownerUID,
          status: String(s.status),
          plan: s.pricelist,
          image: s.ostempl,
          region: s.datacenter,
        }));
    },
    service(id) {
      const s = services.get(id);
      return s && { ...s, cluster: markOf(s)?.cluster };
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
