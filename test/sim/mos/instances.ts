import type { ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import type { FaultKnobs } from "../common.ts";
import { DOCUMENTED_STATUSES, type MosProfile } from "./profile.ts";
import {
  durationMonths,
  MOS_TEMPLATES,
  MOS_TYPES,
  numbered,
  page,
  send,
  sendError,
  type Format,
  type ListFault,
} from "./views.ts";

/** One instance as the simulator keeps it; `status` may be transitional, `steady` never is. */
export interface Vm {
  instanceId: string;
  instanceName: string;
  instanceTypeId: string;
  instanceType: string;
  status: string;
  /** The last documented status (running, ready, suspend): what the strict profile shows. */
  steady: string;
  cpu: number;
  memory: number;
  volume: number;
  ips: string[];
  imageId: string;
  keyName: string;
  volumeId: string;
  password: string;
  metadata: Record<string, string>;
  expireAt: number;
  timer?: NodeJS.Timeout | undefined;
}

export interface InstanceDeps {
  profile: MosProfile;
  vms: Map<string, Vm>;
  keys: ReadonlyMap<string, string>;
  knobs: FaultKnobs;
  now: () => number;
  describeRefusesUnknownIds: boolean;
  /** How DescribeInstances pages (see ListFault); read per request. */
  listFault: () => ListFault;
  /** Takes price x months from the balance; false (nothing taken) when it is short. */
  charge(price: number, months: number): boolean;
}

interface Call {
  p: URLSearchParams;
  ok(body: unknown): void;
  done(): void;
  fail(status: number, message: string): void;
  /** The instance InstanceId names (an id, or a name where the document allows one), or a refusal. */
  vm(): Vm | undefined;
}

const MONTH_MS = 30 * 86_400_000;

/** The instance actions of the document, over `deps.vms`. */
export class Instances {
  readonly #d: InstanceDeps;
  #seq = 0;

  constructor(deps: InstanceDeps) {
    this.#d = deps;
  }

  /** Answers `action` when it is an instance action (true), else leaves it to the caller. */
  handle(action: string, p: URLSearchParams, format: Format, res: ServerResponse): boolean {
    const d = this.#d;
    const c: Call = {
      p,
      ok: (b) => send(res, 200, format, `${action}Response`, b),
      done: () => send(res, 200, format, `${action}Response`, { return: "True" }),
      fail: (status, message) => sendError(res, format, status, message),
      vm: () => {
        const id = p.get("InstanceId") ?? "";
        const found = d.vms.get(id) ?? [...d.vms.values()].find((v) => v.instanceName === id);
        if (!found) sendError(res, format, d.profile.notFound, `Instance ${id} not found`);
        return found;
      },
    };
    if (action === "CreateInstance") this.#create(c, res);
    else if (action === "DescribeInstances") this.#describe(c);
    else {
      const read = this.#reads[action];
      const write = this.#writes[action];
      if (!read && !write) return false;
      const v = c.vm();
      if (v && read) read(c, v);
      else if (v && write?.(c, v)) c.done();
    }
    return true;
  }

  #shown(v: Vm): string {
    return this.#d.profile.transitionalStatuses || DOCUMENTED_STATUSES.has(v.status) ? v.status : v.steady;
  }

  #view(v: Vm): Record<string, unknown> {
    return {
      instanceId: v.instanceId,
      instanceName: v.instanceName,
      instanceType: v.instanceType,
      instanceTypeId: v.instanceTypeId,
      status: this.#shown(v),
      cpu: v.cpu,
      memory: v.memory,
      volume: v.volume,
      ipAddresses: v.ips.join(this.#d.profile.ipSeparator),
    };
  }

  #later(v: Vm, status: string): void {
    clearTimeout(v.timer);
    v.timer = setTimeout(() => {
      v.timer = undefined;
      v.status = status;
      if (DOCUMENTED_STATUSES.has(status)) v.steady = status;
      if (status === "terminated") this.#d.vms.delete(v.instanceId);
    }, this.#d.knobs.transitionMs);
  }

  /**
   * Whether `doing` may start now: "start"; "again" when it is already under way (accepted,
   * nothing changes); undefined when refused (answered): the shown status does not allow it, or
   * another operation runs.
   */
  #may(c: Call, v: Vm, allowed: readonly string[], doing: string): "start" | "again" | undefined {
    const conflict = this.#d.profile.conflict;
    if (!allowed.includes(this.#shown(v))) c.fail(conflict, `Instance ${v.instanceId} is ${this.#shown(v)}`);
    // A new instance boots by itself: a start while it does is the operation under way.
    else if (v.status === doing || (doing === "starting" && v.status === "pending")) return "again";
    else if (!DOCUMENTED_STATUSES.has(v.status)) c.fail(conflict, `Instance ${v.instanceId} is busy`);
    else return "start";
    return undefined;
  }

  #operate(c: Call, v: Vm, allowed: readonly string[], doing: string, then: string): boolean {
    const m = this.#may(c, v, allowed, doing);
    if (m === "start") {
      v.status = doing;
      this.#later(v, then);
    }
    return m !== undefined;
  }

  #typeOf(c: Call): (typeof MOS_TYPES)[number] | undefined {
    const want = c.p.get("InstanceType") ?? "";
    const type = MOS_TYPES.find((t) => t.id === want || t.name === want);
    if (!type) c.fail(400, `Invalid InstanceType ${want}`);
    return type;
  }

  /** Charges a documented Duration (default 1M): the months, or undefined once refused (answered). */
  #charge(c: Call, price: number): number | undefined {
    const duration = c.p.get("Duration") ?? "1M";
    const months = durationMonths(duration);
    if (months === undefined) c.fail(400, `Invalid Duration ${duration}`);
    else if (!this.#d.charge(price, months)) c.fail(406, "No enough balance");
    else return months;
    return undefined;
  }

  #create(c: Call, res: ServerResponse): void {
    const type = this.#typeOf(c);
    if (!type) return;
    const template = MOS_TEMPLATES.find((t) => t.id === c.p.get("ImageId"));
    if (!template) return c.fail(400, `Invalid ImageId ${c.p.get("ImageId") ?? ""}`);
    const keyName = c.p.get("KeyName") ?? "";
    if (keyName !== "" && !this.#d.keys.has(keyName)) return c.fail(400, `KeyPair ${keyName} not found`);
    const months = this.#charge(c, type.price);
    if (months === undefined) return;
    const n = ++this.#seq;
    const octets = `${String((n >> 8) & 255)}.${String(n & 255)}`;
    const v: Vm = {
      instanceId: randomUUID(),
      instanceName: c.p.get("InstanceName") ?? `vm-${String(n)}`,
      instanceTypeId: type.id,
      instanceType: type.name,
      status: "pending",
      steady: "ready",
      cpu: type.cpu,
      memory: type.memory,
      volume: 20480,
      ips: [`10.168.${octets}`, `103.37.${octets}`],
      imageId: template.id,
      keyName,
      volumeId: randomUUID(),
      password: randomUUID().slice(0, 12),
      metadata: {},
      expireAt: this.#d.now() + months * MONTH_MS,
    };
    this.#d.vms.set(v.instanceId, v);
    this.#later(v, "running");
    try {
      this.#d.knobs.onCreated(v.instanceId);
    } catch {
      res.socket?.destroy();
      return;
    }
    c.ok({ Instance: this.#view(v) });
  }

  #describe(c: Call): void {
    const ids = numbered(c.p, "InstanceId");
    const names = numbered(c.p, "InstanceName");
    const unknown = ids.find((i) => !this.#d.vms.has(i));
    if (this.#d.describeRefusesUnknownIds && unknown !== undefined)
      return c.fail(this.#d.profile.notFound, `Instance ${unknown} not found`);
    const rows = [...this.#d.vms.values()].filter(
      (v) =>
        (ids.length === 0 || ids.includes(v.instanceId)) &&
        (names.length === 0 || names.includes(v.instanceName)),
    );
    const field = (v: Vm, n: string): string | undefined =>
      n === "name" ? v.instanceName : n === "status" ? this.#shown(v) : undefined;
    const r = page(c.p, rows, field, this.#d.profile.defaultLimit, {
      mode: this.#d.listFault(),
      filler: (n) => this.#filler(n),
    });
    c.ok({
      InstanceSet: {
        Instance: r.rows.map((v) => this.#view(v)),
        Total: r.total,
        Limit: r.limit,
        Offset: r.offset,
      },
    });
  }

  /** A VM of someone else's that only a misbehaving list shows (row `n`); never stored. */
  #filler(n: number): Vm {
    const type = MOS_TYPES[0];
    return {
      instanceId: `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`,
      instanceName: `other-${String(n)}`,
      instanceTypeId: type.id,
      instanceType: type.name,
      status: "running",
      steady: "running",
      cpu: type.cpu,
      memory: type.memory,
      volume: 20480,
      ips: [],
      imageId: MOS_TEMPLATES[0].id,
      keyName: "",
      volumeId: "",
      password: "",
      metadata: {},
      expireAt: 0,
    };
  }

  /** Reads about one instance. */
  readonly #reads: Record<string, (c: Call, v: Vm) => void> = {
    DescribeInstanceStatus: (c, v) => c.ok({ InstanceStatus: { status: this.#shown(v) } }),
    DescribeInstanceVolumes: (c, v) =>
      c.ok({
        InstanceVolumeSet: {
          InstanceVolume: [
            {
              index: 0,
              instanceId: v.instanceId,
              instanceName: v.instanceName,
              volumeName: `vdisk_${v.instanceName}_0`,
              driver: "virtio",
              volumeId: v.volumeId,
              cacheMode: "none",
              volumeSize: v.volume,
            },
          ],
        },
      }),
    DescribeInstanceNetworkInterfaces: (c, v) =>
      c.ok({
        InstanceNetworkInterfaceSet: {
          InstanceNetworkInterface: v.ips.map((ip, index) => ({
            networkId:
              index === 0 ? "40480c6f-2c7e-4ba8-b040-92a64a948c90" : "6a0c1f2e-8d3b-4c5a-9e7f-1b2c3d4e5f60",
            index,
            instanceId: v.instanceId,
            networkName: index === 0 ? "private" : "public",
            driver: "virtio",
            bandwidth: 10,
            instanceName: v.instanceName,
            ipAddress: ip,
            macAddress: `00:22:34:84:24:${index.toString(16).padStart(2, "0")}`,
          })),
        },
      }),
    GetPasswordData: (c, v) =>
      c.ok({
        timestamp: new Date(this.#d.now()).toISOString(),
        account: "root",
        passwordData: v.password,
        ...(v.keyName === "" ? {} : { keypairId: v.keyName, keypairName: v.keyName }),
      }),
    GetInstanceContractInfo: (c, v) =>
      c.ok({
        startedAt: new Date(v.expireAt - MONTH_MS).toISOString(),
        expireAt: new Date(v.expireAt).toISOString(),
        extendTo: new Date(v.expireAt + 86_400_000).toISOString(),
      }),
    GetInstanceMetadata: (c, v) =>
      c.ok({ InstanceMetadata: { ...this.#d.profile.systemMetadata, ...v.metadata } }),
  };

  /** Changes to one instance; each answers `return: True` once accepted. */
  readonly #writes: Record<string, (c: Call, v: Vm) => boolean> = {
    StartInstance: (c, v) => this.#operate(c, v, ["ready"], "starting", "running"),
    StopInstance: (c, v) => {
      if (!/^true$/i.test(c.p.get("Force") ?? ""))
        return this.#operate(c, v, ["running"], "stopping", "ready");
      if (!["running", "stopping", "starting"].includes(this.#shown(v))) {
        c.fail(this.#d.profile.conflict, `Instance ${v.instanceId} is ${this.#shown(v)}`);
        return false;
      }
      clearTimeout(v.timer);
      v.status = v.steady = "ready";
      return true;
    },
    RebootInstance: (c, v) => this.#operate(c, v, ["running"], "rebooting", "running"),
    RebuildInstanceRootImage: (c, v) => {
      const image = c.p.get("ImageId") ?? v.imageId;
      if (!MOS_TEMPLATES.some((t) => t.id === image)) {
        c.fail(400, `Invalid ImageId ${image}`);
        return false;
      }
      if (!this.#operate(c, v, ["running", "ready"], "rebuilding", v.steady)) return false;
      v.imageId = image;
      return true;
    },
    ChangeInstanceType: (c, v) => {
      const type = this.#typeOf(c);
      const m = type && this.#may(c, v, ["running", "ready"], "resizing");
      if (!type || m === undefined) return false;
      if (m === "again") return true;
      if (this.#charge(c, type.price) === undefined) return false;
      Object.assign(v, {
        instanceType: type.name,
        instanceTypeId: type.id,
        cpu: type.cpu,
        memory: type.memory,
      });
      v.status = "resizing";
      this.#later(v, v.steady);
      return true;
    },
    RenewInstance: (c, v) => {
      const months = this.#charge(c, MOS_TYPES.find((t) => t.id === v.instanceTypeId)?.price ?? 0);
      if (months === undefined) return false;
      v.expireAt += months * MONTH_MS;
      if (v.status === "suspend") v.status = v.steady = "ready";
      return true;
    },
    TerminateInstance: (_c, v) => {
      if (v.status !== "terminating") {
        v.status = "terminating";
        this.#later(v, "terminated");
      }
      return true;
    },
    PutInstanceMetadata: (c, v) => {
      const names = numbered(c.p, "Name");
      const values = numbered(c.p, "Value");
      if (names.length === 0 || names.length !== values.length || names.includes("")) {
        c.fail(400, "Name.n and Value.n are required, one Value.n per Name.n");
        return false;
      }
      names.forEach((k, i) => (v.metadata[k] = values[i] ?? ""));
      return true;
    },
  };
}
