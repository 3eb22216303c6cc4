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
  ObservedPhase,
  StateTable,
} from "../driver.ts";
import { InvalidRequestError, NotFoundError, TransientError, UnsupportedError } from "../errors.ts";
import { TtlCache } from "../ttl-cache.ts";
import {
  ImageSchema,
  LocationSchema,
  RplanSchema,
  ScaletSchema,
  SshKeySchema,
  TagSchema,
  TaskSchema,
  VscaleApi,
  type Image,
  type Rplan,
  type Scalet,
  type Tag,
  type Task,
} from "./api.ts";

export const VSCALE_DEFAULT_ENDPOINT = "https://api.vscale.io/v1";
/** Separates the readable scalet name from the owner UID: `<namespace>-<name>--cio-<uid>`. */
export const OWNER_SEPARATOR = "--cio-";

export const VscaleOptionsSchema = z
  .object({
    /** Catalogues (rplans, images, locations) are re-read after this many seconds. */
    catalogueTtlSeconds: z.number().int().min(10).max(86_400).default(600),
  })
  .strict();
export type VscaleOptions = z.infer<typeof VscaleOptionsSchema>;

const CAPABILITIES: ReadonlySet<Capability> = new Set([
  "start",
  "stop",
  "reboot",
  "resize",
  "tags",
  "findByOwner",
]);

const STATES: StateTable = {
  defined: { phase: "Provisioning", transitional: true },
  started: { phase: "Running", transitional: false },
  stopped: { phase: "Stopped", transitional: false },
  billing: {
    phase: "Stopped",
    transitional: false,
    message: "blocked by Vscale for non-payment (status billing): top up the account balance",
  },
};

export function ownerOf(name: string): string | undefined {
  const at = name.lastIndexOf(OWNER_SEPARATOR);
  return at < 0 ? undefined : name.slice(at + OWNER_SEPARATOR.length);
}

/** Smallest first: memory, then disk, then cpus (Vscale only upgrades). */
function compareRplans(a: Rplan, b: Rplan): number {
  return a.memory - b.memory || a.disk - b.disk || a.cpus - b.cpus;
}

export function observe(s: Scalet, userTags: string[] | undefined, task: Task | undefined): ObservedMachine {
  // An undocumented status is polled, never acted upon.
  const mapped = STATES[s.status] ?? { phase: "Provisioning" as const, transitional: true };
  const deleting = s.deleted !== null && s.deleted !== undefined;
  const failed = task?.done === true && task.error;
  let phase: ObservedPhase = deleting ? "Deleting" : mapped.phase;
  let message = mapped.message;
  if (failed) {
    message = `Vscale task ${task.method ?? task.id} for this scalet failed`;
    if (task.method === "scalet_create" && s.status === "defined") phase = "Failed";
  }
  const address = (a: Scalet["public_address"]): string[] =>
    a && !Array.isArray(a) && typeof a.address === "string" && a.address !== "" ? [a.address] : [];
  const owner = ownerOf(s.name);
  return {
    id: String(s.ctid),
    providerStatus: s.status,
    phase,
    // `locked` means an operation is running: wait for it, never fail on it.
    transitional: deleting || s.locked === true || (mapped.transitional && phase !== "Failed"),
    ...(message === undefined ? {} : { message }),
    ...(owner === undefined ? {} : { ownerUID: owner }),
    name: s.name,
    ...(s.location === undefined ? {} : { region: s.location }),
    ...(s.rplan === undefined ? {} : { plan: s.rplan }),
    ...(s.made_from === undefined ? {} : { image: s.made_from }),
    ...(userTags === undefined ? {} : { tags: userTags }),
    addresses: { public: address(s.public_address), private: address(s.private_address) },
  };
}

interface Catalogue {
  rplans: Rplan[];
  images: Image[];
  locations: string[];
}

class VscaleDriver implements Driver<VscaleOptions> {
  readonly provider = "vscale" as const;
  readonly capabilities = CAPABILITIES;
  readonly #api: VscaleApi;
  readonly #password: string | undefined;
  readonly #catalogue = new TtlCache<Catalogue>();
  /** One tag list serves every scalet's get for a few seconds (tags are account-wide). */
  readonly #tags = new TtlCache<Tag[]>();
  readonly #tasks = new TtlCache<Task[]>();
  /** Last long operation per scalet, to report its failure. Lost on restart: only a message. */
  readonly #lastTask = new Map<string, string>();

  constructor(api: VscaleApi, password: string | undefined) {
    this.#api = api;
    this.#password = password;
  }

  async #catalogues(ttlSeconds: number): Promise<Catalogue> {
    return this.#catalogue.get(ttlSeconds * 1000, async () => {
      const [rplans, images, locations] = await Promise.all([
        this.#api.list("/rplans", RplanSchema, "rplans"),
        this.#api.list("/images", ImageSchema, "images"),
        this.#api.list("/locations", LocationSchema, "locations"),
      ]);
      return {
        rplans: [...rplans].sort(compareRplans),
        images: images.filter((i) => i.active !== false),
        locations: locations.filter((l) => l.active !== false).map((l) => l.id),
      };
    });
  }

  async validate(desired: DesiredMachine<VscaleOptions>): Promise<void> {
    const { plan, image, region } = desired;
    if (plan === undefined || image === undefined || region === undefined)
      throw new InvalidRequestError("vscale needs spec.region (location), spec.plan (rplan) and spec.image", {
        provider: "vscale",
        reason: "InvalidSpec",
      });
    const c = await this.#catalogues(desired.options.catalogueTtlSeconds);
    const refuse = (message: string, reason: string): never => {
      throw new InvalidRequestError(`vscale: ${message}`, { provider: "vscale", reason });
    };
    if (!c.rplans.some((r) => r.id === plan))
      refuse(`no rplan "${plan}"; choose one of ${c.rplans.map((r) => r.id).join(", ")}`, "UnknownPlan");
    const img = c.images.find((i) => i.id === image);
    if (!img)
      refuse(`no image "${image}"; choose one of ${c.images.map((i) => i.id).join(", ")}`, "UnknownImage");
    if (!c.locations.includes(region))
      refuse(`no location "${region}"; choose one of ${c.locations.join(", ")}`, "UnknownRegion");
    if (img?.rplans && !img.rplans.includes(plan))
      refuse(
        `image "${image}" is not offered with rplan "${plan}"; it runs on ${img.rplans.join(", ")}`,
        "InvalidSpec",
      );
    if (img?.locations && !img.locations.includes(region))
      refuse(`image "${image}" is not offered in ${region}`, "InvalidSpec");
  }

  /** SSH key ids for the spec's public keys, registering the ones Vscale does not know yet. */
  async #keyIds(publicKeys: readonly string[], owner: string): Promise<number[]> {
    if (publicKeys.length === 0) return [];
    const known = await this.#api.list("/sshkeys", SshKeySchema, "sshkeys");
    const ids: number[] = [];
    for (const [i, key] of publicKeys.entries()) {
      const trimmed = key.trim();
      const found = known.find((k) => k.key.trim() === trimmed);
      if (found) {
        ids.push(found.id);
        continue;
      }
      // A key POST is safe to repeat: the lookup above finds it next time.
      const created = await this.#api.call(
        {
          method: "POST",
          path: "/sshkeys",
          json: { key: trimmed, name: `cio-${owner.slice(0, 8)}-${String(i)}` },
          operation: "sshkey",
          idempotent: true,
        },
        SshKeySchema,
      );
      if (created) ids.push(created.body.id);
    }
    return ids;
  }

  async create(desired: DesiredMachine<VscaleOptions>): Promise<CreateResult> {
    const keys = await this.#keyIds(desired.sshKeys, desired.ownerUID);
    const readable = `${desired.namespace}-${desired.name}`.slice(0, 60);
    const out = await this.#api.call(
      {
        method: "POST",
        path: "/scalets",
        json: {
          make_from: desired.image,
          rplan: desired.plan,
          do_start: desired.powerState === "Running",
          name: `${readable}${OWNER_SEPARATOR}${desired.ownerUID}`,
          keys,
          location: desired.region,
          ...(this.#password === undefined ? {} : { password: this.#password }),
        },
        operation: "create",
      },
      ScaletSchema,
    );
    if (!out) throw new TransientError("vscale create: 404 from POST /scalets", { provider: "vscale" });
    const id = String(out.body.ctid);
    if (out.taskId !== undefined) this.#lastTask.set(id, out.taskId);
    // Tags are set by the reconciler's tag sync once the scalet is unlocked: a failure here
    // would hide the new scalet's id from the caller.
    return { id, observed: observe(out.body, undefined, undefined) };
  }

  async #userTags(id: string, fresh = false): Promise<string[]> {
    if (fresh) this.#tags.clear();
    const all = await this.#tags.get(5_000, () => this.#api.list("/scalets/tags", TagSchema, "tags"));
    return all.filter((t) => t.scalets.includes(Number(id))).map((t) => t.name);
  }

  async #taskFor(id: string, locked: boolean): Promise<Task | undefined> {
    const taskId = this.#lastTask.get(id);
    if (taskId === undefined) return undefined;
    // Still running: nothing to learn yet. Done: read its outcome once, then forget it.
    if (locked) return undefined;
    const load = (): Promise<Task[]> => this.#api.list("/tasks", TaskSchema, "tasks");
    let task = (await this.#tasks.get(2_000, load)).find((t) => t.id === taskId);
    if (task?.done !== true) {
      // The shared list predates this task's end: read it afresh once.
      this.#tasks.clear();
      task = (await this.#tasks.get(2_000, load)).find((t) => t.id === taskId);
    }
    if (task?.done !== false) this.#lastTask.delete(id);
    return task;
  }

  async get(ref: MachineRef): Promise<ObservedMachine | undefined> {
    const out = await this.#api.call(
      { method: "GET", path: `/scalets/${encodeURIComponent(ref.id)}`, operation: "get" },
      ScaletSchema,
    );
    if (!out) return undefined;
    const s = out.body;
    const [tags, task] = await Promise.all([
      s.locked === true ? Promise.resolve(undefined) : this.#userTags(ref.id),
      this.#taskFor(ref.id, s.locked === true),
    ]);
    return observe(s, tags, task);
  }

  async findByOwner(ownerUID: string): Promise<ObservedMachine[]> {
    // GET /scalets answers every scalet of the account at once (no paging in the API).
    const all = await this.#api.list("/scalets", ScaletSchema, "list");
    const mine = all.filter((s) => ownerOf(s.name) === ownerUID);
    return mine.map((s) => observe(s, undefined, undefined));
  }

  async #action(ref: MachineRef, method: "PATCH" | "POST", action: string, json: object): Promise<void> {
    const out = await this.#api.call(
      {
        method,
        path: `/scalets/${encodeURIComponent(ref.id)}/${action}`,
        json,
        operation: action,
        // Power actions converge on a state; an upgrade to a named rplan is absolute too.
        idempotent: true,
      },
      ScaletSchema,
    );
    if (!out)
      throw new NotFoundError(`vscale ${action}: scalet ${ref.id} not found`, {
        provider: "vscale",
        operation: action,
      });
    if (out.taskId !== undefined) this.#lastTask.set(ref.id, out.taskId);
  }

  start(ref: MachineRef): Promise<void> {
    return this.#action(ref, "PATCH", "start", { id: ref.id });
  }
  stop(ref: MachineRef): Promise<void> {
    return this.#action(ref, "PATCH", "stop", { id: ref.id });
  }
  reboot(ref: MachineRef): Promise<void> {
    return this.#action(ref, "PATCH", "restart", { id: ref.id });
  }

  async resize(ref: MachineRef, plan: string): Promise<void> {
    const out = await this.#api.call(
      { method: "GET", path: `/scalets/${encodeURIComponent(ref.id)}`, operation: "get" },
      ScaletSchema,
    );
    if (!out) throw new NotFoundError(`vscale resize: scalet ${ref.id} not found`, { provider: "vscale" });
    const c = await this.#catalogues(600);
    const from = c.rplans.find((r) => r.id === out.body.rplan);
    const to = c.rplans.find((r) => r.id === plan);
    if (from && to && compareRplans(to, from) < 0) {
      // Refused here, before any call: Vscale cannot shrink a scalet, and retrying cannot help.
      throw new InvalidRequestError(
        `vscale cannot downgrade scalet ${ref.id} from ${from.id} to ${to.id}: only upgrades are possible; recreate the instance to shrink it`,
        { provider: "vscale", reason: "DowngradeRefused" },
      );
    }
    if (out.body.rplan === plan) return;
    await this.#action(ref, "POST", "upgrade", { rplan: plan });
  }

  /**
   * `PATCH /scalets/:ctid/rebuild` reinstalls the scalet's own image (with the Secret's password
   * when it has one). Another image cannot be installed, so the capability is not declared and
   * an image change is reported as Unsupported; asking for the same image reinstalls it.
   */
  async rebuild(ref: MachineRef, image: string): Promise<void> {
    const out = await this.#api.call(
      { method: "GET", path: `/scalets/${encodeURIComponent(ref.id)}`, operation: "get" },
      ScaletSchema,
    );
    if (!out) throw new NotFoundError(`vscale rebuild: scalet ${ref.id} not found`, { provider: "vscale" });
    if (out.body.made_from !== image)
      throw new UnsupportedError(
        `vscale can only reinstall a scalet's own image (${out.body.made_from ?? "?"}), not ${image}: recreate the instance to change the image`,
        { provider: "vscale", operation: "rebuild" },
      );
    await this.#action(
      ref,
      "PATCH",
      "rebuild",
      this.#password === undefined ? {} : { password: this.#password },
    );
  }

  async setTags(ref: MachineRef, wanted: readonly string[]): Promise<void> {
    const ctid = Number(ref.id);
    const all = await this.#api.list("/scalets/tags", TagSchema, "tags");
    const want = new Set(wanted);
    for (const tag of all) {
      const has = tag.scalets.includes(ctid);
      if (has === want.has(tag.name)) continue;
      const scalets = has ? tag.scalets.filter((c) => c !== ctid) : [...tag.scalets, ctid];
      await this.#api.call(
        {
          method: "PUT",
          path: `/scalets/tags/${String(tag.id)}`,
          json: { name: tag.name, scalets },
          operation: "tags",
        },
        TagSchema,
      );
    }
    for (const name of want) {
      if (all.some((t) => t.name === name)) continue;
      await this.#api.call(
        { method: "POST", path: "/scalets/tags", json: { name, scalets: [ctid] }, operation: "tags" },
        TagSchema,
      );
    }
    this.#tags.clear();
  }

  async delete(ref: MachineRef): Promise<void> {
    // 404: already gone, which is what we want.
    await this.#api.call(
      { method: "DELETE", path: `/scalets/${encodeURIComponent(ref.id)}`, operation: "delete" },
      z.unknown(),
    );
    this.#lastTask.delete(ref.id);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export const factory: DriverFactory<VscaleOptions> = {
  provider: "vscale",
  defaultEndpoint: VSCALE_DEFAULT_ENDPOINT,
  credentialKeys: { required: ["token"], optional: ["password"] },
  optionsSchema: VscaleOptionsSchema,
  create(ctx: DriverContext): Driver<VscaleOptions> {
    const token = ctx.credentials.token ?? "";
    const password = ctx.credentials.password;
    const http = ctx.http.client({
      provider: "vscale",
      baseUrl: ctx.endpoint ?? VSCALE_DEFAULT_ENDPOINT,
      credentialKey: createHash("sha256").update(token).digest("hex").slice(0, 16),
      secrets: [token, ...(password === undefined ? [] : [password])],
      defaultHeaders: { "x-token": token },
    });
    return new VscaleDriver(new VscaleApi(http), password === "" ? undefined : password);
  },
};
