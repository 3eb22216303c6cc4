import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { z } from "zod";
import type {
  Capability,
  DesiredMachine,
  Driver,
  DriverContext,
  DriverFactory,
  MachineRef,
  ObservedMachine,
  StateTable,
} from "../driver.ts";
import { InvalidRequestError, NotFoundError, TransientError } from "../errors.ts";
import { M2sApi, type M2sInstance } from "./api.ts";
import { findOwned, ownerMark, OWNER_TAG_PREFIX, vmName } from "./owner.ts";

export { OWNER_TAG_PREFIX, ownerMark, vmName };

export const M2S_DEFAULT_ENDPOINT = "https://api.m2s.cloud/v1";
/** The documented plans, smallest first. */
export const M2S_PLANS = ["starter", "business", "performance", "enterprise"];

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
 * The document names `provisioning` and `running` only; the rest are the usual words (the
 * simulator's strict profile picks from them, see test/sim/m2s).
 */
const STATES: StateTable = {
  provisioning: { phase: "Provisioning", transitional: true },
  running: { phase: "Running", transitional: false },
  starting: { phase: "Running", transitional: true },
  stopping: { phase: "Stopping", transitional: true },
  stopped: { phase: "Stopped", transitional: false },
  rebooting: { phase: "Running", transitional: true },
  rebuilding: { phase: "Provisioning", transitional: true },
  resizing: { phase: "Running", transitional: true },
  deleting: { phase: "Deleting", transitional: true },
  error: { phase: "Failed", transitional: false },
  failed: { phase: "Failed", transitional: false },
};

/**
 * A status the driver does not know is waited on (transitional: poll, never act on a guess),
 * but under a steady phase, so that a deletion still sends its DELETE: the reconciler holds a
 * deletion only behind Provisioning/Stopping/Deleting, and an unknown word could last forever.
 */
function mapStatus(status: string): StateTable[string] {
  return (
    STATES[status] ?? {
      phase: "Running",
      transitional: true,
      message: `m2s reports status "${status.slice(0, 40)}", which the driver does not know; waiting for a known one`,
    }
  );
}

export function observe(vm: M2sInstance): ObservedMachine {
  const mapped = mapStatus(vm.status);
  const owner = vm.tags?.find((t) => t.startsWith(OWNER_TAG_PREFIX))?.slice(OWNER_TAG_PREFIX.length);
  const usage = vm.metrics
    ? {
        ...(vm.metrics.cpu_usage === undefined ? {} : { cpuPercent: vm.metrics.cpu_usage }),
        ...(vm.metrics.memory_usage === undefined ? {} : { memoryPercent: vm.metrics.memory_usage }),
        ...(vm.metrics.disk_usage === undefined ? {} : { diskPercent: vm.metrics.disk_usage }),
      }
    : undefined;
  return {
    id: vm.id,
    providerStatus: vm.status,
    phase: mapped.phase,
    transitional: mapped.transitional,
    ...(mapped.message === undefined ? {} : { message: mapped.message }),
    ...(owner === undefined ? {} : { ownerUID: owner }),
    ...(vm.name === undefined ? {} : { name: vm.name }),
    ...(vm.region === undefined ? {} : { region: vm.region }),
    ...(vm.plan === undefined ? {} : { plan: vm.plan }),
    ...(vm.image === undefined ? {} : { image: vm.image }),
    // No tags field (a list item, a create answer) is "unknown", not "no tags": nothing to fix.
    ...(vm.tags === undefined ? {} : { tags: vm.tags.filter((t) => !t.startsWith(OWNER_TAG_PREFIX)) }),
    addresses: {
      public: [vm.ip_address, vm.ipv6_address].filter((a): a is string => typeof a === "string" && a !== ""),
      private: typeof vm.private_ip === "string" ? [vm.private_ip] : [],
    },
    ...(usage === undefined ? {} : { usage }),
  };
}

const CAPABILITIES: ReadonlySet<Capability> = new Set([
  "start",
  "stop",
  "hardStop",
  "reboot",
  "resize",
  "rebuild",
  "tags",
  "findByOwner",
]);

class M2sDriver implements Driver<M2sOptions> {
  readonly provider = "m2s" as const;
  readonly capabilities = CAPABILITIES;
  readonly #api: M2sApi;
  readonly #logger: Logger;

  constructor(api: M2sApi, logger: Logger) {
    this.#api = api;
    this.#logger = logger;
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

  async create(desired: DesiredMachine<M2sOptions>): Promise<{ id: string; observed: ObservedMachine }> {
    const o = desired.options;
    const name = vmName(desired);
    const vm = await this.#api.create({
      name,
      plan: desired.plan,
      region: desired.region,
      image: desired.image,
      ...(desired.sshKeys.length > 0 ? { ssh_keys: desired.sshKeys } : {}),
      ...(o.backupEnabled === undefined ? {} : { backup_enabled: o.backupEnabled }),
      ...(o.monitoringEnabled === undefined ? {} : { monitoring_enabled: o.monitoringEnabled }),
      ...(o.privateNetwork === undefined ? {} : { private_network: o.privateNetwork }),
      tags: [...desired.tags, OWNER_TAG_PREFIX + desired.ownerUID],
    });
    if (vm.name !== undefined && !vm.name.toLowerCase().includes(ownerMark(desired.ownerUID))) {
      // The lookup after a crash finds VMs by this mark; say so where an operator will look.
      this.#logger.warn(
        { provider: "m2s", id: vm.id, sent: name, kept: vm.name.slice(0, 100) },
        "m2s changed the VM name: a restart between create and status write would not find this VM by name",
      );
    }
    return { id: vm.id, observed: observe(vm) };
  }

  async get(ref: MachineRef): Promise<ObservedMachine | undefined> {
    const vm = await this.#api.get(ref.id);
    if (vm === undefined) {
      await this.#confirmApi(ref.id);
      return undefined;
    }
    return vm.status === "deleted" ? undefined : observe(vm);
  }

  /**
   * A 404 on one instance is taken as "gone" (the reconciler then recreates it, or lets the
   * finalizer go) only once the list answers like m2s: a wrong endpoint 404s everything.
   */
  async #confirmApi(id: string): Promise<void> {
    try {
      await this.#api.list(1, 1, undefined);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      throw new TransientError(
        `m2s: the endpoint answers 404 for instance ${id} and for the instance list too; check spec.provider.endpoint`,
        { provider: "m2s", operation: "get", cause: err },
      );
    }
  }

  async findByOwner(ownerUID: string, desired: DesiredMachine<M2sOptions>): Promise<ObservedMachine[]> {
    const owned = await findOwned(this.#api, ownerUID, desired);
    return owned.map(observe);
  }

  start(ref: MachineRef): Promise<void> {
    return this.#api.action(ref.id, "start");
  }
  stop(ref: MachineRef, opts: { hard: boolean }): Promise<void> {
    return this.#api.action(ref.id, opts.hard ? "poweroff" : "stop");
  }
  reboot(ref: MachineRef): Promise<void> {
    return this.#api.action(ref.id, "reboot");
  }
  resize(ref: MachineRef, plan: string): Promise<void> {
    // providerOptions.resizeReboot: false resizes without the reboot m2s does by default.
    const noReboot = M2sOptionsSchema.safeParse(ref.options ?? {}).data?.resizeReboot === false;
    return this.#api.patch(ref.id, { plan, ...(noReboot ? { reboot: false } : {}) }, "resize");
  }
  rebuild(ref: MachineRef, image: string): Promise<void> {
    return this.#api.action(ref.id, "rebuild", { image });
  }
  setTags(ref: MachineRef, tags: readonly string[], ownerUID: string): Promise<void> {
    return this.#api.patch(ref.id, { tags: [...tags, OWNER_TAG_PREFIX + ownerUID] }, "tags");
  }
  async delete(ref: MachineRef): Promise<void> {
    if (!(await this.#api.delete(ref.id))) await this.#confirmApi(ref.id);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export const factory: DriverFactory<M2sOptions> = {
  provider: "m2s",
  defaultEndpoint: M2S_DEFAULT_ENDPOINT,
  credentialKeys: { required: ["apiKey"], optional: [] },
  optionsSchema: M2sOptionsSchema,
  create(ctx: DriverContext): Driver<M2sOptions> {
    const apiKey = ctx.credentials.apiKey ?? "";
    const http = ctx.http.client({
      provider: "m2s",
      baseUrl: ctx.endpoint ?? M2S_DEFAULT_ENDPOINT,
      credentialKey: createHash("sha256").update(apiKey).digest("hex").slice(0, 16),
      secrets: [apiKey],
      defaultHeaders: { authorization: `Bearer ${apiKey}` },
    });
    return new M2sDriver(new M2sApi(http), ctx.logger);
  },
};
