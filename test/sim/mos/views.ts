import type { ServerResponse } from "node:http";

/** Instance types: the document's example plus a few of the same shape; price per month. */
export const MOS_TYPES = [
  { id: "8e845438-2f6d-4c87-9216-88da6692dc2b", name: "small_net_2", cpu: 1, memory: 128, price: 10 },
  { id: "9b1c1f8e-0d4e-4f37-a7a3-0f3c1d6b2c11", name: "small_net", cpu: 1, memory: 512, price: 20 },
  { id: "a3d7e2c4-5f6b-4a81-9c2d-7e8f9a0b1c2d", name: "medium_net", cpu: 2, memory: 2048, price: 60 },
  { id: "b4e8f3d5-6a7c-4b92-8d3e-8f9a0b1c2d3e", name: "large_net", cpu: 4, memory: 8192, price: 200 },
] as const;
/** Templates: the document's two examples plus one of the same shape. */
export const MOS_TEMPLATES = [
  { id: "019c6db6-55fa-443d-ac0c-182e3379d175", name: "turnkey-core-12.0-squeeze-x86.qcow2" },
  { id: "d1620e45-c561-42e7-a2a4-53ae0a389bb9", name: "centos-6.4-x86_64.qcow2" },
  { id: "5c0e8f2a-1b3d-4e6f-8a9b-0c1d2e3f4a5b", name: "ubuntu-12.04-amd64.qcow2" },
] as const;

export type Format = "json" | "xml";

/** The document's XML shape: an element per key, a repeated element per list item. */
export function toXml(name: string, value: unknown): string {
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

/** An answer under `root`, in the format asked for (XML unless Format=json, as documented). */
export function send(res: ServerResponse, status: number, format: Format, root: string, body: unknown): void {
  const payload =
    format === "json"
      ? JSON.stringify({ [root]: body })
      : `<?xml version="1.0" encoding="utf-8"?>${toXml(root, body)}`;
  res.writeHead(status, {
    "content-type": format === "json" ? "application/json" : "application/xml",
    "content-length": Buffer.byteLength(payload),
  });
  res.end(payload);
}

/** The documented error body: `ErrorResponse.Error{message, code}`, code equal to the HTTP status. */
export function sendError(res: ServerResponse, format: Format, status: number, message: string): void {
  send(res, status, format, "ErrorResponse", { Error: { message, code: status } });
}

/** Months in a documented Duration (`72H`, `1M`), undefined when it is not one. */
export function durationMonths(d: string): number | undefined {
  const m = /^([1-9]\d*)([HM])$/.exec(d);
  if (!m) return undefined;
  return m[2] === "M" ? Number(m[1]) : Number(m[1]) / 720;
}

/** `Name.n` (or `InstanceId.n` …) values in order, n from 1. */
export function numbered(p: URLSearchParams, prefix: string): string[] {
  const out: string[] = [];
  for (let n = 1; p.has(`${prefix}.${String(n)}`); n++) out.push(p.get(`${prefix}.${String(n)}`) ?? "");
  return out;
}

/**
 * A list that misbehaves, for clients that must bound their paging (off by default; never the
 * document's behaviour): `endless` pads every page to `Limit` rows and always reports more
 * (`Total` past the page); `repeating` does the same and ignores `Offset`, so every page is the
 * first one again.
 */
export type ListFault = "none" | "endless" | "repeating";

/** A documented list: `Filter.n.Name` / `Filter.n.Value.m`, then `Offset` and `Limit`. */
export function page<T>(
  p: URLSearchParams,
  rows: readonly T[],
  field: (row: T, name: string) => string | undefined,
  defaultLimit: number,
  fault?: { mode: ListFault; filler: (n: number) => T },
): { rows: T[]; total: number; limit: number; offset: number } {
  let out = [...rows];
  for (let n = 1; p.has(`Filter.${String(n)}.Name`); n++) {
    const name = p.get(`Filter.${String(n)}.Name`) ?? "";
    const values = numbered(p, `Filter.${String(n)}.Value`);
    out = out.filter((r) => values.includes(field(r, name) ?? ""));
  }
  const asked = Math.max(0, Number(p.get("Offset") ?? 0) || 0);
  const offset = fault?.mode === "repeating" ? 0 : asked;
  const limit = Math.max(1, Number(p.get("Limit") ?? defaultLimit) || defaultLimit);
  if (fault === undefined || fault.mode === "none")
    return { rows: out.slice(offset, offset + limit), total: out.length, limit, offset };
  while (out.length < offset + limit) out.push(fault.filler(out.length));
  return { rows: out.slice(offset, offset + limit), total: offset + 2 * limit, limit, offset: asked };
}
