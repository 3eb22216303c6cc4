import type { Logger } from "pino";
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
import { CredentialsError, ProviderError, TransientError } from "../errors.ts";
import { TtlCache } from "../ttl-cache.ts";
import { MosApi, refusedByProvider, type MosCalls } from "./api.ts";
import { Catalogue } from "./catalogue.ts";
import { leaseOptions, leaseView, MosOptionsSchema, renewLease, type MosOptions } from "./lease.ts";
import {
  CREATED_IMAGE,
  InstanceSchema,
  instanceId,
  markOf,
  META,
  metaValue,
  observe,
  ownerName,
  ownerNames,
  STATES,
} from "./observe.ts";
import { credentialDigest, defineProvider, providerClient } from "../definition.ts";
import { action, describe, find, metadata, metadataOf, putMetadata, type MetadataEntries } from "./reads.ts";

export { MosOptionsSchema, type MosOptions } from "./lease.ts";
export { markOf, observe, OWNER_PREFIX, ownerName } from "./observe.ts";

export const MOS_DEFAULT_ENDPOINT = "https://mosapi.meituan.com/mcs/v1";

/**
 * One MOS account. Nothing here is per object: what an object asks (options, the image it was
 * created from) comes with each call, and what a VM is (image, tags, renewal mark) lives in the
 * VM's own name and metadata at MOS. Every method sends its requests through `#calls(ctx)`, so
 * each carries the caller's signal.
 *
 * No `price`: the document gives no price for an instance type (DescribeInstanceTypes has none,
 * and no tariff Action exists); only the charges' effect on GetBalance shows.
 */
class MosDriver implements Driver<MosOptions> {
  readonly provider = "mos" as const;
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
    this.#catalogue = new Catalogue(deps.now);
    this.#balance = new TtlCache<number>(deps.now);
  }

  #calls(ctx: CallContext | undefined): MosCalls {
    return this.#api.scope(ctx);
  }

  readonly #redact = (text: string): string => this.#api.redact(text);

  /** Re-reads the balance after a charge into the provider balance metric. */
  async #refreshBalance(calls: MosCalls): Promise<void> {
    if (!this.#report || calls.signal?.aborted) return;
    this.#balance.clear();
    try {
      const balance = await this.#balance.get(300_000, async () => {
        const out = await calls.call("GetBalance", {}, z.looseObject({ balance: z.coerce.number() }), true);
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

  validate(desired: DesiredMachine<MosOptions>, ctx?: CallContext): Promise<void> {
    return this.#catalogue.validate(desired, this.#calls(ctx));
  }

  async create(desired: DesiredMachine<MosOptions>, ctx?: CallContext): Promise<CreateResult> {
    const calls = this.#calls(ctx);
    const { duration } = leaseOptions(desired.options, "CreateInstance");
    const key = desired.sshKeys[0];
    const keyName = key === undefined ? undefined : await this.#catalogue.keyName(key, calls);
    const out = await calls.call(
      "CreateInstance",
      {
        ImageId: desired.image,
        InstanceType: desired.plan,
        Duration: duration,
        InstanceName: ownerName(desired.ownerUID, desired.clusterID),
        KeyName: keyName,
      },
      z.looseObject({ Instance: InstanceSchema }),
      false,
    );
    // Every later call sends this id, so it is checked like one (a name there would address another VM).
    const id = instanceId(out.Instance.instanceId);
    // The id must reach the caller whatever happens next: a failed (or cancelled) metadata write
    // is reported and repaired by later reads (the image travels in providerData), never a throw.
    const failed = await putMetadata(calls, id, { image: desired.image, tags: desired.tags }, this.#redact);
    await this.#refreshBalance(calls);
    const observed = observe(out.Instance, undefined);
    if (failed === undefined || desired.image === undefined)
      return {
        id,
        observed: { ...observed, ...(desired.image === undefined ? {} : { image: desired.image }) },
      };
    this.#warn(`VM ${id} was created but its image and tags are not recorded yet`, id, failed);
    return { id, observed, providerData: { [CREATED_IMAGE]: desired.image } };
  }

  /**
   * DescribeInstances and GetInstanceMetadata, plus GetInstanceContractInfo when the options ask
   * for auto-renewal. Only observes: a lease due for renewal is `renewalDue`, and the reconciler
   * decides to `renew`.
   */
  async get(ref: MachineRef, ctx?: CallContext): Promise<ObservedMachine | undefined> {
    const id = instanceId(ref.id);
    const calls = this.#calls(ctx);
    const instance = await find(calls, id);
    if (!instance) return undefined;
    const meta = await metadataOf(calls, id);
    if (meta === undefined) return undefined;
    const observed = observe(instance, meta);
    const created = ref.providerData[CREATED_IMAGE];
    if (observed.image === undefined && created !== undefined) {
      await this.#record(calls, id, { image: created }, "the write after create failed");
      observed.image = created;
    }
    if (observed.transitional) return observed;
    const lease = await leaseView(calls, id, ref.options, meta, this.#now);
    if (lease === undefined) return observed;
    if ("renewalDue" in lease) return { ...observed, renewalDue: lease.renewalDue };
    return {
      ...observed,
      message: observed.message === undefined ? lease.message : `${observed.message}; ${lease.message}`,
    };
  }

  /** Writes missing metadata the observation depends on; throws (surfaced, retried) when it cannot. */
  async #record(calls: MosCalls, id: string, entries: MetadataEntries, why: string): Promise<void> {
    const failed = await putMetadata(calls, id, entries, this.#redact);
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

  /**
   * VMs named for the owner — this cluster's mark, or the mark without a cluster — with
   * DescribeInstances InstanceName.n (documented; rows re-checked by name). One without the
   * image in its metadata is a create cut short before its metadata write (a crash): the write
   * is completed from the spec that asked for it.
   */
  async findByOwner(
    ownerUID: string,
    desired: DesiredMachine<MosOptions>,
    ctx?: CallContext,
  ): Promise<ObservedMachine[]> {
    const calls = this.#calls(ctx);
    const names = ownerNames(ownerUID, desired.clusterID);
    const filter = Object.fromEntries(names.map((n, i) => [`InstanceName.${String(i + 1)}`, n]));
    const rows = (await describe(calls, filter)).filter((i) => names.includes(i.instanceName ?? ""));
    const found: ObservedMachine[] = [];
    for (const row of rows) {
      const meta = await metadataOf(calls, instanceId(row.instanceId));
      if (meta === undefined) continue;
      const m = observe(row, meta);
      if (m.image === undefined && desired.image !== undefined) {
        const tags = metaValue(meta, META.tags) === undefined ? desired.tags : undefined;
        await this.#record(
          calls,
          row.instanceId,
          { image: desired.image, tags },
          "its create was interrupted",
        );
        found.push({ ...m, image: desired.image, ...(tags === undefined ? {} : { tags: [...tags] }) });
      } else found.push(m);
    }
    return found;
  }

  /**
   * Every VM whose InstanceName is the operator's mark, from one paged DescribeInstances (at
   * most the page cap, no read per VM): the name alone tells the owner and the cluster.
   */
  async listOwned(ctx?: CallContext): Promise<OwnedMachine[]> {
    const owned: OwnedMachine[] = [];
    for (const row of await describe(this.#calls(ctx), {})) {
      const mark = markOf(row.instanceName);
      if (mark !== undefined) owned.push({ id: row.instanceId, ...mark });
    }
    return owned;
  }

  #action(calls: MosCalls, name: string, params: Record<string, string>, once = false): Promise<void> {
    return action(calls, name, params, this.#redact, once);
  }

  // async, so a refused id is a rejection like every other failure.
  async start(ref: MachineRef, ctx?: CallContext): Promise<void> {
    await this.#action(this.#calls(ctx), "StartInstance", { InstanceId: instanceId(ref.id) });
  }
  async stop(ref: MachineRef, ctx?: CallContext): Promise<void> {
    await this.#action(this.#calls(ctx), "StopInstance", { InstanceId: instanceId(ref.id) });
  }
  async hardStop(ref: MachineRef, ctx?: CallContext): Promise<void> {
    await this.#action(this.#calls(ctx), "StopInstance", { InstanceId: instanceId(ref.id), Force: "true" });
  }
  async reboot(ref: MachineRef, ctx?: CallContext): Promise<void> {
    await this.#action(this.#calls(ctx), "RebootInstance", { InstanceId: instanceId(ref.id) });
  }
  async resize(ref: MachineRef, plan: string, ctx?: CallContext): Promise<void> {
    const id = instanceId(ref.id);
    const { duration } = leaseOptions(ref.options, "ChangeInstanceType");
    const calls = this.#calls(ctx);
    await this.#action(
      calls,
      "ChangeInstanceType",
      { InstanceId: id, InstanceType: plan, Duration: duration },
      true,
    );
    await this.#refreshBalance(calls);
  }

  /** Renews the lease a read found due (see renewLease): billed, at most once per lease end. */
  async renew(ref: MachineRef, ctx?: CallContext): Promise<void> {
    const id = instanceId(ref.id);
    await renewLease(
      {
        redact: this.#redact,
        now: this.#now,
        warn: (what, vm, err) => {
          this.#warn(what, vm, err);
        },
        refreshBalance: (calls) => this.#refreshBalance(calls),
      },
      this.#calls(ctx),
      id,
      ref.options,
    );
  }

  /**
   * The image is recorded before the disk is wiped, so the record never lags a rebuild that
   * happened (a lagging record would ask for a second wipe). A rebuild MOS answered with an
   * error did not happen: the record goes back. Without any answer it may have: the record stays.
   */
  async rebuild(
    ref: MachineRef,
    image: string,
    _desired: DesiredMachine<MosOptions>,
    ctx?: CallContext,
  ): Promise<void> {
    const id = instanceId(ref.id);
    const calls = this.#calls(ctx);
    const before = metaValue(await metadata(calls, id), META.image) ?? "";
    const failed = await putMetadata(calls, id, { image }, this.#redact);
    if (failed) throw failed;
    try {
      await this.#action(calls, "RebuildInstanceRootImage", { InstanceId: id, ImageId: image }, true);
    } catch (err) {
      if (err instanceof ProviderError && err.httpStatus !== undefined) {
        const restored = await putMetadata(calls, id, { image: before }, this.#redact);
        if (restored)
          this.#warn(`VM ${id}'s image record could not be put back to "${before}"`, id, restored);
      }
      throw err;
    }
  }

  async setTags(
    ref: MachineRef,
    tags: readonly string[],
    _ownerUID: string,
    ctx?: CallContext,
  ): Promise<void> {
    const failed = await putMetadata(this.#calls(ctx), instanceId(ref.id), { tags }, this.#redact);
    if (failed) throw failed;
  }

  /**
   * MOS's answer for "no such instance" is not documented, so DescribeInstances decides whether
   * a refusal means "already gone" (resolve). A refusal of a VM that exists is not the spec's
   * fault: it is retried like an outage, so a deletion never waits for a resync.
   */
  async delete(ref: MachineRef, ctx?: CallContext): Promise<void> {
    const id = instanceId(ref.id);
    const calls = this.#calls(ctx);
    try {
      await this.#action(calls, "TerminateInstance", { InstanceId: id });
    } catch (err) {
      if (!refusedByProvider(err) || !(err instanceof ProviderError)) throw err;
      if ((await find(calls, id)) === undefined) return;
      throw new TransientError(`${err.message} (VM ${id} still exists; retrying)`, {
        provider: "mos",
        operation: "TerminateInstance",
        ...(err.httpStatus === undefined ? {} : { httpStatus: err.httpStatus }),
        cause: err,
      });
    }
  }
}

const SignatureMethodSchema = z.enum(["HmacSHA256", "HmacSHA1"]);

export const definition = defineProvider({
  provider: "mos",
  defaultEndpoint: MOS_DEFAULT_ENDPOINT,
  credentialKeys: { required: ["accessKeyId", "secretAccessKey"], optional: ["signatureMethod"] },
  fields: { region: "MOS zone", plan: "MOS InstanceType", image: "MOS ImageId" },
  docs: {
    actions: { stop: "stop (soft/forced)", tags: "tags (as metadata)" },
    notes: "SigV2 signed; 406 balance errors are terminal; optional auto-renewal; balance metric",
  },
  redact: { fields: ["Signature", "SecretAccessKey"], logPaths: ["*.Signature"] },
  optionsSchema: MosOptionsSchema,
  states: STATES,
  driver: MosDriver,
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
    const account = credentialDigest(accessKeyId);
    const http = providerClient(definition, ctx, {
      credentialKey: account,
      secrets: [secretAccessKey, accessKeyId],
    });
    const now = (): number => Date.now();
    return new MosDriver({
      api: new MosApi(
        http,
        { accessKeyId, secretAccessKey, signatureMethod: method.data },
        ctx.maxPages ?? DEFAULT_MAX_PAGES,
        () => new Date(now()),
      ),
      account,
      log: ctx.logger,
      now,
      report: ctx.reportBalance,
    });
  },
});
