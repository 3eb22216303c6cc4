import { createHash } from "node:crypto";
import { z } from "zod";
import {
  mapState,
  type Capability,
  type CreateResult,
  type DesiredMachine,
  type Driver,
  type DriverContext,
  type DriverFactory,
  type MachineRef,
  type ObservedMachine,
  type StateTable,
} from "../driver.ts";
import { InvalidRequestError, NotFoundError, TransientError, UnsupportedError } from "../errors.ts";
import { elems, scalar, UnknownFunctionError, ZomroApi, type Row } from "./api.ts";
import { Catalogues, datacenterKey, tariffId, type Catalogue } from "./catalogue.ts";

export const ZOMRO_DEFAULT_ENDPOINT = "https://api.zomro.com/";
/** Hostname (or domain) of every VM the operator orders: `cio-<uid>`; the UID is the ownership mark. */
export const OWNER_PREFIX = "cio-";

const FunctionName = z
  .string()
  .regex(/^[A-Za-z0-9_.]{1,64}$/, "a BILLmanager function name (letters, digits, '_' and '.')");

/**
 * BILLmanager function names. The document shows only start and stop; the others come from
 * BILLmanager's conventions and Zomro's articles, so every one is configurable per object.
 */
const FunctionsSchema = z
  .object({
    list: FunctionName.default("instances"),
    get: FunctionName.default("instances.edit"),
    order: FunctionName.default("v2.instances.order.param"),
    pricelist: FunctionName.default("v2.instances.order.pricelist"),
    start: FunctionName.default("service.start"),
    stop: FunctionName.default("service.stop"),
    resize: FunctionName.default("service.changepricelist"),
    rebuild: FunctionName.default("instances.fleio.rebuild"),
    delete: FunctionName.default("instances.delete"),
  })
  .strict();

export const ZomroOptionsSchema = z
  .object({
    /** Months paid per order (`order_period`). */
    period: z.number().int().min(1).max(36).default(1),
    functions: FunctionsSchema.default(FunctionsSchema.parse({})),
  })
  .strict();
export type ZomroOptions = z.infer<typeof ZomroOptionsSchema>;

/** No "tags": BILLmanager services have none, and the reconciler reports that as Unsupported. */
const CAPABILITIES: ReadonlySet<Capability> = new Set(["start", "stop", "resize", "rebuild", "findByOwner"]);

const STATES: StateTable = {
  "1": { phase: "Provisioning", transitional: true, message: "ordered" },
  "5": { phase: "Provisioning", transitional: true, message: "processing" },
  "2": { phase: "Running", transitional: false },
  "3": { phase: "Stopped", transitional: false, message: "suspended" },
};
/** BILLmanager's "deleted": the service is gone although a list may still show it. */
const DELETED = "4";
/** A BILLmanager service id: a positive integer. */
const ELID = /^[1-9][0-9]{0,18}$/;
/** Lists are read in pages of this size where BILLmanager pages them; more pages than this is refused. */
const PAGE_SIZE = 500;
const MAX_PAGES = 100;
/** How long "this BILLmanager has no such function" is believed before the function is tried again. */
const ABSENT_FUNCTION_MS = 600_000;

/** A BILLmanager row (list item or `<list>.edit` form) as the operator sees it. */
export function observe(row: Row, c: Catalogue, fallbackId = ""): ObservedMachine | undefined {
  const status = scalar(row.status) ?? "";
  if (status === DELETED) return undefined;
  const id = scalar(row.id) || scalar(row.elid) || fallbackId;
  const mapped = mapState(STATES, status, "zomro");
  const names = [row.hostname, row.domain, row.name].map(scalar).filter((n): n is string => !!n);
  const owner = names.find((n) => n.startsWith(OWNER_PREFIX));
  const name = owner ?? names[0];
  const ip = scalar(row.ip);
  const plan = tariffId(c, scalar(row.pricelist));
  const image = scalar(row.ostempl);
  const region = datacenterKey(c, scalar(row.datacenter));
  return {
    id,
    providerStatus: status,
    phase: mapped.phase,
    transitional: mapped.transitional,
    ...(mapped.message === undefined ? {} : { message: mapped.message }),
    ...(mapped.unknownStatus ? { unknownStatus: true as const } : {}),
    ...(owner === undefined ? {} : { ownerUID: owner.slice(OWNER_PREFIX.length) }),
    ...(name === undefined ? {} : { name }),
    ...(plan === undefined ? {} : { plan }),
    ...(image === undefined || image === "" ? {} : { image }),
    ...(region === undefined || region === "" ? {} : { region }),
    addresses: { public: ip ? ip.split(/[\s,]+/).filter(Boolean) : [], private: [] },
  };
}

/** The options of the object a call is for: drivers are shared by every object on an account. */
function optionsOf(raw: unknown): ZomroOptions {
  const parsed = ZomroOptionsSchema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw refuse(
    `providerOptions${issue && issue.path.length > 0 ? `.${issue.path.join(".")}` : ""}: ${issue?.message ?? "invalid"}`,
    "InvalidProviderOptions",
  );
}

/** The id checked before it goes into a form: nothing is sent for an id BILLmanager cannot have issued. */
function elidOf(id: string): string {
  if (ELID.test(id)) return id;
  throw refuse(
    `${JSON.stringify(id.slice(0, 64))} is not a BILLmanager service id (digits only)`,
    "InvalidInstanceId",
  );
}

class ZomroDriver implements Driver<ZomroOptions> {
  readonly provider = "zomro" as const;
  readonly capabilities = CAPABILITIES;
  readonly #api: ZomroApi;
  readonly #catalogues: Catalogues;
  /**
   * Functions this endpoint answered "no such function" for, until when: a fact about the
   * account's BILLmanager, not about any object (the key is the function's name).
   */
  readonly #absent = new Map<string, number>();

  constructor(api: ZomroApi) {
    this.#api = api;
    this.#catalogues = new Catalogues(api);
  }

  async validate(desired: DesiredMachine<ZomroOptions>): Promise<void> {
    const { functions: fn } = optionsOf(desired.options);
    const { plan, image, region } = desired;
    if (plan === undefined || image === undefined)
      throw refuse("zomro needs spec.plan (a pricelist id) and spec.image (an OS template)", "InvalidSpec");
    const c = await this.#catalogues.get(fn);
    if (!c.tariffs.some((p) => p.id === plan))
      throw refuse(
        `no pricelist "${plan}"; choose one of ${c.tariffs.map((p) => `${p.id} (${p.name})`).join(", ")}`,
        "UnknownPlan",
      );
    if (!c.images.includes(image))
      throw refuse(`no OS template "${image}"; choose one of ${c.images.join(", ")}`, "UnknownImage");
    const keys = c.datacenters.map((d) => d.key);
    if (region !== undefined && keys.length > 0 && !keys.includes(region))
      throw refuse(`no datacenter "${region}"; choose one of ${keys.join(", ")}`, "UnknownRegion");
  }

  async create(desired: DesiredMachine<ZomroOptions>): Promise<CreateResult> {
    const { functions: fn, period } = optionsOf(desired.options);
    const c = await this.#catalogues.get(fn);
    // Without the mark a crash between the order and the status write would order twice.
    if (c.markFields.length === 0)
      throw new UnsupportedError(
        `zomro: the order form "${fn.order}" has no hostname or domain field to carry the owner mark, so the operator will not order (a lost answer could not be found again)`,
        { provider: "zomro", operation: "order" },
      );
    if (desired.sshKeys.length > 0 && !c.sshKeys)
      throw refuse(
        `the order form "${fn.order}" takes no SSH keys (instances_ssh_keys)`,
        "SshKeysUnsupported",
      );
    const mark = `${OWNER_PREFIX}${desired.ownerUID}`;
    // An order bills the account: never repeated blindly (findByOwner finds a lost one).
    const doc = await this.#api.call(
      fn.order,
      {
        pricelist: desired.plan ?? "",
        ostempl: desired.image ?? "",
        ...(desired.region === undefined ? {} : { datacenter: desired.region }),
        ...Object.fromEntries(c.markFields.map((f) => [f, mark])),
        order_period: String(period),
        licence_agreement: "on",
        ...(desired.sshKeys.length > 0 ? { instances_ssh_keys: desired.sshKeys.join("\n") } : {}),
      },
      { operation: "order", submit: true, idempotent: false },
    );
    const id = scalar(doc.id) ?? scalar(doc["service.id"]) ?? scalar(doc.elid);
    if (id === undefined || !ELID.test(id))
      throw new TransientError("zomro order: the answer names no service id", {
        provider: "zomro",
        operation: "order",
      });
    return { id };
  }

  async get(ref: MachineRef): Promise<ObservedMachine | undefined> {
    const id = elidOf(ref.id);
    const { functions: fn } = optionsOf(ref.options);
    const c = await this.#catalogues.orEmpty(fn);
    if (!this.#lacks(fn.get)) {
      try {
        const row = await this.#api.call(fn.get, { elid: id }, { operation: "get", idempotent: true });
        return observe(row, c, id);
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        if (!(err instanceof UnknownFunctionError)) throw err;
        // The document shows no single read: the list is the way to see one service.
        if (this.#absent.size >= 64) this.#absent.clear();
        this.#absent.set(fn.get, Date.now() + ABSENT_FUNCTION_MS);
      }
    }
    const row = (await this.#rows(fn.list)).find((r) => scalar(r.id) === id);
    return row === undefined ? undefined : observe(row, c, id);
  }

  #lacks(func: string): boolean {
    const until = this.#absent.get(func);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#absent.delete(func);
    return false;
  }

  async findByOwner(ownerUID: string, desired: DesiredMachine<ZomroOptions>): Promise<ObservedMachine[]> {
    const { functions: fn } = optionsOf(desired.options);
    const c = await this.#catalogues.orEmpty(fn);
    return (await this.#rows(fn.list))
      .map((r) => observe(r, c))
      .filter((m): m is ObservedMachine => m?.ownerUID === ownerUID);
  }

  /** Every service row, paging where BILLmanager pages (`p_elems`) and reading once where it does not. */
  async #rows(list: string): Promise<Row[]> {
    const rows = new Map<string, Row>();
    for (let page = 1; page <= MAX_PAGES; page++) {
      const doc = await this.#api.call(
        list,
        { p_cnt: String(PAGE_SIZE), p_num: String(page) },
        { operation: "list", idempotent: true },
      );
      const got = elems(doc);
      for (const r of got) rows.set(scalar(r.id) ?? `#${String(rows.size)}`, r);
      const total = Number(scalar(doc.p_elems));
      if (!Number.isFinite(total) || got.length === 0 || rows.size >= total) return [...rows.values()];
    }
    // Stopping early could miss a VM and order a second one.
    throw new TransientError(`zomro list: more than ${String(MAX_PAGES * PAGE_SIZE)} services`, {
      provider: "zomro",
      operation: "list",
    });
  }

  async #act(
    func: string,
    ref: MachineRef,
    fields: Record<string, string>,
    operation: string,
    submit: boolean,
  ) {
    await this.#api.call(func, { elid: elidOf(ref.id), ...fields }, { operation, submit, idempotent: true });
  }

  start(ref: MachineRef): Promise<void> {
    // The document's examples send no `sok`: start and stop act at once.
    return this.#act(optionsOf(ref.options).functions.start, ref, {}, "start", false);
  }
  stop(ref: MachineRef): Promise<void> {
    return this.#act(optionsOf(ref.options).functions.stop, ref, {}, "stop", false);
  }
  reboot(): Promise<void> {
    return Promise.reject(new UnsupportedError("zomro: no documented reboot", { provider: "zomro" }));
  }

  async resize(ref: MachineRef, plan: string): Promise<void> {
    const { functions: fn } = optionsOf(ref.options);
    // A tariff change may be billed: read first and never send one the service already has.
    const now = await this.get(ref);
    if (now === undefined)
      throw new NotFoundError(`zomro resize: service ${ref.id} does not exist`, {
        provider: "zomro",
        operation: "resize",
      });
    if (now.plan === plan) return;
    await this.#api.call(
      fn.resize,
      { elid: elidOf(ref.id), pricelist: plan },
      { operation: "resize", submit: true, idempotent: false },
    );
  }

  async rebuild(ref: MachineRef, image: string, desired: DesiredMachine<ZomroOptions>): Promise<void> {
    const { functions: fn } = optionsOf(desired.options);
    const keys = desired.sshKeys.length > 0 ? { ssh_keys: desired.sshKeys.join("\n") } : {};
    await this.#api.call(
      fn.rebuild,
      { elid: elidOf(ref.id), select_rebuild: image, ...keys },
      { operation: "rebuild", submit: true, idempotent: false },
    );
  }

  setTags(): Promise<void> {
    return Promise.reject(new UnsupportedError("zomro has no tags", { provider: "zomro" }));
  }

  async delete(ref: MachineRef): Promise<void> {
    const { functions: fn } = optionsOf(ref.options);
    try {
      await this.#act(fn.delete, ref, {}, "delete", true);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      // BILLmanager spells "no such service" several ways; the list decides, so a refusal that
      // only looks like one never leaves a running VM behind a removed finalizer.
      const row = (await this.#rows(fn.list)).find((r) => scalar(r.id) === ref.id);
      if (row !== undefined && scalar(row.status) !== DELETED)
        throw new TransientError(
          `zomro delete: BILLmanager refused service ${ref.id} as unknown but still lists it (${err.message})`,
          { provider: "zomro", operation: "delete" },
        );
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
    const credentialKey = createHash("sha256")
      .update(`${username}\u0000${password}`)
      .digest("hex")
      .slice(0, 16);
    // The login is an account identifier: scrubbed like the password wherever text is.
    const client = (extra: readonly string[]) =>
      ctx.http.client({
        provider: "zomro",
        baseUrl: ctx.endpoint ?? ZOMRO_DEFAULT_ENDPOINT,
        credentialKey,
        secrets: [password, username, ...extra],
      });
    return new ZomroDriver(new ZomroApi(client, username, password));
  },
};
