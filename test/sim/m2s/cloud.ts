/**
 * The m2s API's behaviour behind the HTTP plumbing of index.ts: the VMs, their transitions and
 * the answer to each documented call, in the words of one profile (see index.ts for the choices).
 */
import type { ServerResponse } from "node:http";
import { sendJson, type FaultKnobs, type SimProfile, type SimVm } from "../common.ts";
import { M2S_IMAGES, M2S_PLANS, M2S_REGIONS, viewsFor, type M2sViews, type VmRecord } from "./views.ts";

const ACTIONS = new Set(["start", "stop", "poweroff", "reboot", "rebuild"]);

/** The list's paging: as documented, never ending, or stuck on page 1 (test knobs, see index.ts). */
export type ListPaging = "documented" | "endless" | "stuck";

export class M2sCloud {
  readonly views: M2sViews;
  readonly #profile: SimProfile;
  readonly #knobs: FaultKnobs;
  readonly #listing: { paging: ListPaging };
  readonly #vms = new Map<string, VmRecord>();
  readonly #transitions: { resize: string; rebuild: string; deleting: string | undefined };
  #seq = 0;

  constructor(profile: SimProfile, knobs: FaultKnobs, listing: { paging: ListPaging }) {
    this.#profile = profile;
    this.#knobs = knobs;
    this.#listing = listing;
    this.views = viewsFor(profile);
    this.#transitions =
      profile === "strict"
        ? { resize: "rebooting", rebuild: "provisioning", deleting: undefined }
        : { resize: "resizing", rebuild: "rebuilding", deleting: "deleting" };
  }

  route(method: string, path: string, url: URL, json: Record<string, unknown>, res: ServerResponse): void {
    const error = this.views.error;
    if (path === "/v1/instances" && method === "GET") return this.#list(url, res);
    if (path === "/v1/instances" && method === "POST") return this.#create(json, res);
    const m = /^\/v1\/instances\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (!m?.[1]) return error(res, 404, "not_found", "Ressource introuvable");
    const action = m[2];
    if (this.#undocumented(res, method, action)) return;
    const vm = this.#vms.get(m[1]);
    if (!vm || vm.status === "deleted") return error(res, 404, "not_found", `Instance ${m[1]} introuvable`);
    if (action !== undefined) return this.#act(vm, action, json, res);
    if (method === "GET") {
      sendJson(res, 200, { data: this.views.one(vm, url.searchParams.get("include") === "metrics") });
      return;
    }
    if (method === "PATCH") return this.#patch(vm, json, res);
    const deleting = this.#transitions.deleting;
    if (deleting === undefined) this.remove(vm.id);
    else if (vm.status !== deleting) {
      vm.status = deleting;
      this.#later(vm, "deleted", () => this.remove(vm.id));
    }
    this.views.deleted(res, vm);
  }

  /** VMs that exist, as tests see them. */
  list(): SimVm[] {
    return [...this.#vms.values()]
      .filter((v) => v.status !== "deleted")
      .map((v) => ({
        id: v.id,
        ownerUID: v.tags.find((t) => t.startsWith("cio-owner:"))?.slice("cio-owner:".length),
        status: v.status,
        plan: v.plan,
        image: v.image,
        region: v.region,
      }));
  }

  mutate(id: string, change: Partial<VmRecord>): void {
    const vm = this.#vms.get(id);
    if (vm) Object.assign(vm, change);
  }

  /** A VM's whole record (a copy, no timer), for benches that clone it (see `seed`). */
  record(id: string): VmRecord | undefined {
    const vm = this.#vms.get(id);
    if (!vm) return undefined;
    const { timer: _t, ...rest } = vm;
    return structuredClone(rest);
  }

  /** Stores settled VMs as they are (no transition pending), bypassing the API. */
  seed(vms: readonly VmRecord[]): void {
    for (const vm of vms) this.#vms.set(vm.id, { ...vm, timer: undefined });
  }

  remove(id: string): void {
    clearTimeout(this.#vms.get(id)?.timer);
    this.#vms.delete(id);
  }

  close(): void {
    for (const v of this.#vms.values()) clearTimeout(v.timer);
  }

  #later(vm: VmRecord, status: string, then?: () => void): void {
    clearTimeout(vm.timer);
    vm.timer = setTimeout(() => {
      vm.timer = undefined;
      vm.status = status;
      vm.updated_at = new Date().toISOString();
      then?.();
    }, this.#knobs.transitionMs);
  }

  /** Answers what is not a documented (method, path) pair; returns true when it did. */
  #undocumented(res: ServerResponse, method: string, action: string | undefined): boolean {
    const allowed = action === undefined ? ["GET", "PATCH", "DELETE"] : ["POST"];
    if (action !== undefined && !ACTIONS.has(action)) {
      this.views.error(res, 404, "not_found", "Ressource introuvable");
      return true;
    }
    if (allowed.includes(method)) return false;
    if (this.#profile === "strict") this.views.error(res, 404, "not_found", "Ressource introuvable");
    else this.views.error(res, 405, "method_not_allowed", "Méthode non autorisée");
    return true;
  }

  #list(url: URL, res: ServerResponse): void {
    const asked = Math.max(1, Number(url.searchParams.get("page") ?? 1) || 1);
    const paging = this.#listing.paging;
    const page = paging === "stuck" ? 1 : asked;
    const limit = Math.min(100, Math.max(1, Number(url.searchParams.get("limit") ?? 20) || 20));
    const status = url.searchParams.get("status");
    const region = url.searchParams.get("region");
    const all = [...this.#vms.values()].filter(
      (v) => v.status !== "deleted" && (!status || v.status === status) && (!region || v.region === region),
    );
    const data = all.slice((page - 1) * limit, page * limit).map((v) => this.views.listItem(v));
    if (paging === "endless" && data.length === 0) data.push(this.#phantom(asked, region));
    const totalPages = Math.max(1, Math.ceil(all.length / limit));
    sendJson(res, 200, {
      data,
      pagination: {
        page,
        limit,
        total: all.length,
        total_pages:
          paging === "endless" ? asked + 1 : paging === "stuck" ? Math.max(2, totalPages) : totalPages,
      },
    });
  }

  /** A list item of the endless list past the real VMs: a fresh id per page, never readable. */
  #phantom(page: number, region: string | null): Record<string, unknown> {
    const at = new Date(0).toISOString();
    return this.views.listItem({
      id: `i-endless${String(page)}`,
      name: `endless-${String(page)}`,
      status: "running",
      plan: "starter",
      region: region ?? "fr-par-1",
      image: "debian-12",
      ip_address: "192.0.2.1",
      ipv6_address: "2001:db8::1",
      tags: [],
      ssh_keys: [],
      backup_enabled: false,
      monitoring_enabled: false,
      private_network: null,
      created_at: at,
      updated_at: at,
    });
  }

  #valid(json: Record<string, unknown>, res: ServerResponse): boolean {
    const error = this.views.error;
    if (json.plan !== undefined && !M2S_PLANS.includes(json.plan as never)) {
      error(
        res,
        422,
        "invalid_plan",
        `Plan inconnu: ${JSON.stringify(json.plan)}. Plans disponibles: ${M2S_PLANS.join(", ")}`,
      );
      return false;
    }
    if (json.image !== undefined && !M2S_IMAGES.includes(json.image as never)) {
      error(res, 422, "invalid_image", `Image inconnue: ${JSON.stringify(json.image)}`);
      return false;
    }
    if (json.region !== undefined && !M2S_REGIONS.includes(json.region as never)) {
      error(res, 422, "invalid_region", `Région inconnue: ${JSON.stringify(json.region)}`);
      return false;
    }
    return true;
  }

  #create(json: Record<string, unknown>, res: ServerResponse): void {
    for (const f of ["name", "plan", "region", "image"]) {
      if (typeof json[f] !== "string")
        return this.views.error(res, 422, "missing_field", `Champ requis manquant: ${f}`);
    }
    if (!this.#valid(json, res)) return;
    const n = ++this.#seq;
    const now = new Date().toISOString();
    const vm: VmRecord = {
      id: `i-${n.toString(36).padStart(6, "0")}`,
      name: json.name as string,
      status: "provisioning",
      plan: json.plan as string,
      region: json.region as string,
      image: json.image as string,
      ip_address: `51.15.${String((n >> 8) & 255)}.${String(n & 255)}`,
      ipv6_address: `2001:bc8:1234::${n.toString(16)}`,
      tags: Array.isArray(json.tags) ? json.tags.map(String) : [],
      ssh_keys: Array.isArray(json.ssh_keys) ? json.ssh_keys.map(String) : [],
      backup_enabled: json.backup_enabled === true,
      monitoring_enabled: json.monitoring_enabled === true,
      private_network: typeof json.private_network === "string" ? json.private_network : null,
      created_at: now,
      updated_at: now,
    };
    this.#vms.set(vm.id, vm);
    this.#later(vm, "running");
    this.#knobs.onCreated(vm.id);
    sendJson(res, 201, {
      data: this.views.created(vm),
      message: "Instance en cours de création. Comptez 2-3 minutes.",
    });
  }

  #patch(vm: VmRecord, json: Record<string, unknown>, res: ServerResponse): void {
    if (!this.#valid({ plan: json.plan }, res)) return;
    if (json.tags !== undefined && !Array.isArray(json.tags))
      return this.views.error(res, 422, "invalid_tags", "tags doit être une liste");
    if (typeof json.plan === "string" && json.plan !== vm.plan) {
      if (!["running", "stopped"].includes(vm.status))
        return this.views.error(res, 409, "busy", `Instance ${vm.status}`);
      vm.plan = json.plan;
      if (vm.status === "running" && json.reboot !== false) {
        vm.status = this.#transitions.resize;
        this.#later(vm, "running");
      }
    }
    if (Array.isArray(json.tags)) vm.tags = json.tags.map(String);
    if (typeof json.backup_enabled === "boolean") vm.backup_enabled = json.backup_enabled;
    if (typeof json.monitoring_enabled === "boolean") vm.monitoring_enabled = json.monitoring_enabled;
    vm.updated_at = new Date().toISOString();
    this.views.patched(res, vm);
  }

  /** The state each action starts from, and what it turns the VM into. */
  #act(vm: VmRecord, action: string, json: Record<string, unknown>, res: ServerResponse): void {
    const from: Record<string, string[]> = {
      start: ["stopped"],
      stop: ["running"],
      poweroff: ["running", "stopping", "starting"],
      reboot: ["running"],
      rebuild: ["running", "stopped"],
    };
    if (!(from[action] ?? []).includes(vm.status))
      return this.views.error(
        res,
        409,
        "invalid_state",
        `Action ${action} impossible: instance ${vm.status}`,
      );
    if (action === "rebuild") {
      if (typeof json.image !== "string")
        return this.views.error(res, 422, "missing_field", "Champ requis manquant: image");
      if (!this.#valid({ image: json.image }, res)) return;
      const after = vm.status;
      vm.image = json.image;
      vm.status = this.#transitions.rebuild;
      this.#later(vm, after);
    } else if (action === "poweroff") {
      clearTimeout(vm.timer);
      vm.status = "stopped";
    } else {
      const [passing, settled] =
        action === "start"
          ? ["starting", "running"]
          : action === "stop"
            ? ["stopping", "stopped"]
            : ["rebooting", "running"];
      vm.status = passing;
      this.#later(vm, settled);
    }
    vm.updated_at = new Date().toISOString();
    this.views.accepted(res, vm, action);
  }
}
