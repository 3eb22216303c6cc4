import { createHash } from "node:crypto";
import type { Logger } from "pino";
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
} from "../driver.ts";
import { CredentialsError, ProviderError, TransientError, UnauthorizedError } from "../errors.ts";
import { TtlCache } from "../ttl-cache.ts";
import { sleep } from "../../util/clock.ts";
import { MosApi, refusedByProvider } from "./api.ts";
import { Catalogue, MAX_PAGES, PAGE } from "./catalogue.ts";
import { leaseOptions, MosOptionsSchema, renewIfDue, type MosOptions } from "./lease.ts";
import {
  CREATED_IMAGE,
  InstanceSetSchema,
  InstanceSchema,
  instanceId,
  META,
  metadataParams,
  MetadataSchema,
  metaValue,
  observe,
  OWNER_PREFIX,
  ReturnSchema,
  type Instance,
  type Metadata,
} from "./observe.ts";

export { MosOptionsSchema, type MosOptions } from "./lease.ts";
export { observe, OWNER_PREFIX } from "./observe.ts";

export const MOS_DEFAULT_ENDPOINT = "https://mosapi.meituan.com/mcs/v1";

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

/** Attempts of a metadata write the VM's record depends on (the HTTP layer retries 5xx inside each). */
const METADATA_ATTEMPTS = 3;

type MetadataEntries = Parameters<typeof metadataParams>[1];

/**
 * One MOS account. Nothing here is per object: what an object asks (options, the image it was
 * created from) comes with each call, and what a VM is (image, tags, renewal) lives in the VM's
 * own metadata at MOS.
 */
class MosDriver implements Driver<MosOptions> {
  readonly provider = "mos" as const;
  readonly capabilities = CAPABILITIES;
  readonly #api: MosApi;
  readonly #account: string;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #report: ((account: string, balance: number) => void) | undefined;
  readonly #catalogue: Catalogue;
  readonly #balance: TtlCache<number>;

  constructor(deps: {
    api: MosApi;
    account: string;
    log: Logger;
    now: () => number;
    report: ((account: string, balance: number) => void) | undefined;
  }) {
    this.#api = deps.api;
    this.#account = deps.account;
    this.#log = deps.log;
    this.#now = deps.now;
    this.#report = deps.report;
    this.#catalogue = new Catalogue(deps.api, deps.now);
    this.#balance = new TtlCache<number>(deps.now);
  }

  /** Reads the balance (at most every few minutes) into the provider balance metric. */
  async #refreshBalance(force = false): Promise<void> {
    if (!this.#report) return;
    if (force) this.#balance.clear();
    try {
      const balance = await this.#balance.get(300_000, async () => {
        const out = await this.#api.call(
          "GetBalance",
          {},
          z.looseObject({ balance: z.coerce.number() }),
          true,
        );
        return out.balance;
      });
      this.#report(this.#account, balance);
    } catch (err) {
      // The metric only: a failed read must not fail the create or resize that already billed.
      this.#warn("GetBalance failed; the balance metric is stale", undefined, err);
    }
  }

  #warn(what: string, id: string | undefined, err: unknown): void {
    const text = this.#api.redact(err instanceof Error ? err.message : String(err));
    this.#log.warn(
      { instanceId: id, code: err instanceof ProviderError ? err.code : undefined },
      `mos: ${what}: ${text}`,
    );
  }

  validate(desired: DesiredMachine<MosOptions>): Promise<void> {
    return this.#catalogue.validate(desired);
  }

  async create(desired: DesiredMachine<MosOptions>): Promise<CreateResult> {
    const { duration } = leaseOptions(desired.options, "CreateInstance");
    const key = desired.sshKeys[0];
    const keyName = key === undefined ? undefined : await this.#catalogue.keyName(key);
    const out = await this.#api.call(
      "CreateInstance",
      {
        ImageId: desired.image,
        InstanceType: desired.plan,
        Duration: duration,
        InstanceName: `${OWNER_PREFIX}${desired.ownerUID}`,
        KeyName: keyName,
      },
      z.looseObject({ Instance: InstanceSchema }),
      false,
    );
    // Every later call sends this id, so it is checked like one (a name there would address another VM).
    const id = instanceId(out.Instance.instanceId);
    // The id must reach the caller whatever happens next: a failed metadata write is reported
    // and repaired by later reads (the image travels in providerData), never a reason to throw.
    const failed = await this.#putMetadata(id, { image: desired.image, tags: desired.tags });
    await this.#refreshBalance(true);
    const observed = observe(out.Instance, undefined);
    if (failed === undefined || desired.image === undefined)
      return {
        id,
        observed: { ...observed, ...(desired.image === undefined ? {} : { image: desired.image }) },
      };
    this.#warn(`VM ${id} was created but its image and tags are not recorded yet`, id, failed);
    return { id, observed, providerData: { [CREATED_IMAGE]: desired.image } };
  }

  /** PutInstanceMetadata, retried a few times; the last error when it still failed. */
  async #putMetadata(id: string, entries: MetadataEntries): Promise<ProviderError | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#action("PutInstanceMetadata", metadataParams(id, entries));
        return undefined;
      } catch (err) {
        if (!(err instanceof ProviderError)) throw err;
        if (err instanceof UnauthorizedError || attempt >= METADATA_ATTEMPTS) return err;
        await sleep(200 * attempt);
      }
    }
  }

  async #metadata(id: string): Promise<Metadata> {
    const out = await this.#api.call("GetInstanceMetadata", { InstanceId: id }, MetadataSchema, true);
    return out.InstanceMetadata ?? {};
  }

  /** The metadata of a VM just listed, or undefined when it vanished in between (DescribeInstances decides). */
  async #metadataOf(id: string): Promise<Metadata | undefined> {
    try {
      return await this.#metadata(id);
    } catch (err) {
      if (refusedByProvider(err) && !(await this.#find(id))) return undefined;
      throw err;
    }
  }

  /** DescribeInstances, every page (bounded); terminated instances count as gone. */
  async #describe(params: Record<string, string>): Promise<Instance[]> {
    const all: Instance[] = [];
    for (let offset = 0; offset < PAGE * MAX_PAGES; offset += PAGE) {
      const out = await this.#api.call(
        "DescribeInstances",
        { ...params, Limit: String(PAGE), Offset: String(offset) },
        InstanceSetSchema,
        true,
      );
      const rows = out.InstanceSet?.Instance ?? [];
      all.push(...rows);
      if (rows.length < PAGE || all.length >= (out.InstanceSet?.Total ?? 0)) break;
    }
    return all.filter((i) => i.status !== "terminated");
  }

  /**
   * The instance with this id, or undefined when MOS does not list it. The row is matched by id
   * (a filter the API ignored must not hand us another VM); if MOS refuses the id filter itself,
   * the whole list decides.
   */
  async #find(id: string): Promise<Instance | undefined> {
    let rows: Instance[];
    try {
      rows = await this.#describe({ "InstanceId.1": id });
    } catch (err) {
      if (!refusedByProvider(err)) throw err;
      rows = await this.#describe({});
    }
    return rows.find((i) => i.instanceId === id);
  }

  async get(ref: MachineRef): Promise<ObservedMachine | undefined> {
    const id = instanceId(ref.id);
    const instance = await this.#find(id);
    if (!instance) return undefined;
    const metadata = await this.#metadataOf(id);
    if (metadata === undefined) return undefined;
    const observed = observe(instance, metadata);
    const created = ref.providerData[CREATED_IMAGE];
    if (observed.image === undefined && created !== undefined) {
      await this.#record(id, { image: created }, "the write after create failed");
      observed.image = created;
    }
    if (observed.transitional) return observed;
    const lease = await renewIfDue(this.#leaseDeps(), id, ref.options, metadata);
    if (lease === undefined) return observed;
    return { ...observed, message: observed.message === undefined ? lease : `${observed.message}; ${lease}` };
  }

  /** Writes missing metadata the observation depends on; throws (surfaced, retried) when it cannot. */
  async #record(id: string, entries: MetadataEntries, why: string): Promise<void> {
    const failed = await this.#putMetadata(id, entries);
    if (failed === undefined) return;
    throw new TransientError(
      `mos: VM ${id} has no image recorded in its metadata (${why}) and writing it failed: ${failed.message}`,
      {
        provider: "mos",
        operation: "PutInstanceMetadata",
        ...(failed.httpStatus === undefined ? {} : { httpStatus: failed.httpStatus }),
        cause: failed,
      },
    );
  }

  #leaseDeps() {
    return {
      api: this.#api,
      log: this.#log,
      now: this.#now,
      putMetadata: (id: string, entries: { renewedFrom: string }) => this.#putMetadata(id, entries),
      refreshBalance: () => this.#refreshBalance(true),
    };
  }

  /**
   * VMs named for the owner (DescribeInstances InstanceName.1, documented; rows re-checked by
   * name). One without the image in its metadata is a create cut short before its metadata write
   * (a crash): the write is completed from the spec that asked for it.
   */
  async findByOwner(ownerUID: string, desired: DesiredMachine<MosOptions>): Promise<ObservedMachine[]> {
    const name = `${OWNER_PREFIX}${ownerUID}`;
    const rows = (await this.#describe({ "InstanceName.1": name })).filter((i) => i.instanceName === name);
    const found: ObservedMachine[] = [];
    for (const row of rows) {
      const metadata = await this.#metadataOf(instanceId(row.instanceId));
      if (metadata === undefined) continue;
      const m = observe(row, metadata);
      if (m.image === undefined && desired.image !== undefined) {
        const tags = metaValue(metadata, META.tags) === undefined ? desired.tags : undefined;
        await this.#record(row.instanceId, { image: desired.image, tags }, "its create was interrupted");
        found.push({ ...m, image: desired.image, ...(tags === undefined ? {} : { tags: [...tags] }) });
      } else found.push(m);
    }
    return found;
  }

  /** An action answering `return: True`; `once`: never repeated blindly (billed, or wipes a disk). */
  async #action(action: string, params: Record<string, string>, once = false): Promise<void> {
    const out = await this.#api.call(action, params, ReturnSchema, !once);
    if (out.return !== "True")
      throw new TransientError(`mos ${action}: answered return=${this.#api.redact(out.return)}`, {
        provider: "mos",
        operation: action,
      });
  }

  // async, so a refused id is a rejection like every other failure.
  async start(ref: MachineRef): Promise<void> {
    await this.#action("StartInstance", { InstanceId: instanceId(ref.id) });
  }
  async stop(ref: MachineRef, opts: { hard: boolean }): Promise<void> {
    const id = instanceId(ref.id);
    await this.#action("StopInstance", { InstanceId: id, ...(opts.hard ? { Force: "true" } : {}) });
  }
  async reboot(ref: MachineRef): Promise<void> {
    await this.#action("RebootInstance", { InstanceId: instanceId(ref.id) });
  }
  async resize(ref: MachineRef, plan: string): Promise<void> {
    const id = instanceId(ref.id);
    const { duration } = leaseOptions(ref.options, "ChangeInstanceType");
    await this.#action(
      "ChangeInstanceType",
      { InstanceId: id, InstanceType: plan, Duration: duration },
      true,
    );
    await this.#refreshBalance(true);
  }

  /**
   * The image is recorded before the disk is wiped, so the record never lags a rebuild that
   * happened (a lagging record would ask for a second wipe). A rebuild MOS answered with an
   * error did not happen: the record goes back. Without any answer it may have: the record stays.
   */
  async rebuild(ref: MachineRef, image: string): Promise<void> {
    const id = instanceId(ref.id);
    const before = metaValue(await this.#metadata(id), META.image) ?? "";
    const failed = await this.#putMetadata(id, { image });
    if (failed) throw failed;
    try {
      await this.#action("RebuildInstanceRootImage", { InstanceId: id, ImageId: image }, true);
    } catch (err) {
      if (err instanceof ProviderError && err.httpStatus !== undefined) {
        const restored = await this.#putMetadata(id, { image: before });
        if (restored)
          this.#warn(`VM ${id}'s image record could not be put back to "${before}"`, id, restored);
      }
      throw err;
    }
  }

  async setTags(ref: MachineRef, tags: readonly string[]): Promise<void> {
    const failed = await this.#putMetadata(instanceId(ref.id), { tags });
    if (failed) throw failed;
  }

  /**
   * MOS's answer for "no such instance" is not documented, so DescribeInstances decides whether
   * a refusal means "already gone" (resolve). A refusal of a VM that exists is not the spec's
   * fault: it is retried like an outage, so a deletion never waits for a resync.
   */
  async delete(ref: MachineRef): Promise<void> {
    const id = instanceId(ref.id);
    try {
      await this.#action("TerminateInstance", { InstanceId: id });
    } catch (err) {
      if (!refusedByProvider(err) || !(err instanceof ProviderError)) throw err;
      if ((await this.#find(id)) === undefined) return;
      throw new TransientError(`${err.message} (VM ${id} still exists; retrying)`, {
        provider: "mos",
        operation: "TerminateInstance",
        ...(err.httpStatus === undefined ? {} : { httpStatus: err.httpStatus }),
        cause: err,
      });
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const SignatureMethodSchema = z.enum(["HmacSHA256", "HmacSHA1"]);

export const factory: DriverFactory<MosOptions> = {
  provider: "mos",
  defaultEndpoint: MOS_DEFAULT_ENDPOINT,
  credentialKeys: { required: ["accessKeyId", "secretAccessKey"], optional: ["signatureMethod"] },
  optionsSchema: MosOptionsSchema,
  create(ctx: DriverContext): Driver<MosOptions> {
    const accessKeyId = ctx.credentials.accessKeyId ?? "";
    const secretAccessKey = ctx.credentials.secretAccessKey ?? "";
    const method = SignatureMethodSchema.safeParse(ctx.credentials.signatureMethod ?? "HmacSHA256");
    if (!method.success)
      throw new CredentialsError(
        `Secret "${ctx.secretName ?? ""}" key "signatureMethod" must be HmacSHA256 or HmacSHA1`,
        { provider: "mos" },
      );
    // The access key id names the account: it is a credential key and a label, never a value shown.
    const account = createHash("sha256").update(accessKeyId).digest("hex").slice(0, 16);
    const http = ctx.http.client({
      provider: "mos",
      baseUrl: ctx.endpoint ?? MOS_DEFAULT_ENDPOINT,
      credentialKey: account,
      secrets: [secretAccessKey, accessKeyId],
    });
    const now = (): number => Date.now();
    return new MosDriver({
      api: new MosApi(
        http,
        { accessKeyId, secretAccessKey, signatureMethod: method.data },
        () => new Date(now()),
      ),
      account,
      log: ctx.logger,
      now,
      report: ctx.reportBalance,
    });
  },
};
