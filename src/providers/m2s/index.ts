import type { Logger } from "pino";
import { z } from "zod";
import {
  DEFAULT_MAX_PAGES,
  type CallContext,
  type DesiredMachine,
  type Driver,
  type DriverContext,
  type MachineRef,
  type ObservedMachine,
  type OwnedMachine,
  type Price,
} from "../driver.ts";
import { InvalidRequestError, NotFoundError, TransientError } from "../errors.ts";
import { M2sApi } from "./api.ts";
import type { ListBounds } from "./list.ts";
import { observe, STATES } from "./observe.ts";
import { credentialDigest, defineProvider, providerClient } from "../definition.ts";
import {
  CLUSTER_TAG_PREFIX,
  findOwned,
  listMarked,
  markTags,
  ownerMark,
  OWNER_TAG_PREFIX,
  readMark,
  vmName,
} from "./owner.ts";

export { CLUSTER_TAG_PREFIX, observe, OWNER_TAG_PREFIX, ownerMark, vmName };

export const M2S_DEFAULT_ENDPOINT = "https://api.m2s.cloud/v1";
/**
 * The document's plan table, smallest first, with its "Prix/mois" column as written there
 * (5 €, 15 €…): the only catalogue m2s has, with no API behind it, so nothing is fetched.
 */
const MONTHLY_EUROS: ReadonlyMap<string, string> = new Map([
  ["starter", "5"],
  ["business", "15"],
  ["performance", "30"],
  ["enterprise", "60"],
]);
export const M2S_PLANS = [...MONTHLY_EUROS.keys()];

export const M2sOptionsSchema = z
  .object({
    backupEnabled: z.boolean().optional().describe("backup_enabled"),
    monitoringEnabled: z.boolean().optional().describe("monitoring_enabled"),
    privateNetwork: z.string().min(1).optional().describe("private_network id, e.g. pn-abc123"),
    /** false: a resize never reboots; the new plan applies at the next reboot. */
    resizeReboot: z.boolean().default(true),
  })
  .strict();
export type M2sOptions = z.infer<typeof M2sOptionsSchema>;

/**
 * How long a list answered like m2s vouches for the endpoint: a 404 on one instance within it
 * is "gone" without listing again. One driver serves one (endpoint, credentials) pair, so only
 * a change at the provider's side could make that stale; without it every deletion made a
 * third call (delete, the read that 404s, the list) where two say the same.
 */
export const M2S_ENDPOINT_CONFIRMED_MS = 10 * 60_000;

class M2sDriver implements Driver<M2sOptions> {
  readonly provider = "m2s" as const;
  readonly #api: M2sApi;
  readonly #logger: Logger;
  readonly #maxPages: number;
  /** performance.now() of the last list that answered like m2s (see #confirmApi). */
  #endpointConfirmedAt: number | undefined;

  constructor(api: M2sApi, logger: Logger, maxPages: number) {
    this.#api = api;
    this.#logger = logger;
    this.#maxPages = maxPages;
  }

  #bounds(ctx: CallContext | undefined): ListBounds {
    return { maxPages: this.#maxPages, signal: ctx?.signal };
  }

  // async so a refusal is a rejected promise, like every other driver call.
  // eslint-disable-next-line @typescript-eslint/require-await
  async validate(desired: DesiredMachine<M2sOptions>): Promise<void> {
    for (const field of ["region", "plan", "image"] as const) {
      if (desired[field] === undefined)
        throw new InvalidRequestError(`m2s needs spec.${field}`, { provider: "m2s", reason: "InvalidSpec" });
    }
    if (desired.plan !== undefined && !M2S_PLANS.includes(desired.plan)) {
      throw new InvalidRequestError(
        `m2s has no plan "${desired.plan}"; choose one of ${M2S_PLANS.join(", ")}`,
        { provider: "m2s", reason: "UnknownPlan" },
      );
    }
  }

  async create(
    desired: DesiredMachine<M2sOptions>,
    ctx?: CallContext,
  ): Promise<{ id: string; observed: ObservedMachine }> {
    const o = desired.options;
    const name = vmName(desired);
    const vm = await this.#api.create(
      {
        name,
        plan: desired.plan,
        region: desired.region,
        image: desired.image,
        ...(desired.sshKeys.length > 0 ? { ssh_keys: desired.sshKeys } : {}),
        ...(o.backupEnabled === undefined ? {} : { backup_enabled: o.backupEnabled }),
        ...(o.monitoringEnabled === undefined ? {} : { monitoring_enabled: o.monitoringEnabled }),
        ...(o.privateNetwork === undefined ? {} : { private_network: o.privateNetwork }),
        tags: [...desired.tags, ...markTags(desired.ownerUID, desired.clusterID)],
      },
      ctx?.signal,
    );
    if (vm.name !== undefined && !vm.name.toLowerCase().includes(ownerMark(desired.ownerUID))) {
      // The lookup after a crash finds VMs by this mark; say so where an operator will look.
      this.#logger.warn(
        { provider: "m2s", id: vm.id, sent: name, kept: vm.name.slice(0, 100) },
        "m2s changed the VM name: a restart between create and status write would not find this VM by name",
      );
    }
    return { id: vm.id, observed: observe(vm) };
  }

  async get(ref: MachineRef, ctx?: CallContext): Promise<ObservedMachine | undefined> {
    const vm = await this.#api.get(ref.id, ctx?.signal);
    if (vm === undefined) {
      await this.#confirmApi(ref.id, ctx);
      return undefined;
    }
    return vm.status === "deleted" ? undefined : observe(vm);
  }

  /**
   * A 404 on one instance is taken as "gone" (the reconciler then recreates it, or lets the
   * finalizer go) only once the list answers like m2s: a wrong endpoint 404s everything.
   * A list answered in the last M2S_ENDPOINT_CONFIRMED_MS is enough.
   */
  async #confirmApi(id: string, ctx: CallContext | undefined): Promise<void> {
    const confirmedAt = this.#endpointConfirmedAt;
    if (confirmedAt !== undefined && performance.now() - confirmedAt < M2S_ENDPOINT_CONFIRMED_MS) return;
    try {
      await this.#api.list(1, 1, undefined, ctx?.signal);
      this.#endpointConfirmedAt = performance.now();
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      throw new TransientError(
        `m2s: the endpoint answers 404 for instance ${id} and for the instance list too; check spec.provider.endpoint`,
        { provider: "m2s", operation: "get", cause: err },
      );
    }
  }

  async findByOwner(
    ownerUID: string,
    desired: DesiredMachine<M2sOptions>,
    ctx?: CallContext,
  ): Promise<ObservedMachine[]> {
    const owned = await findOwned(this.#api, ownerUID, desired, this.#bounds(ctx));
    return owned.map(observe);
  }

  /** Possible from the document: see listMarked for what one list and the reads cover. */
  listOwned(ctx?: CallContext): Promise<OwnedMachine[]> {
    return listMarked(this.#api, this.#bounds(ctx));
  }

  /** From the document's plan table: a monthly price in euros, as written there. */
  price(desired: DesiredMachine<M2sOptions>): Promise<Price | undefined> {
    const amount = desired.plan === undefined ? undefined : MONTHLY_EUROS.get(desired.plan);
    return Promise.resolve(amount === undefined ? undefined : { amount, currency: "EUR", period: "month" });
  }

  start(ref: MachineRef, ctx?: CallContext): Promise<void> {
    return this.#api.action(ref.id, "start", undefined, ctx?.signal);
  }
  stop(ref: MachineRef, ctx?: CallContext): Promise<void> {
    return this.#api.action(ref.id, "stop", undefined, ctx?.signal);
  }
  hardStop(ref: MachineRef, ctx?: CallContext): Promise<void> {
    return this.#api.action(ref.id, "poweroff", undefined, ctx?.signal);
  }
  reboot(ref: MachineRef, ctx?: CallContext): Promise<void> {
    return this.#api.action(ref.id, "reboot", undefined, ctx?.signal);
  }
  resize(ref: MachineRef, plan: string, ctx?: CallContext): Promise<void> {
    // providerOptions.resizeReboot: false resizes without the reboot m2s does by default.
    const noReboot = M2sOptionsSchema.safeParse(ref.options ?? {}).data?.resizeReboot === false;
    return this.#api.patch(ref.id, { plan, ...(noReboot ? { reboot: false } : {}) }, "resize", ctx?.signal);
  }
  rebuild(
    ref: MachineRef,
    image: string,
    _desired: DesiredMachine<M2sOptions>,
    ctx?: CallContext,
  ): Promise<void> {
    return this.#api.action(ref.id, "rebuild", { image }, ctx?.signal);
  }

  /**
   * PATCH replaces the whole tag list, and the caller names the owner but not the cluster: the
   * cluster tag the VM carries is read and kept as it is (a VM marked before clusters had one
   * stays without), never dropped, since the orphan sweeper tells clusters apart by it.
   */
  async setTags(
    ref: MachineRef,
    tags: readonly string[],
    ownerUID: string,
    ctx?: CallContext,
  ): Promise<void> {
    const vm = await this.#api.get(ref.id, ctx?.signal);
    if (vm === undefined)
      throw new NotFoundError(`m2s tags: instance ${ref.id} is gone`, { provider: "m2s", operation: "tags" });
    const cluster = readMark(vm.tags ?? []).cluster ?? "";
    await this.#api.patch(ref.id, { tags: [...tags, ...markTags(ownerUID, cluster)] }, "tags", ctx?.signal);
  }
  async delete(ref: MachineRef, ctx?: CallContext): Promise<void> {
    if (!(await this.#api.delete(ref.id, ctx?.signal))) await this.#confirmApi(ref.id, ctx);
  }
}

export const definition = defineProvider({
  provider: "m2s",
  defaultEndpoint: M2S_DEFAULT_ENDPOINT,
  credentialKeys: { required: ["apiKey"], optional: [] },
  fields: { region: "m2s region", plan: "m2s plan", image: "m2s image" },
  docs: {
    actions: { stop: "stop (soft, hard after 2 min)", resize: "resize (`resizeReboot`)" },
    notes: "backup/monitoring/private network via providerOptions; plan prices in `status.price`",
  },
  redact: { fields: ["apikey", "api_key"], logPaths: [] },
  optionsSchema: M2sOptionsSchema,
  states: STATES,
  driver: M2sDriver,
  create(ctx: DriverContext): Driver<M2sOptions> {
    const apiKey = ctx.credentials.apiKey ?? "";
    const http = providerClient(definition, ctx, {
      credentialKey: credentialDigest(apiKey),
      secrets: [apiKey],
      defaultHeaders: { authorization: `Bearer ${apiKey}` },
    });
    return new M2sDriver(new M2sApi(http), ctx.logger, ctx.maxPages ?? DEFAULT_MAX_PAGES);
  },
});
