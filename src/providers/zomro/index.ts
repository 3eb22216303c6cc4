import { createHash } from "node:crypto";
import { z } from "zod";
import type {
  Capability,
  CreateResult,
  DesiredMachine,
  Driver,
  DriverContext,
  DriverFactory,
  MachineRef,
  ObservedMachine,
  StateTable,
} from "../driver.ts";
import { InvalidRequestError, NotFoundError, TransientError, UnsupportedError } from "../errors.ts";
import { TtlCache } from "../ttl-cache.ts";
import { elems, scalar, ZomroApi, type Row } from "./api.ts";

export const ZOMRO_DEFAULT_ENDPOINT = "https://api.zomro.com/";
/** Hostname of every VM the operator orders: `cio-<uid>`; the UID is the ownership mark. */
export const OWNER_PREFIX = "cio-";

/**
 * BILLmanager function names. The public material is unsure of the list/read/delete names
 * (`instances` vs `vds`), so every one is configurable; the defaults are Zomro's Cloud VPS ones.
 */
const FunctionsSchema = z
  .object({
    list: z.string().min(1).default("instances"),
    get: z.string().min(1).default("instances.edit"),
    order: z.string().min(1).default("v2.instances.order.param"),
    pricelist: z.string().min(1).default("v2.instances.order.pricelist"),
    start: z.string().min(1).default("service.start"),
    stop: z.string().min(1).default("service.stop"),
    resize: z.string().min(1).default("service.changepricelist"),
    rebuild: z.string().min(1).default("instances.fleio.rebuild"),
    delete: z.string().min(1).default("instances.delete"),
  })
  .strict();
type Functions = z.infer<typeof FunctionsSchema>;
const DEFAULT_FUNCTIONS: Functions = FunctionsSchema.parse({});

export const ZomroOptionsSchema = z
  .object({
    /** Months paid per order (`order_period`). */
    period: z.number().int().min(1).max(36).default(1),
    functions: FunctionsSchema.default(DEFAULT_FUNCTIONS),
  })
  .strict();
export type ZomroOptions = z.infer<typeof ZomroOptionsSchema>;

const CAPABILITIES: ReadonlySet<Capability> = new Set(["start", "stop", "resize", "rebuild", "findByOwner"]);

const STATES: StateTable = {
  "1": { phase: "Provisioning", transitional: true, message: "ordered" },
  "5": { phase: "Provisioning", transitional: true, message: "processing" },
  "2": { phase: "Running", transitional: false },
  "3": { phase: "Stopped", transitional: false, message: "suspended" },
};

export function observe(row: Row): ObservedMachine | undefined {
  const status = scalar(row.status) ?? "";
  if (status === "4") return undefined;
  const id = scalar(row.id) ?? scalar(row.elid) ?? "";
  const mapped = STATES[status] ?? { phase: "Provisioning" as const, transitional: true };
  const hostname = scalar(row.hostname) ?? scalar(row.name) ?? "";
  const ip = scalar(row.ip);
  const plan = scalar(row.pricelist);
  const image = scalar(row.ostempl);
  const region = scalar(row.datacenter);
  return {
    id,
    providerStatus: status,
    phase: mapped.phase,
    transitional: mapped.transitional,
    ...(mapped.message === undefined ? {} : { message: mapped.message }),
    ...(hostname.startsWith(OWNER_PREFIX) ? { ownerUID: hostname.slice(OWNER_PREFIX.length) } : {}),
    ...(hostname === "" ? {} : { name: hostname }),
    ...(plan === undefined ? {} : { plan }),
    ...(image === undefined ? {} : { image }),
    ...(region === undefined ? {} : { region }),
    addresses: { public: ip ? ip.split(/[\s,]+/).filter(Boolean) : [], private: [] },
  };
}

interface Catalogue {
  pricelists: { id: string; name: string }[];
  images: string[];
  datacenters: string[];
}

class ZomroDriver implements Driver<ZomroOptions> {
  readonly provider = "zomro" as const;
  readonly capabilities = CAPABILITIES;
  readonly #api: ZomroApi;
  readonly #catalogue = new TtlCache<Catalogue>();
  /** Function names of the last options seen (actions on a ref have no options of their own). */
  #fn: Functions = DEFAULT_FUNCTIONS;

  constructor(api: ZomroApi) {
    this.#api = api;
  }

  #remember(options: ZomroOptions): Functions {
    this.#fn = options.functions;
    return this.#fn;
  }

  async #catalogues(fn: Functions): Promise<Catalogue> {
    return this.#catalogue.get(600_000, async () => {
      const prices = await this.#api.call(fn.pricelist, {}, { operation: "pricelist", idempotent: true });
      // An order form without `sok` is only a preview: BILLmanager answers the choices.
      const form = await this.#api.call(fn.order, {}, { operation: "orderForm", idempotent: true });
      const lists = Array.isArray(form.slist) ? (form.slist as Row[]) : [];
      const choices = (name: string): string[] => {
        const l = lists.find((s) => s.$name === name);
        const vals = Array.isArray(l?.val) ? (l.val as Row[]) : [];
        return vals
          .map((v) => (typeof v.$key === "string" ? v.$key : scalar(v)))
          .filter((v): v is string => !!v);
      };
      return {
        pricelists: elems(prices).map((r) => ({
          id: scalar(r.pricelist) ?? scalar(r.id) ?? "",
          name: scalar(r.name) ?? "",
        })),
        images: choices("ostempl"),
        datacenters: choices("datacenter"),
      };
    });
  }

  async validate(desired: DesiredMachine<ZomroOptions>): Promise<void> {
    const fn = this.#remember(desired.options);
    const { plan, image, region } = desired;
    if (plan === undefined || image === undefined)
      throw refuse("zomro needs spec.plan (a pricelist id) and spec.image (an OS template)", "InvalidSpec");
    const c = await this.#catalogues(fn);
    if (!c.pricelists.some((p) => p.id === plan))
      throw refuse(
        `no pricelist "${plan}"; choose one of ${c.pricelists.map((p) => `${p.id} (${p.name})`).join(", ")}`,
        "UnknownPlan",
      );
    if (!c.images.includes(image))
      throw refuse(`no OS template "${image}"; choose one of ${c.images.join(", ")}`, "UnknownImage");
    if (region !== undefined && c.datacenters.length > 0 && !c.datacenters.includes(region))
      throw refuse(`no datacenter "${region}"; choose one of ${c.datacenters.join(", ")}`, "UnknownRegion");
  }

  async create(desired: DesiredMachine<ZomroOptions>): Promise<CreateResult> {
    const fn = this.#remember(desired.options);
    // An order bills the account: never repeated blindly (findByOwner finds a lost one).
    const doc = await this.#api.call(
      fn.order,
      {
        pricelist: desired.plan ?? "",
        ostempl: desired.image ?? "",
        ...(desired.region === undefined ? {} : { datacenter: desired.region }),
        hostname: `${OWNER_PREFIX}${desired.ownerUID}`,
        order_period: String(desired.options.period),
        licence_agreement: "on",
        ...(desired.sshKeys.length > 0 ? { instances_ssh_keys: desired.sshKeys.join("\n") } : {}),
      },
      { operation: "order", submit: true, idempotent: false },
    );
    const id = scalar(doc.id) ?? scalar(doc["service.id"]) ?? scalar(doc.elid);
    if (id === undefined)
      throw new TransientError("zomro order: the answer names no service id", {
        provider: "zomro",
        operation: "order",
      });
    return { id };
  }

  async get(ref: MachineRef): Promise<ObservedMachine | undefined> {
    try {
      const row = await this.#api.call(
        this.#fn.get,
        { elid: ref.id },
        { operation: "get", idempotent: true },
      );
      const m = observe(row);
      return m === undefined ? undefined : { ...m, id: m.id === "" ? ref.id : m.id };
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async findByOwner(ownerUID: string, desired: DesiredMachine<ZomroOptions>): Promise<ObservedMachine[]> {
    const fn = this.#remember(desired.options);
    const found: ObservedMachine[] = [];
    const pageSize = 500;
    for (let page = 1; ; page++) {
      const doc = await this.#api.call(
        fn.list,
        { p_cnt: String(pageSize), p_num: String(page) },
        { operation: "list", idempotent: true },
      );
      const rows = elems(doc);
      for (const r of rows) {
        const m = observe(r);
        if (m?.ownerUID === ownerUID) found.push(m);
      }
      const total = Number(scalar(doc.p_elems) ?? rows.length);
      if (rows.length < pageSize || page * pageSize >= total) break;
    }
    return found;
  }

  async #act(
    func: string,
    ref: MachineRef,
    fields: Record<string, string>,
    operation: string,
    submit: boolean,
    idempotent: boolean,
  ): Promise<void> {
    await this.#api.call(func, { elid: ref.id, ...fields }, { operation, submit, idempotent });
  }

  start(ref: MachineRef): Promise<void> {
    return this.#act(this.#fn.start, ref, {}, "start", true, true);
  }
  stop(ref: MachineRef): Promise<void> {
    return this.#act(this.#fn.stop, ref, {}, "stop", true, true);
  }
  reboot(): Promise<void> {
    return Promise.reject(new UnsupportedError("zomro: no documented reboot", { provider: "zomro" }));
  }
  resize(ref: MachineRef, plan: string): Promise<void> {
    return this.#act(this.#fn.resize, ref, { pricelist: plan }, "resize", true, true);
  }
  rebuild(ref: MachineRef, image: string, desired: DesiredMachine<ZomroOptions>): Promise<void> {
    const keys = desired.sshKeys.length > 0 ? { ssh_keys: desired.sshKeys.join("\n") } : {};
    return this.#act(this.#fn.rebuild, ref, { select_rebuild: image, ...keys }, "rebuild", true, false);
  }
  setTags(): Promise<void> {
    return Promise.reject(new UnsupportedError("zomro has no tags", { provider: "zomro" }));
  }

  async delete(ref: MachineRef): Promise<void> {
    try {
      await this.#act(this.#fn.delete, ref, {}, "delete", true, true);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function refuse(message: string, reason: string): InvalidRequestError {
  return new InvalidRequestError(`zomro: ${message}`, { provider: "zomro", reason });
}

export const factory: DriverFactory<ZomroOptions> = {
  provider: "zomro",
  defaultEndpoint: ZOMRO_DEFAULT_ENDPOINT,
  credentialKeys: { required: ["username", "password"], optional: [] },
  optionsSchema: ZomroOptionsSchema,
  create(ctx: DriverContext): Driver<ZomroOptions> {
    const username = ctx.credentials.username ?? "";
    const password = ctx.credentials.password ?? "";
    const http = ctx.http.client({
      provider: "zomro",
      baseUrl: ctx.endpoint ?? ZOMRO_DEFAULT_ENDPOINT,
      credentialKey: createHash("sha256").update(`${username}\u0000${password}`).digest("hex").slice(0, 16),
      secrets: [password],
    });
    return new ZomroDriver(new ZomroApi(http, username, password));
  },
};
