import type { ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import type { MosProfile } from "./profile.ts";
import { MOS_TEMPLATES, MOS_TYPES, page, send, sendError, type Format, type ListFault } from "./views.ts";

const fingerprint = "0a:43:d9:7b:17:a1:24:26:9a:0e:ce:dc:f4:0a:03:44";

export interface AccountState {
  profile: MosProfile;
  keys: Map<string, string>;
  state: { balance: number };
  now: () => number;
  /** How DescribeInstanceTypes pages (see ListFault). */
  listFault: () => ListFault;
}

/** Catalogue and account actions (no instance involved): true when `action` was one and is answered. */
export function accountAction(
  action: string,
  p: URLSearchParams,
  format: Format,
  res: ServerResponse,
  { profile, keys, state, now, listFault }: AccountState,
): boolean {
  const ok = (b: unknown): void => send(res, 200, format, `${action}Response`, b);
  switch (action) {
    case "DescribeTemplates":
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
      return true;
    case "DescribeInstanceTypes": {
      const r = page<{ id: string; name: string; cpu: number; memory: number }>(
        p,
        MOS_TYPES,
        (t, n) => (n === "name" ? t.name : undefined),
        profile.defaultLimit,
        {
          mode: listFault(),
          filler: (n) => ({ ...MOS_TYPES[0], id: `f${String(n)}`, name: `filler_${String(n)}` }),
        },
      );
      const rows = r.rows.map((t) => ({
        instanceTypeId: t.id,
        instanceType: t.name,
        cpu: t.cpu,
        memory: t.memory,
        volume: 20480,
        internalBandwidth: 200,
        externalBandwidth: 2,
      }));
      ok({ InstanceTypeSet: { Total: r.total, Limit: r.limit, Offset: r.offset, InstanceType: rows } });
      return true;
    }
    case "GetBalance":
      ok({ timestamp: new Date(now()).toISOString(), balance: state.balance });
      return true;
    case "DescribeKeyPairs": {
      const r = page(p, [...keys.keys()], (k, n) => (n === "name" ? k : undefined), profile.defaultLimit);
      const rows = r.rows.map((k) => ({ keyId: k, keyName: k, keyFingerprint: fingerprint }));
      ok({ KeyPairSet: { Total: r.total, Limit: r.limit, Offset: r.offset, KeyPair: rows } });
      return true;
    }
    case "ImportKeyPair": {
      const name = p.get("KeyName") ?? "";
      const material = p.get("PublicKeyMaterial") ?? "";
      if (name === "" || !/^(ssh-|ecdsa-)/.test(material))
        sendError(res, format, 400, "Invalid KeyName or PublicKeyMaterial");
      else if (keys.has(name)) sendError(res, format, profile.conflict, `KeyPair ${name} already exists`);
      else {
        keys.set(name, material);
        ok({ KeyPair: { keyId: randomUUID(), keyName: name, keyFingerprint: fingerprint } });
      }
      return true;
    }
    case "DeleteKeyPair":
      if (keys.delete(p.get("KeyName") ?? "")) ok({ return: "True" });
      else sendError(res, format, profile.notFound, "KeyPair not found");
      return true;
    default:
      return false;
  }
}
