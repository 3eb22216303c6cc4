import { z } from "zod";
import type {
  CallContext,
  Capability,
  CreateResult,
  DesiredMachine,
  Driver,
  DriverContext,
  MachineRef,
  ObservedMachine,
  OwnedMachine,
} from "../driver.ts";
import { absentIfNotFound, NotFoundError, UnsupportedError } from "../errors.ts";
import { ScaletSchema, VscaleApi, type Scalet } from "./api.ts";
import { VscaleTags, VscaleTasks } from "./account.ts";
import { VscaleCatalogue } from "./catalogue.ts";
import { keyIds } from "./keys.ts";
import { markedName, markOf, observe, scaletId, STATES } from "./observe.ts";
import { credentialDigest, defineProvider, providerClient } from "../definition.ts";

export { markedName, markOf, observe, OWNER_SEPARATOR } from "./observe.ts";
export { TAGS_REPROBE_MS } from "./account.ts";

export const VSCALE_DEFAULT_ENDPOINT = "https://api.vscale.io/v1";

export const VscaleOptionsSchema = z
  .object({
    /** Catalogues (rplans, images, locations) are re-read after this many seconds. */
    catalogueTtlSeconds: z.number().int().min(10).max(86_400).default(600),
  })
  .strict();
export type VscaleOptions = z.infer<typeof VscaleOptionsSchema>;

/** What the API server issues as metadata.uid. */
const KUBERNETES_UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The catalogue TTL of the object asking, read per call (drivers are shared by accounts). */
const ttlOf = (options: unknown): number => {
  const parsed = VscaleOptionsSchema.safeParse(options ?? {});
  return parsed.success ? parsed.data.catalogueTtlSeconds : 600;
};

const NO_TAGS: ReadonlySet<Capability> = new Set(["tags"]);
const NOTHING: ReadonlySet<Capability> = new Set();

/**
 * One Vscale account. Holds only account-wide facts (catalogues, the task and tag lists,
 * whether the tags API exists), never per-object state: the pool shares it between objects.
 */
/**
 * No `rebuild`: `PATCH /scalets/:ctid/rebuild` (not in the document) reinstalls the scalet's own
 * image only, and the reconciler rebuilds only to install another image, so an image change is
 * reported as Unsupported. No `hardStop`: Vscale has one stop.
 */
class VscaleDriver implements Driver<VscaleOptions> {
  readonly provider = "vscale" as const;
  readonly #api: VscaleApi;
  readonly #password: string | undefined;
  readonly #catalogue: VscaleCatalogue;
  readonly #tags: VscaleTags;
  readonly #tasks: VscaleTasks;

  constructor(api: VscaleApi, password: string | undefined) {
    this.#api = api;
    this.#password = password;
    this.#catalogue = new VscaleCatalogue(api);
    this.#tags = new VscaleTags(api);
    this.#tasks = new VscaleTasks(api);
  }

  /**
   * "tags" while the account's API is known to lack the tags endpoint (see VscaleTags): the
   * reconciler then reports the spec's tags as Unsupported instead of sending them.
   */
  unavailable(): ReadonlySet<Capability> {
    return this.#tags.absent ? NO_TAGS : NOTHING;
  }

  #id(ref: MachineRef): string {
    return scaletId(ref.id, (t) => this.#api.redact(t));
  }

  validate(desired: DesiredMachine<VscaleOptions>, ctx?: CallContext): Promise<void> {
    return this.#catalogue.validate(desired, ctx?.signal);
  }

  async create(desired: DesiredMachine<VscaleOptions>, ctx?: CallContext): Promise<CreateResult> {
    const signal = ctx?.signal;
    const keys = await keyIds(this.#api, desired.sshKeys, desired.ownerUID, signal);
    const out = await this.#written(() =>
      this.#api.write(
        {
          method: "POST",
          path: "/scalets",
          json: {
            make_from: desired.image,
            rplan: desired.plan,
            do_start: desired.powerState === "Running",
            name: markedName(desired.namespace, desired.name, desired.ownerUID, desired.clusterID),
            keys,
            location: desired.region,
            ...(this.#password === undefined ? {} : { password: this.#password }),
          },
          operation: "create",
          signal,
        },
        ScaletSchema,
      ),
    );
    // Tags are set by the reconciler's tag sync once the scalet is unlocked: a failure here
    // would hide the new scalet's id from the caller.
    return { id: String(out.body.ctid), observed: observe(out.body, undefined, undefined) };
  }

  async #scalet(ctid: string, signal: AbortSignal | undefined): Promise<Scalet | undefined> {
    return this.#api.read(`/scalets/${encodeURIComponent(ctid)}`, ScaletSchema, "get", signal);
  }

  async get(ref: MachineRef, ctx?: CallContext): Promise<ObservedMachine | undefined> {
    const signal = ctx?.signal;
    const s = await this.#scalet(this.#id(ref), signal);
    if (!s) return undefined;
    // While locked an operation runs: neither tags nor tasks can tell anything new.
    if (s.locked === true) return observe(s, undefined, undefined);
    const [tags, task] = await Promise.all([
      this.#tags.of(s.ctid, signal),
      this.#tasks.latest(s.ctid, signal),
    ]);
    return observe(s, tags, task);
  }

  /**
   * Every scalet of the account, in one request: `GET /scalets` answers them all at once (no
   * paging in the document or the public clients), so there is no page loop to bound.
   */
  async #all(why: string, signal: AbortSignal | undefined): Promise<Scalet[]> {
    const all = await this.#api.read("/scalets", z.array(ScaletSchema), "list", signal);
    // Never "none": that would create a second scalet, or call the account free of orphans.
    if (all === undefined)
      throw new UnsupportedError(
        `this Vscale API answers 404 to GET /scalets, so the operator cannot ${why} (check spec.provider.endpoint)`,
        { provider: "vscale", operation: "list" },
      );
    return all;
  }

  /**
   * By UID alone, whatever cluster the mark names (or none, on scalets marked before marks
   * carried one): a UID is unique across clusters, and a cluster identity that changed (a new
   * --cluster-id) must not hide a scalet made before a restart and so create a second.
   */
  async findByOwner(
    ownerUID: string,
    _desired: DesiredMachine<VscaleOptions>,
    ctx?: CallContext,
  ): Promise<ObservedMachine[]> {
    const all = await this.#all(
      "look for a scalet it may have created before a restart; nothing is created",
      ctx?.signal,
    );
    return all
      .filter((s) => markOf(s.name)?.ownerUID === ownerUID)
      .map((s) => observe(s, undefined, undefined));
  }

  /**
   * The marked scalets of the account, from the one list read (the name holds the whole mark).
   * What the sweeper may delete, so only a mark whose UID is a Kubernetes UID (a UUID) counts:
   * a name someone typed with `--cio-` in it is not the operator's.
   */
  async listOwned(ctx?: CallContext): Promise<OwnedMachine[]> {
    const all = await this.#all("list its scalets to look for orphans", ctx?.signal);
    return all.flatMap((s) => {
      const mark = markOf(s.name);
      return mark === undefined || !KUBERNETES_UID.test(mark.ownerUID)
        ? []
        : [{ id: String(s.ctid), ownerUID: mark.ownerUID, cluster: mark.cluster }];
    });
  }

  /** Runs a write that may start a task, so the next task read is made after it. */
  async #written<T>(write: () => Promise<T>): Promise<T> {
    this.#tasks.invalidate();
    try {
      return await write();
    } finally {
      this.#tasks.invalidate();
    }
  }

  async #action(
    ctid: string,
    method: "PATCH" | "POST",
    action: string,
    json: object,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    await this.#written(() =>
      this.#api.write(
        {
          method,
          path: `/scalets/${encodeURIComponent(ctid)}/${action}`,
          json,
          operation: action,
          // Power actions converge on a state; an upgrade to a named rplan is absolute too.
          idempotent: true,
          signal,
        },
        ScaletSchema,
      ),
    );
  }

  async start(ref: MachineRef, ctx?: CallContext): Promise<void> {
    const ctid = this.#id(ref);
    await this.#action(ctid, "PATCH", "start", { id: ctid }, ctx?.signal);
  }
  async stop(ref: MachineRef, ctx?: CallContext): Promise<void> {
    const ctid = this.#id(ref);
    await this.#action(ctid, "PATCH", "stop", { id: ctid }, ctx?.signal);
  }
  async reboot(ref: MachineRef, ctx?: CallContext): Promise<void> {
    const ctid = this.#id(ref);
    await this.#action(ctid, "PATCH", "restart", { id: ctid }, ctx?.signal);
  }

  async #existing(ctid: string, operation: string, signal: AbortSignal | undefined): Promise<Scalet> {
    const s = await this.#scalet(ctid, signal);
    if (!s)
      throw new NotFoundError(`vscale ${operation}: scalet ${ctid} not found`, {
        provider: "vscale",
        operation,
      });
    return s;
  }

  async resize(ref: MachineRef, plan: string, ctx?: CallContext): Promise<void> {
    const signal = ctx?.signal;
    const ctid = this.#id(ref);
    const s = await this.#existing(ctid, "upgrade", signal);
    await this.#catalogue.refuseDowngrade(ctid, s.rplan, plan, ttlOf(ref.options), signal);
    if (s.rplan === plan) return;
    await this.#action(ctid, "POST", "upgrade", { rplan: plan }, signal);
  }

  async setTags(
    ref: MachineRef,
    wanted: readonly string[],
    _ownerUID: string,
    ctx?: CallContext,
  ): Promise<void> {
    await this.#tags.set(Number(this.#id(ref)), wanted, ctx?.signal);
  }

  async delete(ref: MachineRef, ctx?: CallContext): Promise<void> {
    const ctid = this.#id(ref);
    // Already gone (or being deleted) is what we want. The answer describes the scalet being
    // deleted; `get` tells when it is gone.
    await absentIfNotFound(
      this.#written(() =>
        this.#api.send({
          method: "DELETE",
          path: `/scalets/${encodeURIComponent(ctid)}`,
          operation: "delete",
          signal: ctx?.signal,
        }),
      ),
    );
  }
}

export const definition = defineProvider({
  provider: "vscale",
  defaultEndpoint: VSCALE_DEFAULT_ENDPOINT,
  credentialKeys: { required: ["token"], optional: ["password"] },
  fields: { region: "vscale location", plan: "vscale rplan", image: "vscale make_from" },
  docs: {
    actions: { resize: "upgrade", tags: "tags (where the account has `/scalets/tags`, else `Unsupported`)" },
    notes: "downgrades refused up front (`DowngradeRefused`); read-only tokens called out",
  },
  redact: { fields: [], logPaths: ["*.headers['x-token']"] },
  optionsSchema: VscaleOptionsSchema,
  states: STATES,
  driver: VscaleDriver,
  create(ctx: DriverContext): Driver<VscaleOptions> {
    const token = ctx.credentials.token ?? "";
    const password = ctx.credentials.password;
    const http = providerClient(definition, ctx, {
      credentialKey: credentialDigest(token),
      secrets: [token, ...(password === undefined ? [] : [password])],
      defaultHeaders: { "x-token": token },
    });
    return new VscaleDriver(new VscaleApi(http), password === "" ? undefined : password);
  },
});
