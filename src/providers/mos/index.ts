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
import { CredentialsError, InvalidRequestError, NotFoundError, TransientError } from "../errors.ts";
import { TtlCache } from "../ttl-cache.ts";
import { parseDuration } from "../../util/duration.ts";
import { MosApi } from "./api.ts";

export const MOS_DEFAULT_ENDPOINT = "https://mosapi.meituan.com/mcs/v1";
/** InstanceName of every VM the operator creates: `cio-<uid>` (DescribeInstances can filter by it). */
export const OWNER_PREFIX = "cio-";
/** Metadata keys the driver owns: the user tags (JSON list) and the image the disk came from. */
const TAGS_KEY = "cio-tags";
const IMAGE_KEY = "cio-image";

export const MosOptionsSchema = z
  .object({
    /** Lease bought on create and resize: a number and H (hours) or M (months). */
    duration: z
      .string()
      .regex(/^[1-9]\d*[HM]$/, 'a number followed by H or M, e.g. "72H" or "1M"')
      .default("1M"),
    /** Renew the lease (RenewInstance, `duration` again) when it ends within `renewBefore`. */
    autoRenew: z.boolean().default(false),
    renewBefore: z
      .string()
      .refine((v) => {
        try {
          return parseDuration(v) > 0;
        } catch {
          return false;
        }
      }, "a duration such as 72h or 7d")
      .default("72h"),
  })
  .strict();
export type MosOptions = z.infer<typeof MosOptionsSchema>;

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

const STATES: StateTable = {
  running: { phase: "Running", transitional: false },
  ready: { phase: "Stopped", transitional: false },
  suspend: {
    phase: "Stopped",
    transitional: false,
    message: "suspended by MOS for billing (the lease expired or the balance ran out): renew or top up",
  },
  error: { phase: "Failed", transitional: false },
  stopping: { phase: "Stopping", transitional: true },
  terminating: { phase: "Deleting", transitional: true },
  deleting: { phase: "Deleting", transitional: true },
};

const InstanceSchema = z.looseObject({
  instanceId: z.coerce.string(),
  instanceName: z.coerce.string().optional(),
  instanceType: z.coerce.string().optional(),
  status: z.coerce.string(),
  ipAddresses: z
    .union([z.string(), z.array(z.string())])
    .nullable()
    .optional(),
});
type Instance = z.infer<typeof InstanceSchema>;
const InstanceSetSchema = z.looseObject({
  InstanceSet: z
    .looseObject({
      Instance: z.array(InstanceSchema).optional(),
      Total: z.coerce.number().optional(),
    })
    .nullable()
    .optional(),
});
const ReturnSchema = z.looseObject({ return: z.coerce.string() });
const MetadataSchema = z.looseObject({
  InstanceMetadata: z.record(z.string(), z.unknown()).nullable().optional(),
});

const PRIVATE = /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/;

export function observe(i: Instance, metadata: Record<string, unknown> | undefined): ObservedMachine {
  // starting, rebooting, rebuilding, pending … : anything undocumented is waited on.
  const s = STATES[i.status] ?? { phase: "Provisioning" as const, transitional: true };
  const phase = i.status === "starting" || i.status === "rebooting" ? "Running" : s.phase;
  const ips = (Array.isArray(i.ipAddresses) ? i.ipAddresses : (i.ipAddresses ?? "").split(/[\s,]+/)).filter(
    Boolean,
  );
  const name = i.instanceName ?? "";
  let tags: string[] | undefined;
  if (metadata) {
    try {
      const raw = metadata[TAGS_KEY];
      const parsed: unknown = typeof raw === "string" && raw !== "" ? JSON.parse(raw) : [];
      tags = Array.isArray(parsed) ? parsed.map(String) : [];
    } catch {
      tags = [];
    }
  }
  const image = metadata?.[IMAGE_KEY];
  return {
    id: i.instanceId,
    providerStatus: i.status,
    phase,
    transitional: s.transitional,
    ...(s.message === undefined ? {} : { message: s.message }),
    ...(name.startsWith(OWNER_PREFIX) ? { ownerUID: name.slice(OWNER_PREFIX.length) } : {}),
    ...(name === "" ? {} : { name }),
    ...(i.instanceType === undefined ? {} : { plan: i.instanceType }),
    ...(typeof image === "string" && image !== "" ? { image } : {}),
    ...(tags === undefined ? {} : { tags }),
    addresses: { public: ips.filter((a) => !PRIVATE.test(a)), private: ips.filter((a) => PRIVATE.test(a)) },
  };
}

interface Catalogue {
  types: string[];
  templates: { id: string; name: string }[];
}

class MosDriver implements Driver<MosOptions> {
  readonly provider = "mos" as const;
  readonly capabilities = CAPABILITIES;
  readonly #api: MosApi;
  readonly #account: string;
  readonly #report: ((account: string, balance: number) => void) | undefined;
  readonly #catalogue = new TtlCache<Catalogue>();
  readonly #balance = new TtlCache<number>();
  /** The last full observation per VM, so polls during a transition can be status-only. */
  readonly #lastSeen = new Map<string, ObservedMachine>();
  /** When each VM's lease was last checked for auto-renewal. */
  readonly #renewChecked = new Map<string, number>();

  constructor(
    api: MosApi,
    account: string,
    report: ((account: string, balance: number) => void) | undefined,
  ) {
    this.#api = api;
    this.#account = account;
    this.#report = report;
  }

  async #catalogues(): Promise<Catalogue> {
    return this.#catalogue.get(600_000, async () => {
      const types: string[] = [];
      for (let offset = 0; ; offset += 100) {
        const page = await this.#api.call(
          "DescribeInstanceTypes",
          { Limit: "100", Offset: String(offset) },
          z.looseObject({
            InstanceTypeSet: z
              .looseObject({
                InstanceType: z.array(z.looseObject({ instanceType: z.coerce.string() })).optional(),
                Total: z.coerce.number().optional(),
              })
              .nullable()
              .optional(),
          }),
          true,
        );
        const rows = page.InstanceTypeSet?.InstanceType ?? [];
        types.push(...rows.map((r) => r.instanceType));
        if (rows.length < 100 || types.length >= (page.InstanceTypeSet?.Total ?? 0)) break;
      }
      const templates = await this.#api.call(
        "DescribeTemplates",
        {},
        z.looseObject({
          TemplateSet: z
            .looseObject({
              Template: z
                .array(
                  z.looseObject({
                    templateId: z.coerce.string(),
                    templateName: z.coerce.string().optional(),
                    status: z.coerce.string().optional(),
                  }),
                )
                .optional(),
            })
            .nullable()
            .optional(),
        }),
        true,
      );
      return {
        types,
        templates: (templates.TemplateSet?.Template ?? [])
          .filter((t) => t.status === undefined || t.status === "active")
          .map((t) => ({ id: t.templateId, name: t.templateName ?? "" })),
      };
    });
  }

  /** Reads the balance (at most every few minutes) into the provider balance metric. */
  async #refreshBalance(force = false): Promise<void> {
    if (!this.#report) return;
    if (force) this.#balance.clear();
    const balance = await this.#balance.get(300_000, async () => {
      const out = await this.#api.call("GetBalance", {}, z.looseObject({ balance: z.coerce.number() }), true);
      return out.balance;
    });
    this.#report(this.#account, balance);
  }

  async validate(desired: DesiredMachine<MosOptions>): Promise<void> {
    const { plan, image } = desired;
    if (plan === undefined || image === undefined)
      throw refuse("mos needs spec.plan (an instance type) and spec.image (a template id)", "InvalidSpec");
    if (desired.sshKeys.length > 1)
      throw refuse(
        "MOS attaches one key pair per instance: give at most one entry in sshKeys",
        "InvalidSpec",
      );
    const c = await this.#catalogues();
    if (!c.types.includes(plan))
      throw refuse(`no instance type "${plan}"; choose one of ${c.types.join(", ")}`, "UnknownPlan");
    if (!c.templates.some((t) => t.id === image))
      throw refuse(
        `no template "${image}"; choose one of ${c.templates.map((t) => `${t.id} (${t.name})`).join(", ")}`,
        "UnknownImage",
      );
  }

  /** The key pair for a public key, imported under a name derived from the key itself. */
  async #keyName(publicKey: string): Promise<string> {
    const name = `cio-${createHash("sha256").update(publicKey.trim()).digest("hex").slice(0, 16)}`;
    const known = await this.#api.call(
      "DescribeKeyPairs",
      { "Filter.1.Name": "name", "Filter.1.Value.1": name },
      z.looseObject({
        KeyPairSet: z
          .looseObject({ KeyPair: z.array(z.looseObject({ keyName: z.coerce.string() })).optional() })
          .nullable()
          .optional(),
      }),
      true,
    );
    if ((known.KeyPairSet?.KeyPair ?? []).some((k) => k.keyName === name)) return name;
    await this.#api.call(
      "ImportKeyPair",
      { KeyName: name, PublicKeyMaterial: publicKey.trim() },
      z.looseObject({ KeyPair: z.unknown() }),
      false,
    );
    return name;
  }

  async create(desired: DesiredMachine<MosOptions>): Promise<CreateResult> {
    const key = desired.sshKeys[0];
    const keyName = key === undefined ? undefined : await this.#keyName(key);
    const out = await this.#api.call(
      "CreateInstance",
      {
        ImageId: desired.image,
        InstanceType: desired.plan,
        Duration: desired.options.duration,
        InstanceName: `${OWNER_PREFIX}${desired.ownerUID}`,
        KeyName: keyName,
      },
      z.looseObject({ Instance: InstanceSchema }),
      false,
    );
    const id = out.Instance.instanceId;
    // The image and tags live in metadata (DescribeInstances shows neither). A failure here
    // is repaired by the tag sync; the id must reach the caller whatever happens.
    await this.#putMetadata(id, desired.image ?? "", desired.tags).catch(() => undefined);
    await this.#refreshBalance(true).catch(() => undefined);
    const observed = observe(out.Instance, undefined);
    this.#lastSeen.set(id, observed);
    return { id, observed };
  }

  async #putMetadata(
    id: string,
    image: string | undefined,
    tags: readonly string[] | undefined,
  ): Promise<void> {
    const entries: [string, string][] = [];
    if (image !== undefined) entries.push([IMAGE_KEY, image]);
    if (tags !== undefined) entries.push([TAGS_KEY, JSON.stringify([...tags])]);
    const params: Record<string, string> = { InstanceId: id };
    entries.forEach(([k, v], n) => {
      params[`Name.${String(n + 1)}`] = k;
      params[`Value.${String(n + 1)}`] = v;
    });
    await this.#api.call("PutInstanceMetadata", params, ReturnSchema, true);
  }

  async #describe(params: Record<string, string>): Promise<Instance[]> {
    const out = await this.#api.call("DescribeInstances", params, InstanceSetSchema, true);
    return (out.InstanceSet?.Instance ?? []).filter((i) => i.status !== "terminated");
  }

  async get(ref: MachineRef): Promise<ObservedMachine | undefined> {
    // While a VM is in transition, polling needs its status only: one DescribeInstanceStatus
    // instead of DescribeInstances plus GetInstanceMetadata, the rest from the last full read.
    const last = this.#lastSeen.get(ref.id);
    if (last?.transitional) {
      let status: string;
      try {
        const out = await this.#api.call(
          "DescribeInstanceStatus",
          { InstanceId: ref.id },
          z.looseObject({ InstanceStatus: z.looseObject({ status: z.coerce.string() }) }),
          true,
        );
        status = out.InstanceStatus.status;
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        this.#lastSeen.delete(ref.id);
        return undefined;
      }
      if (status === last.providerStatus) return last;
    }
    const observed = await this.#getFull(ref);
    if (observed) this.#lastSeen.set(ref.id, observed);
    else this.#lastSeen.delete(ref.id);
    return observed;
  }

  async #getFull(ref: MachineRef): Promise<ObservedMachine | undefined> {
    const [instance] = await this.#describe({ "InstanceId.1": ref.id });
    if (!instance) return undefined;
    let metadata: Record<string, unknown> | undefined;
    try {
      const out = await this.#api.call("GetInstanceMetadata", { InstanceId: ref.id }, MetadataSchema, true);
      metadata = out.InstanceMetadata ?? {};
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
    const observed = observe(instance, metadata);
    if (!observed.transitional) await this.#maybeRenew(ref, observed);
    return observed;
  }

  /** Auto-renewal: at most once an hour per VM, renew when the lease ends within renewBefore. */
  async #maybeRenew(ref: MachineRef, m: ObservedMachine): Promise<void> {
    const parsed = MosOptionsSchema.safeParse(ref.options ?? {});
    if (!parsed.success || !parsed.data.autoRenew) return;
    const last = this.#renewChecked.get(ref.id) ?? 0;
    if (Date.now() - last < 3_600_000) return;
    this.#renewChecked.set(ref.id, Date.now());
    const contract = await this.#api.call(
      "GetInstanceContractInfo",
      { InstanceId: m.id },
      z.looseObject({ expireAt: z.coerce.string().optional() }),
      true,
    );
    const expireAt = contract.expireAt === undefined ? NaN : Date.parse(contract.expireAt);
    if (Number.isNaN(expireAt) || expireAt - Date.now() > parseDuration(parsed.data.renewBefore)) return;
    await this.#api.call(
      "RenewInstance",
      { InstanceId: m.id, Duration: parsed.data.duration },
      ReturnSchema,
      false,
    );
    await this.#refreshBalance(true).catch(() => undefined);
  }

  async findByOwner(ownerUID: string): Promise<ObservedMachine[]> {
    const found = await this.#describe({ "InstanceName.1": `${OWNER_PREFIX}${ownerUID}` });
    return found.map((i) => observe(i, undefined));
  }

  async #action(action: string, params: Record<string, string>, charging = false): Promise<void> {
    const out = await this.#api.call(action, params, ReturnSchema, !charging);
    if (out.return !== "True")
      throw new TransientError(`mos ${action}: answered return=${out.return}`, {
        provider: "mos",
        operation: action,
      });
  }

  start(ref: MachineRef): Promise<void> {
    return this.#action("StartInstance", { InstanceId: ref.id });
  }
  stop(ref: MachineRef, opts: { hard: boolean }): Promise<void> {
    return this.#action("StopInstance", { InstanceId: ref.id, ...(opts.hard ? { Force: "true" } : {}) });
  }
  reboot(ref: MachineRef): Promise<void> {
    return this.#action("RebootInstance", { InstanceId: ref.id });
  }
  async resize(ref: MachineRef, plan: string): Promise<void> {
    const parsed = MosOptionsSchema.safeParse(ref.options ?? {});
    const duration = parsed.success ? parsed.data.duration : "1M";
    await this.#action(
      "ChangeInstanceType",
      { InstanceId: ref.id, InstanceType: plan, Duration: duration },
      true,
    );
    await this.#refreshBalance(true).catch(() => undefined);
  }
  async rebuild(ref: MachineRef, image: string): Promise<void> {
    await this.#action("RebuildInstanceRootImage", { InstanceId: ref.id, ImageId: image }, true);
    await this.#putMetadata(ref.id, image, undefined);
  }
  setTags(ref: MachineRef, tags: readonly string[]): Promise<void> {
    return this.#putMetadata(ref.id, undefined, tags);
  }

  async delete(ref: MachineRef): Promise<void> {
    try {
      await this.#action("TerminateInstance", { InstanceId: ref.id });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    this.#renewChecked.delete(ref.id);
    this.#lastSeen.delete(ref.id);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function refuse(message: string, reason: string): InvalidRequestError {
  return new InvalidRequestError(`mos: ${message}`, { provider: "mos", reason });
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
    const http = ctx.http.client({
      provider: "mos",
      baseUrl: ctx.endpoint ?? MOS_DEFAULT_ENDPOINT,
      credentialKey: createHash("sha256").update(accessKeyId).digest("hex").slice(0, 16),
      secrets: [secretAccessKey],
    });
    return new MosDriver(
      new MosApi(http, { accessKeyId, secretAccessKey, signatureMethod: method.data }),
      accessKeyId,
      ctx.reportBalance,
    );
  },
};
