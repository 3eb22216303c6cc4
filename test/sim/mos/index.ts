import type { IncomingMessage, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import {
  applyConnectionFault,
  countRequest,
  FaultInjector,
  listen,
  type FaultKnobs,
  type SimProfile,
  type Simulator,
  type SimVm,
} from "../common.ts";
import { signature, stringToSign, type SignatureMethod } from "../../../src/providers/mos/signer.ts";

/**
 * MOS (Meituan Compute Service) simulator, after ../shared/providers/mos.txt and the MOS section
 * of providers/README.md. Choices where the document is silent:
 * - GET (query) and POST (form) both work; the signature is checked strictly (AWS SigV2 over
 *   method, host as the client addressed it, path and sorted parameters) and the Timestamp
 *   must be within 15 minutes: otherwise 403. Signature errors are answered in XML whatever
 *   Format says (the signature check runs before the parameters are trusted), which is why
 *   clients must read XML errors too;
 * - `Format` defaults to xml as documented; lists are `…Set` with `Total`, `Limit`, `Offset`;
 * - statuses: pending -> running on create; running -> stopping -> ready; ready -> starting ->
 *   running; rebooting, rebuilding and resizing return to the state before; terminating, then
 *   the instance is gone (DescribeInstances no longer lists it, other actions answer 404);
 *   `suspend` only through `mutate` (a billing block); an action in the wrong state is 409;
 * - CreateInstance, RenewInstance and ChangeInstanceType charge price x duration from the
 *   balance (406 "No enough balance" when short); prices below, per month (an hour is 1/720);
 * - instance types and templates are the document's examples plus a few of the same shape.
 */
export const MOS_TYPES = [
  { id: "8e845438-2f6d-4c87-9216-88da6692dc2b", name: "small_net_2", cpu: 1, memory: 128, price: 10 },
  { id: "9b1c1f8e-0d4e-4f37-a7a3-0f3c1d6b2c11", name: "small_net", cpu: 1, memory: 512, price: 20 },
  { id: "a3d7e2c4-5f6b-4a81-9c2d-7e8f9a0b1c2d", name: "medium_net", cpu: 2, memory: 2048, price: 60 },
  { id: "b4e8f3d5-6a7c-4b92-8d3e-8f9a0b1c2d3e", name: "large_net", cpu: 4, memory: 8192, price: 200 },
] as const;
export const MOS_TEMPLATES = [
  { id: "019c6db6-55fa-443d-ac0c-182e3379d175", name: "turnkey-core-12.0-squeeze-x86.qcow2" },
  { id: "d1620e45-c561-42e7-a2a4-53ae0a389bb9", name: "centos-6.4-x86_64.qcow2" },
  { id: "5c0e8f2a-1b3d-4e6f-8a9b-0c1d2e3f4a5b", name: "ubuntu-12.04-amd64.qcow2" },
] as const;

interface Vm {
  instanceId: string;
  instanceName: string;
  instanceTypeId: string;
  instanceType: string;
  status: string;
  cpu: number;
  memory: number;
  volume: number;
  ipAddresses: string;
  imageId: string;
  keyName: string;
  metadata: Record<string, string>;
  expireAt: number;
  timer?: NodeJS.Timeout | undefined;
}

export interface MosSimulator extends Simulator {
  balance: number;
  mutate(id: string, change: Partial<Pick<Vm, "status" | "instanceType" | "expireAt">>): void;
  keyPairs(): { keyName: string; publicKey: string }[];
  /** Requests refused for a bad signature or a stale timestamp. */
  readonly rejectedSignatures: number;
}

/** The document's XML shape: an element per key, a repeated element per list item. */
function toXml(name: string, value: unknown): string {
  if (Array.isArray(value)) return value.map((v) => toXml(name, v)).join("");
  if (typeof value === "object" && value !== null)
    return `<${name}>${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => toXml(k, v))
      .join("")}</${name}>`;
  const text = (
    typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? String(value) : ""
  ).replace(/[<>&]/g, (c) => (c === "<" ? "&lt;" : c === ">" ? "&gt;" : "&amp;"));
  return `<${name}>${text}</${name}>`;
}

function durationMonths(d: string): number | undefined {
  const m = /^([1-9]\d*)([HM])$/.exec(d);
  if (!m) return undefined;
  return m[2] === "M" ? Number(m[1]) : Number(m[1]) / 720;
}

export async function startMosSimulator(
  opts: {
    faults?: Partial<FaultKnobs>;
    profile?: SimProfile;
    accessKeyId?: string;
    secretAccessKey?: string;
    balance?: number;
    /** Clock of the service, to test stale timestamps. */
    now?: () => number;
  } = {},
): Promise<MosSimulator> {
  const accessKeyId = opts.accessKeyId ?? "4ba303cc17454cc7904e044db2a3c912";
  const secret = opts.secretAccessKey ?? "mos-sim-secret/K7MDENG+bPxRfiCY";
  const now = opts.now ?? Date.now;
  const injector = new FaultInjector(opts.faults);
  const vms = new Map<string, Vm>();
  const byName = new Map<string, Set<string>>();
  const keys = new Map<string, string>();
  const counts = new Map<string, number>();
  const state = { balance: opts.balance ?? 100_000, rejected: 0 };
  let ipSeq = 0;

  const send = (res: ServerResponse, status: number, format: string, root: string, body: unknown): void => {
    const payload =
      format === "json"
        ? JSON.stringify({ [root]: body })
        : `<?xml version="1.0" encoding="utf-8"?>${toXml(root, body)}`;
    res.writeHead(status, {
      "content-type": format === "json" ? "application/json" : "application/xml",
      "content-length": Buffer.byteLength(payload),
    });
    res.end(payload);
  };
  const fail = (res: ServerResponse, format: string, status: number, message: string): void =>
    send(res, status, format, "ErrorResponse", { Error: { message, code: status } });

  const later = (vm: Vm, status: string): void => {
    clearTimeout(vm.timer);
    vm.timer = setTimeout(() => {
      vm.timer = undefined;
      vm.status = status;
      if (status === "terminated") {
        vms.delete(vm.instanceId);
        byName.get(vm.instanceName)?.delete(vm.instanceId);
      }
    }, injector.knobs.transitionMs);
  };
  const view = (vm: Vm): Record<string, unknown> => ({
    instanceId: vm.instanceId,
    instanceName: vm.instanceName,
    instanceType: vm.instanceType,
    instanceTypeId: vm.instanceTypeId,
    status: vm.status,
    cpu: vm.cpu,
    memory: vm.memory,
    volume: vm.volume,
    ipAddresses: vm.ipAddresses,
  });
  const charge = (res: ServerResponse, format: string, price: number, duration: string): boolean => {
    const months = durationMonths(duration);
    if (months === undefined) {
      fail(res, format, 400, `Invalid Duration ${duration}`);
      return false;
    }
    const cost = Math.round(price * months * 100) / 100;
    if (state.balance < cost) {
      fail(res, format, 406, "No enough balance");
      return false;
    }
    state.balance = Math.round((state.balance - cost) * 100) / 100;
    return true;
  };
  /** Lists with Limit/Offset and Filter.n.Name / Filter.n.Value.m. */
  const page = <T>(
    p: URLSearchParams,
    rows: T[],
    field: (row: T, name: string) => string | undefined,
  ): { rows: T[]; total: number; limit: number; offset: number } => {
    let out = rows;
    for (let n = 1; p.has(`Filter.${String(n)}.Name`); n++) {
      const name = p.get(`Filter.${String(n)}.Name`) ?? "";
      const values: string[] = [];
      for (let m = 1; p.has(`Filter.${String(n)}.Value.${String(m)}`); m++)
        values.push(p.get(`Filter.${String(n)}.Value.${String(m)}`) ?? "");
      out = out.filter((r) => values.includes(field(r, name) ?? ""));
    }
    const offset = Math.max(0, Number(p.get("Offset") ?? 0) || 0);
    const limit = Math.max(1, Number(p.get("Limit") ?? 100) || 100);
    return { rows: out.slice(offset, offset + limit), total: out.length, limit, offset };
  };

  async function handle(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    await Promise.resolve();
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "127.0.0.1"}`);
    const p = method === "POST" ? new URLSearchParams(body) : url.searchParams;
    const action = p.get("Action") ?? "";
    countRequest(counts, action);
    const format = p.get("Format") === "json" ? "json" : "xml";
    const decision = injector.decide(p.get("AWSAccessKeyId") ?? "", action);
    if (applyConnectionFault(decision, res)) return;
    if (decision.kind === "rateLimited") {
      res.setHeader("Retry-After", String(decision.retryAfterSeconds ?? 1));
      fail(res, format, 429, "Request rate exceeded");
      return;
    }
    if (decision.kind === "error") {
      fail(res, format, 503, "Service temporarily unavailable");
      return;
    }

    // Authentication first, answered in XML (see the header comment).
    const params = [...p.entries()];
    const sigMethod = p.get("SignatureMethod") as SignatureMethod | null;
    const stamp = Date.parse(p.get("Timestamp") ?? "");
    if (p.get("AWSAccessKeyId") !== accessKeyId) {
      state.rejected++;
      fail(res, "xml", 401, "Invalid AWSAccessKeyId");
      return;
    }
    if (p.get("SignatureVersion") !== "2" || (sigMethod !== "HmacSHA256" && sigMethod !== "HmacSHA1")) {
      state.rejected++;
      fail(res, "xml", 403, "Unsupported SignatureVersion or SignatureMethod");
      return;
    }
    const expected = signature(secret, sigMethod, stringToSign(method, url, params));
    if (p.get("Signature") !== expected) {
      state.rejected++;
      fail(res, "xml", 403, "Signature does not match");
      return;
    }
    if (Number.isNaN(stamp) || Math.abs(now() - stamp) > 15 * 60_000) {
      state.rejected++;
      fail(res, "xml", 403, "Request has expired: Timestamp is more than 15 minutes off");
      return;
    }

    const ok = (b: unknown): void => send(res, 200, format, `${action}Response`, b);
    const done = (): void => ok({ return: "True" });
    const vm = (): Vm | undefined => {
      const id = p.get("InstanceId") ?? "";
      const found = vms.get(id) ?? [...(byName.get(id) ?? [])].map((x) => vms.get(x)).find(Boolean);
      if (!found) fail(res, format, 404, `Instance ${id} not found`);
      return found;
    };
    const need = (v: Vm, states: string[]): boolean => {
      if (states.includes(v.status)) return true;
      fail(res, format, 409, `Instance ${v.instanceId} is ${v.status}`);
      return false;
    };

    switch (action) {
      case "DescribeTemplates": {
        ok({
          TemplateSet: {
            Template: MOS_TEMPLATES.map((t) => ({
              status: "active",
              checksum: "952a921243eecf2f457b82051e880558",
              templateId: t.id,
              size: 187367424,
              templateName: t.name,
            })),
          },
        });
        return;
      }
      case "DescribeInstanceTypes": {
        const r = page(p, [...MOS_TYPES], (t, n) => (n === "name" ? t.name : undefined));
        ok({
          InstanceTypeSet: {
            Total: r.total,
            Limit: r.limit,
            Offset: r.offset,
            InstanceType: r.rows.map((t) => ({
              instanceTypeId: t.id,
              instanceType: t.name,
              cpu: t.cpu,
              memory: t.memory,
              volume: 20480,
              internalBandwidth: 200,
              externalBandwidth: 2,
            })),
          },
        });
        return;
      }
      case "GetBalance": {
        ok({ timestamp: new Date(now()).toISOString(), balance: state.balance });
        return;
      }
      case "DescribeKeyPairs": {
        const r = page(p, [...keys.keys()], (k, n) => (n === "name" ? k : undefined));
        ok({
          KeyPairSet: {
            Total: r.total,
            KeyPair: r.rows.map((k) => ({
              keyId: k,
              keyName: k,
              keyFingerprint: "0a:43:d9:7b:17:a1:24:26:9a:0e:ce:dc:f4:0a:03:44",
            })),
          },
        });
        return;
      }
      case "ImportKeyPair": {
        const name = p.get("KeyName") ?? "";
        const material = p.get("PublicKeyMaterial") ?? "";
        if (name === "" || !/^(ssh-|ecdsa-)/.test(material)) {
          fail(res, format, 400, "Invalid KeyName or PublicKeyMaterial");
          return;
        }
        if (keys.has(name)) {
          fail(res, format, 409, `KeyPair ${name} already exists`);
          return;
        }
        keys.set(name, material);
        ok({
          KeyPair: {
            keyId: randomUUID(),
            keyName: name,
            keyFingerprint: "0a:43:d9:7b:17:a1:24:26:9a:0e:ce:dc:f4:0a:03:44",
          },
        });
        return;
      }
      case "DeleteKeyPair":
        if (!keys.delete(p.get("KeyName") ?? "")) {
          fail(res, format, 404, "KeyPair not found");
          return;
        }
        {
          done();
          return;
        }
      case "DescribeInstances": {
        let rows = [...vms.values()];
        const ids = params.filter(([k]) => /^InstanceId\.\d+$/.test(k)).map(([, v]) => v);
        const names = params.filter(([k]) => /^InstanceName\.\d+$/.test(k)).map(([, v]) => v);
        if (ids.length > 0) rows = ids.map((i) => vms.get(i)).filter((v): v is Vm => v !== undefined);
        if (names.length > 0)
          rows = names
            .flatMap((n) => [...(byName.get(n) ?? [])])
            .map((i) => vms.get(i))
            .filter((v): v is Vm => v !== undefined);
        const r = page(p, rows, (v, n) =>
          n === "name" ? v.instanceName : n === "status" ? v.status : undefined,
        );
        ok({
          InstanceSet: { Instance: r.rows.map(view), Total: r.total, Limit: r.limit, Offset: r.offset },
        });
        return;
      }
      case "DescribeInstanceStatus": {
        const v = vm();
        if (!v) return;
        ok({ InstanceStatus: { status: v.status } });
        return;
      }
      case "GetInstanceContractInfo": {
        const v = vm();
        if (!v) return;
        ok({
          startedAt: new Date(v.expireAt - 30 * 86_400_000).toISOString(),
          expireAt: new Date(v.expireAt).toISOString(),
          extendTo: new Date(v.expireAt + 86_400_000).toISOString(),
        });
        return;
      }
      case "CreateInstance": {
        const type = MOS_TYPES.find(
          (t) => t.id === p.get("InstanceType") || t.name === p.get("InstanceType"),
        );
        if (!type) {
          fail(res, format, 400, `Invalid InstanceType ${p.get("InstanceType") ?? ""}`);
          return;
        }
        const template = MOS_TEMPLATES.find((t) => t.id === p.get("ImageId"));
        if (!template) {
          fail(res, format, 400, `Invalid ImageId ${p.get("ImageId") ?? ""}`);
          return;
        }
        const keyName = p.get("KeyName") ?? "";
        if (keyName !== "" && !keys.has(keyName)) {
          fail(res, format, 400, `KeyPair ${keyName} not found`);
          return;
        }
        const duration = p.get("Duration") ?? "1M";
        if (!charge(res, format, type.price, duration)) return;
        const id = randomUUID();
        const n = ++ipSeq;
        const v: Vm = {
          instanceId: id,
          instanceName: p.get("InstanceName") ?? `vm-${String(n)}`,
          instanceTypeId: type.id,
          instanceType: type.name,
          status: "pending",
          cpu: type.cpu,
          memory: type.memory,
          volume: 20480,
          ipAddresses: `10.168.${String((n >> 8) & 255)}.${String(n & 255)} 103.37.${String((n >> 8) & 255)}.${String(n & 255)}`,
          imageId: template.id,
          keyName,
          metadata: {},
          expireAt: now() + (durationMonths(duration) ?? 1) * 30 * 86_400_000,
        };
        vms.set(id, v);
        const set = byName.get(v.instanceName) ?? new Set<string>();
        set.add(id);
        byName.set(v.instanceName, set);
        later(v, "running");
        ok({ Instance: view(v) });
        return;
      }
      case "StartInstance": {
        const v = vm();
        if (!v || !need(v, ["ready"])) return;
        v.status = "starting";
        later(v, "running");
        done();
        return;
      }
      case "StopInstance": {
        const v = vm();
        if (!v || !need(v, ["running", ...(p.get("Force") === "true" ? ["stopping", "starting"] : [])]))
          return;
        if (p.get("Force") === "true") {
          clearTimeout(v.timer);
          v.status = "ready";
        } else {
          v.status = "stopping";
          later(v, "ready");
        }
        done();
        return;
      }
      case "RebootInstance": {
        const v = vm();
        if (!v || !need(v, ["running"])) return;
        v.status = "rebooting";
        later(v, "running");
        done();
        return;
      }
      case "RebuildInstanceRootImage": {
        const v = vm();
        if (!v || !need(v, ["running", "ready"])) return;
        const image = p.get("ImageId") ?? v.imageId;
        if (!MOS_TEMPLATES.some((t) => t.id === image)) {
          fail(res, format, 400, `Invalid ImageId ${image}`);
          return;
        }
        const back = v.status;
        v.imageId = image;
        v.status = "rebuilding";
        later(v, back);
        done();
        return;
      }
      case "ChangeInstanceType": {
        const v = vm();
        if (!v || !need(v, ["running", "ready"])) return;
        const type = MOS_TYPES.find(
          (t) => t.id === p.get("InstanceType") || t.name === p.get("InstanceType"),
        );
        if (!type) {
          fail(res, format, 400, `Invalid InstanceType ${p.get("InstanceType") ?? ""}`);
          return;
        }
        if (!charge(res, format, type.price, p.get("Duration") ?? "1M")) return;
        const back = v.status;
        Object.assign(v, {
          instanceType: type.name,
          instanceTypeId: type.id,
          cpu: type.cpu,
          memory: type.memory,
        });
        v.status = "resizing";
        later(v, back);
        done();
        return;
      }
      case "RenewInstance": {
        const v = vm();
        if (!v) return;
        const type = MOS_TYPES.find((t) => t.id === v.instanceTypeId);
        const duration = p.get("Duration") ?? "1M";
        if (!charge(res, format, type?.price ?? 0, duration)) return;
        v.expireAt += (durationMonths(duration) ?? 1) * 30 * 86_400_000;
        if (v.status === "suspend") v.status = "ready";
        done();
        return;
      }
      case "TerminateInstance": {
        const v = vm();
        if (!v) return;
        if (v.status !== "terminating") {
          v.status = "terminating";
          later(v, "terminated");
        }
        done();
        return;
      }
      case "GetInstanceMetadata": {
        const v = vm();
        if (!v) return;
        ok({ InstanceMetadata: { os_name: "Linux", ...v.metadata } });
        return;
      }
      case "PutInstanceMetadata": {
        const v = vm();
        if (!v) return;
        for (let n = 1; p.has(`Name.${String(n)}`); n++)
          v.metadata[p.get(`Name.${String(n)}`) ?? ""] = p.get(`Value.${String(n)}`) ?? "";
        done();
        return;
      }
      default: {
        fail(res, format, 400, `Unknown Action ${action}`);
        return;
      }
    }
  }

  const server = await listen(handle, () => injector.knobs.latencyMs);
  return {
    provider: "mos",
    profile: opts.profile ?? "default",
    url: `${server.url}/`,
    credentials: { accessKeyId, secretAccessKey: secret },
    faults: injector.knobs,
    requestCounts: counts,
    get balance() {
      return state.balance;
    },
    set balance(v: number) {
      state.balance = v;
    },
    get rejectedSignatures() {
      return state.rejected;
    },
    vms(): SimVm[] {
      return [...vms.values()].map((v) => ({
        id: v.instanceId,
        ownerUID: v.instanceName.startsWith("cio-") ? v.instanceName.slice(4) : undefined,
        status: v.status,
        plan: v.instanceType,
        image: v.imageId,
      }));
    },
    mutate(id, change) {
      const v = vms.get(id);
      if (v) Object.assign(v, change);
    },
    keyPairs: () => [...keys.entries()].map(([keyName, publicKey]) => ({ keyName, publicKey })),
    async close() {
      for (const v of vms.values()) clearTimeout(v.timer);
      await server.close();
    },
  };
}
