import { sendJson } from "../common.ts";
import { allowed, type Ask } from "./scalets.ts";
import { VSCALE_IMAGES, VSCALE_LOCATIONS, VSCALE_RPLANS, type VscaleAccount } from "./state.ts";

/**
 * What the default profile serves beyond the document, after Vscale's API reference and the
 * public clients (go-vscale, the ansible modules): catalogues, SSH keys, tags and rebuild.
 */
export function handleExtras(acc: VscaleAccount, ask: Ask): boolean {
  const [resource, a] = ask.parts;
  if (ask.method === "GET" && a === undefined && catalogue(resource, ask)) return true;
  if (resource === "sshkeys") return sshKeys(acc, ask);
  if (resource === "scalets" && a === "tags") return tags(acc, ask);
  if (resource === "scalets" && ask.parts[2] === "rebuild" && ask.parts[3] === undefined) {
    const s = acc.scalets.get(Number(a));
    if (ask.method !== "PATCH") acc.fail(ask.res, 405, "Method not allowed");
    else if (!s || s.deleted !== null) acc.fail(ask.res, 404, "Scalet not found");
    else if (allowed(acc, s, ask.res, "any"))
      acc.operate(s, "scalet_rebuild", ask.res, () => {
        s.status = "started";
        s.active = true;
      });
    return true;
  }
  return false;
}

/** CentOS is not offered on the smallest rplan, so a cross-field refusal exists to test. */
const offered = (image: string, rplan: string): boolean => !(image.startsWith("centos") && rplan === "small");

function catalogue(resource: string | undefined, { res }: Ask): boolean {
  const rplans = VSCALE_RPLANS.map((r) => r.id);
  if (resource === "rplans")
    sendJson(
      res,
      200,
      VSCALE_RPLANS.map((r) => ({ ...r, locations: [...VSCALE_LOCATIONS], templates: [...VSCALE_IMAGES] })),
    );
  else if (resource === "images")
    sendJson(
      res,
      200,
      VSCALE_IMAGES.map((id) => ({
        id,
        description: id.replace(/_/g, " "),
        active: true,
        size: 20480,
        locations: [...VSCALE_LOCATIONS],
        rplans: rplans.filter((r) => offered(id, r)),
      })),
    );
  else if (resource === "locations")
    sendJson(
      res,
      200,
      VSCALE_LOCATIONS.map((id) => ({
        id,
        description: id === "spb0" ? "Санкт-Петербург" : "Москва",
        active: true,
        private_networking: false,
        rplans,
        templates: [...VSCALE_IMAGES],
      })),
    );
  else return false;
  return true;
}

function sshKeys(acc: VscaleAccount, { method, parts, json, res }: Ask): boolean {
  const [, a, extra] = parts;
  if (extra !== undefined) return false;
  if (method === "GET" && a === undefined) sendJson(res, 200, [...acc.keys.values()]);
  else if (method === "POST" && a === undefined) {
    if (typeof json.key !== "string" || !/^(ssh-|ecdsa-)/.test(json.key))
      acc.fail(res, 400, "Invalid key", "key");
    else if (typeof json.name !== "string" || json.name === "")
      acc.fail(res, 400, "Name is required", "name");
    else {
      const k = { id: ++acc.keySeq, name: json.name, key: json.key };
      acc.keys.set(k.id, k);
      sendJson(res, 201, k);
    }
  } else if (method === "DELETE" && a !== undefined) {
    if (acc.keys.delete(Number(a))) sendJson(res, 204, {});
    else acc.fail(res, 404, "Key not found");
  } else acc.fail(res, 405, "Method not allowed");
  return true;
}

function tags(acc: VscaleAccount, { method, parts, json, res }: Ask): boolean {
  const [, , b, extra] = parts;
  if (extra !== undefined) return false;
  const members = (v: unknown): number[] | undefined =>
    Array.isArray(v) && v.every((x) => typeof x === "number" && acc.scalets.has(x))
      ? [...new Set(v as number[])]
      : undefined;
  if (b === undefined) {
    if (method === "GET") {
      sendJson(res, 200, [...acc.tags.values()]);
      return true;
    }
    if (method !== "POST") {
      acc.fail(res, 405, "Method not allowed");
      return true;
    }
    const scalets = members(json.scalets ?? []);
    if (typeof json.name !== "string" || json.name === "") acc.fail(res, 400, "Name is required", "name");
    else if ([...acc.tags.values()].some((t) => t.name === json.name))
      acc.fail(res, 400, "Tag already exists", "name");
    else if (!scalets) acc.fail(res, 400, "Unknown scalet", "scalets");
    else {
      const t = { id: acc.tagSeq++, name: json.name, scalets };
      acc.tags.set(t.id, t);
      sendJson(res, 201, t);
    }
    return true;
  }
  const t = acc.tags.get(Number(b));
  if (!t) acc.fail(res, 404, "Tag not found");
  else if (method === "GET") sendJson(res, 200, t);
  else if (method === "DELETE") {
    acc.tags.delete(t.id);
    sendJson(res, 200, t);
  } else if (method === "PUT") {
    const scalets = members(json.scalets ?? t.scalets);
    if (!scalets) acc.fail(res, 400, "Unknown scalet", "scalets");
    else {
      if (typeof json.name === "string" && json.name !== "") t.name = json.name;
      t.scalets = scalets;
      sendJson(res, 200, t);
    }
  } else acc.fail(res, 405, "Method not allowed");
  return true;
}
