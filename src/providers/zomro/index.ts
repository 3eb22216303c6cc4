import { z } from "zod";
import {
  DEFAULT_MAX_PAGES,
  type CallContext,
  type CreateResult,
  type DesiredMachine,
  type Driver,
  type DriverContext,
  type MachineRef,
  type ObservedMachine,
  type OwnedMachine,
} from "../driver.ts";
import { InvalidRequestError, NotFoundError, TransientError, UnsupportedError } from "../errors.ts";
import { scalar, UnknownFunctionError, ZomroApi, type Row } from "./api.ts";
import { Catalogues } from "./catalogue.ts";
import { DELETED, listRows, markFor, observe, ownedRow, STATES } from "./services.ts";
import { credentialDigest, defineProvider, providerClient } from "../definition.ts";

export const ZOMRO_DEFAULT_ENDPOINT = "https://api.zomro.com/";
export { observe, OWNER_PREFIX } from "./services.ts";

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

/** A BILLmanager service id: a positive integer. */
const ELID = /^[1-9][0-9]{0,18}$/;
/** How long "this BILLmanager has no such function" is believed before the function is tried again. */
const ABSENT_FUNCTION_MS = 600_000;
/**
 * The lists the orphan sweeper reads, in order: BILLmanager names its service list one way or
 * the other (README), and the second is read only where the first does not exist.
 */
const SWEPT_LISTS = ["instances", "vds"] as const;

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

/**
 * No `setTags` (BILLmanager services have no tags) and no `reboot` (none documented): the
 * reconciler reports those as Unsupported. No `hardStop`: service.stop is the only stop.
 */
class ZomroDriver implements Driver<ZomroOptions> {
  readonly provider = "zomro" as const;
  readonly #api: ZomroApi;
  readonly #catalogues: Catalogues;
  readonly #maxPages: number;
  /**
   * Functions this endpoint answered "no such function" for, until when: a fact about the
   * account's BILLmanager, not about any object (the key is the function's name).
   */
  readonly #absent = new Map<string, number>();

  constructor(api: ZomroApi, maxPages: number) {
    this.#api = api;
    this.#catalogues = new Catalogues(api);
    this.#maxPages = maxPages;
  }

  async validate(desired: DesiredMachine<ZomroOptions>, ctx?: CallContext): Promise<void> {
    const { functions: fn } = optionsOf(desired.options);
    const { plan, image, region } = desired;
    if (plan === undefined || image === undefined)
      throw refuse("zomro needs spec.plan (a pricelist id) and spec.image (an OS template)", "InvalidSpec");
    markOrRefuse(desired);
    const c = await this.#catalogues.get(fn, ctx?.signal);
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

  async create(desired: DesiredMachine<ZomroOptions>, ctx?: CallContext): Promise<CreateResult> {
    const { functions: fn, period } = optionsOf(desired.options);
    const mark = markOrRefuse(desired);
    const c = await this.#catalogues.get(fn, ctx?.signal);
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
      { operation: "order", submit: true, idempotent: false, signal: ctx?.signal },
    );
    const id = scalar(doc.id) ?? scalar(doc["service.id"]) ?? scalar(doc.elid);
    if (id === undefined || !ELID.test(id))
      throw new TransientError("zomro order: the answer names no service id", {
        provider: "zomro",
        operation: "order",
      });
    return { id };
  }

  async get(ref: MachineRef, ctx?: CallContext): Promise<ObservedMachine | undefined> {
    const id = elidOf(ref.id);
    const { functions: fn } = optionsOf(ref.options);
    const signal = ctx?.signal;
    const c = await this.#catalogues.orEmpty(fn, signal);
    if (!this.#lacks(fn.get)) {
      try {
        const row = await this.#api.call(
          fn.get,
          { elid: id },
          { operation: "get", idempotent: true, signal },
        );
        return observe(row, c, id);
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        if (!(err instanceof UnknownFunctionError)) throw err;
        // The document shows no single read: the list is the way to see one service.
        this.#remember(fn.get);
      }
    }
    const row = (await this.#rows(fn.list, ctx)).find((r) => scalar(r.id) === id);
    return row === undefined ? undefined : observe(row, c, id);
  }

  #lacks(func: string): boolean {
    const until = this.#absent.get(func);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#absent.delete(func);
    return false;
  }

  #remember(func: string): void {
    if (this.#absent.size >= 64) this.#absent.clear();
    this.#absent.set(func, Date.now() + ABSENT_FUNCTION_MS);
  }

  /**
   * Every VM carrying the owner UID, whichever cluster its mark names (or none, marked before
   * marks carried one): a UID is one object's, and the mark's cluster is reported beside it.
   */
  async findByOwner(
    ownerUID: string,
    desired: DesiredMachine<ZomroOptions>,
    ctx?: CallContext,
  ): Promise<ObservedMachine[]> {
    const { functions: fn } = optionsOf(desired.options);
    const c = await this.#catalogues.orEmpty(fn, ctx?.signal);
    return (await this.#rows(fn.list, ctx))
      .map((r) => observe(r, c))
      .filter((m): m is ObservedMachine => m?.ownerUID === ownerUID);
  }

  /**
   * The list shows each service's `domain`, which carries the whole mark, so one paged list
   * names every marked VM with its owner and cluster: no per-VM read.
   */
  async listOwned(ctx?: CallContext): Promise<OwnedMachine[]> {
    let rows: Row[] | undefined;
    for (const list of SWEPT_LISTS) {
      if (this.#lacks(list)) continue;
      try {
        rows = await this.#rows(list, ctx);
        break;
      } catch (err) {
        if (!(err instanceof UnknownFunctionError)) throw err;
        this.#remember(list);
      }
    }
    if (rows === undefined)
      throw new UnsupportedError(
        `zomro: this BILLmanager lists services neither as "${SWEPT_LISTS.join('" nor as "')}", so its VMs cannot be swept`,
        { provider: "zomro", operation: "list" },
      );
    return rows.flatMap((r) => {
      const owned = ownedRow(r);
      return owned && ELID.test(owned.id) ? [owned] : [];
    });
  }

  #rows(list: string, ctx: CallContext | undefined): Promise<Row[]> {
    return listRows(this.#api, list, { signal: ctx?.signal, maxPages: this.#maxPages });
  }

  async #act(
    func: string,
    ref: MachineRef,
    operation: string,
    opts: { submit: boolean; signal: AbortSignal | undefined },
  ): Promise<void> {
    await this.#api.call(func, { elid: elidOf(ref.id) }, { operation, idempotent: true, ...opts });
  }

  start(ref: MachineRef, ctx?: CallContext): Promise<void> {
    // The document's examples send no `sok`: start and stop act at once.
    const { functions: fn } = optionsOf(ref.options);
    return this.#act(fn.start, ref, "start", { submit: false, signal: ctx?.signal });
  }
  stop(ref: MachineRef, ctx?: CallContext): Promise<void> {
    const { functions: fn } = optionsOf(ref.options);
    return this.#act(fn.stop, ref, "stop", { submit: false, signal: ctx?.signal });
  }
  async resize(ref: MachineRef, plan: string, ctx?: CallContext): Promise<void> {
    const { functions: fn } = optionsOf(ref.options);
    // A tariff change may be billed: read first and never send one the service already has.
    const now = await this.get(ref, ctx);
    if (now === undefined)
      throw new NotFoundError(`zomro resize: service ${ref.id} does not exist`, {
        provider: "zomro",
        operation: "resize",
      });
    if (now.plan === plan) return;
    await this.#api.call(
      fn.resize,
      { elid: elidOf(ref.id), pricelist: plan },
      { operation: "resize", submit: true, idempotent: false, signal: ctx?.signal },
    );
  }

  async rebuild(
    ref: MachineRef,
    image: string,
    desired: DesiredMachine<ZomroOptions>,
    ctx?: CallContext,
  ): Promise<void> {
    const { functions: fn } = optionsOf(desired.options);
    const keys = desired.sshKeys.length > 0 ? { ssh_keys: desired.sshKeys.join("\n") } : {};
    await this.#api.call(
      fn.rebuild,
      { elid: elidOf(ref.id), select_rebuild: image, ...keys },
      { operation: "rebuild", submit: true, idempotent: false, signal: ctx?.signal },
    );
  }

  async delete(ref: MachineRef, ctx?: CallContext): Promise<void> {
    const { functions: fn } = optionsOf(ref.options);
    try {
      await this.#act(fn.delete, ref, "delete", { submit: true, signal: ctx?.signal });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      // BILLmanager spells "no such service" several ways; the list decides, so a refusal that
      // only looks like one never leaves a running VM behind a removed finalizer.
      const row = (await this.#rows(fn.list, ctx)).find((r) => scalar(r.id) === ref.id);
      if (row !== undefined && scalar(row.status) !== DELETED)
        throw new TransientError(
          `zomro delete: BILLmanager refused service ${ref.id} as unknown but still lists it (${err.message})`,
          { provider: "zomro", operation: "delete" },
        );
    }
  }
}

/** The ownership mark for this desire; refused before anything is sent when no host name can hold it. */
function markOrRefuse(desired: DesiredMachine<unknown>): string {
  const mark = markFor(desired.ownerUID, desired.clusterID);
  if (mark !== undefined) return mark;
  throw refuse(
    `the owner mark for UID ${JSON.stringify(desired.ownerUID.slice(0, 64))} and cluster ${JSON.stringify(desired.clusterID.slice(0, 64))} is not a valid host name (each part one DNS label: a-z, 0-9, "-", at most 63)`,
    "InvalidOwnerMark",
  );
}

function refuse(message: string, reason: string): InvalidRequestError {
  return new InvalidRequestError(`zomro: ${message}`, { provider: "zomro", reason });
}

export const definition = defineProvider({
  provider: "zomro",
  defaultEndpoint: ZOMRO_DEFAULT_ENDPOINT,
  credentialKeys: { required: ["username", "password"], optional: [] },
  fields: { region: "zomro datacenter", plan: "zomro tariff (pricelist)", image: "zomro OS template" },
  docs: {
    actions: { create: "order", resize: "change tariff" },
    notes: "BILLmanager sessions; function names configurable",
  },
  redact: { fields: ["authinfo"], logPaths: [] },
  optionsSchema: ZomroOptionsSchema,
  states: STATES,
  driver: ZomroDriver,
  create(ctx: DriverContext): Driver<ZomroOptions> {
    const username = ctx.credentials.username ?? "";
    const password = ctx.credentials.password ?? "";
    const credentialKey = credentialDigest(username, password);
    // The login is an account identifier: scrubbed like the password wherever text is.
    const client = (extra: readonly string[]) =>
      providerClient(definition, ctx, { credentialKey, secrets: [password, username, ...extra] });
    return new ZomroDriver(new ZomroApi(client, username, password), ctx.maxPages ?? DEFAULT_MAX_PAGES);
  },
});
