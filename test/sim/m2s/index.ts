import type { IncomingMessage, ServerResponse } from "node:http";
import {
  applyConnectionFault,
  countRequest,
  FaultInjector,
  listen,
  sendJson,
  type FaultKnobs,
  type SimProfile,
  type Simulator,
  type SimVm,
} from "../common.ts";
import { M2S_IMAGES, M2S_PLANS, M2S_REGIONS, viewsFor, type VmRecord } from "./views.ts";

export { M2S_IMAGES, M2S_PLANS, M2S_REGIONS };

/**
 * m2s simulator, after ../shared/providers/m2s.txt.
 *
 * strict (only what the document shows; a choice wherever it is silent):
 * - paths: `GET|POST /v1/instances`, `GET|PATCH|DELETE /v1/instances/:id`,
 *   `POST /v1/instances/:id/{start,stop,poweroff,reboot,rebuild}`; anything else (path or
 *   method) is 404, as for an unknown instance. Auth: `Authorization: Bearer <key>`, else 401.
 * - list items carry exactly `id, name, status, plan, region, ip_address, created_at,
 *   updated_at` (no tags, no image); `pagination {page, limit, total, total_pages}`; `limit`
 *   defaults to 20 and is capped at 100 (a choice); `status` and `region` filter.
 * - single reads carry exactly the document's fields (`id … tags, created_at`; no
 *   `updated_at`), `metrics` only with `?include=metrics`; `memory`/`vcpu` follow the plan table
 *   and `disk_size` doubles per plan from the example's 50 for business (a choice).
 * - the create answer is 201 with the document's `data {id, name, status: provisioning, plan,
 *   region, image, created_at}` and `message`; `ip_address` is null until the VM runs (a choice).
 * - no error envelope is documented: errors are `{"message": "…"}` in French, the one key the
 *   document's answers use beside `data`. 401 bad key, 404 unknown instance/path, 409 action in
 *   the wrong state, 422 bad field, 429 + `Retry-After: 1` rate limit, 503 injected faults.
 * - PATCH (plan, tags, backup_enabled, monitoring_enabled, reboot) answers 200 `{message}`,
 *   actions 202 `{message}`, DELETE 204 with no body: the document shows no answer for them.
 * - statuses: the documented `provisioning` -> `running` at create (transitionMs). The rest is
 *   chosen in the same words: stop `stopping` -> `stopped`; start `starting` -> `running`;
 *   poweroff `stopped` at once; reboot `rebooting` -> `running`; a plan change on a running VM
 *   reboots it (the document says so) `rebooting` -> `running`, unless `"reboot": false`
 *   (the plan is shown at once, no reboot); rebuild `provisioning` (a reinstall) -> the status
 *   it had; DELETE removes the VM at once (nothing async is documented for it): 404 afterwards.
 *   An action in a state it cannot start from is 409; a repeated DELETE of a gone VM is 404.
 * - plans: the document's four; images and regions: the examples' plus two.
 *
 * default adds (what the driver was first written against and what public REST APIs of this
 * kind do; the driver may use it but must not need it):
 * - list items also carry `tags` and `image` (recorded by the simulator's first author as the
 *   real API's full objects in lists; unverified against a live account);
 * - single reads and the create answer also carry `updated_at` and `private_network`;
 * - errors are `{"error": {"code", "message"}}` (the first envelope the shared README names);
 * - PATCH and actions answer the VM in `data`; DELETE answers 202 `{data, message}` and shows
 *   `deleting` for transitionMs before the VM is gone (a repeated DELETE does not restart it);
 * - transitional statuses `resizing` (plan change with reboot) and `rebuilding` (rebuild), the
 *   usual ones the shared README expects; a wrong method on a known path is 405.
 */

export interface M2sSimulator extends Simulator {
  /** Change a VM behind the operator's back (drift tests). */
  mutate(id: string, change: Partial<Pick<VmRecord, "status" | "plan" | "image" | "tags" | "name">>): void;
  /** Remove a VM behind the operator's back. */
  destroy(id: string): void;
}

const ACTIONS = new Set(["start", "stop", "poweroff", "reboot", "rebuild"]);

export async function startM2sSimulator(
  opts: { faults?: Partial<FaultKnobs>; profile?: SimProfile; apiKey?: string } = {},
): Promise<M2sSimulator> {
  const profile = opts.profile ?? "default";
  const views = viewsFor(profile);
  const transitions =
    profile === "strict"
      ? { resize: "rebooting", rebuild: "provisioning", deleting: undefined }
      : { resize: "resizing", rebuild: "rebuilding", deleting: "deleting" };
  const apiKey = opts.apiKey ?? "m2s-sim-key-0123456789";
  const injector = new FaultInjector(opts.faults);
  const vms = new Map<string, VmRecord>();
  const counts = new Map<string, number>();
  let seq = 0;
  const error = views.error;

  const later = (vm: VmRecord, status: string, then?: () => void): void => {
    clearTimeout(vm.timer);
    vm.timer = setTimeout(() => {
      vm.timer = undefined;
      vm.status = status;
      vm.updated_at = new Date().toISOString();
      then?.();
    }, injector.knobs.transitionMs);
  };
  const remove = (vm: VmRecord): void => {
    clearTimeout(vm.timer);
    vms.delete(vm.id);
  };

  /** Answers what is not a documented (method, path) pair; returns true when it did. */
  function undocumented(res: ServerResponse, method: string, action: string | undefined): boolean {
    const allowed = action === undefined ? ["GET", "PATCH", "DELETE"] : ["POST"];
    if (action !== undefined && !ACTIONS.has(action)) {
      error(res, 404, "not_found", "Ressource introuvable");
      return true;
    }
    if (allowed.includes(method)) return false;
    if (profile === "strict") error(res, 404, "not_found", "Ressource introuvable");
    else error(res, 405, "method_not_allowed", "Méthode non autorisée");
    return true;
  }

  async function handle(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sim");
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "");
    const operation = `${method} ${path.replace(/\/i-[^/]+/, "/:id")}`;
    countRequest(counts, operation);
    const auth = req.headers.authorization ?? "";
    const decision = injector.decide(auth, operation);
    if (applyConnectionFault(decision, res)) return;
    if (decision.kind === "rateLimited") {
      error(res, 429, "rate_limited", "Trop de requêtes", {
        "retry-after": String(decision.retryAfterSeconds ?? 1),
      });
      return;
    }
    if (decision.kind === "error") {
      error(res, 503, "unavailable", "Service temporairement indisponible");
      return;
    }
    if (auth !== `Bearer ${apiKey}`) {
      error(res, 401, "unauthorized", "Clé API invalide ou manquante");
      return;
    }
    let json: Record<string, unknown> = {};
    if (body.trim() !== "") {
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        error(res, 400, "invalid_json", "Corps JSON invalide");
        return;
      }
    }
    await Promise.resolve();
    route(method, path, url, json, res);
  }

  function route(
    method: string,
    path: string,
    url: URL,
    json: Record<string, unknown>,
    res: ServerResponse,
  ): void {
    if (path === "/v1/instances" && method === "GET") return list(url, res);
    if (path === "/v1/instances" && method === "POST") return create(json, res);
    const m = /^\/v1\/instances\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (!m?.[1]) return error(res, 404, "not_found", "Ressource introuvable");
    const action = m[2];
    if (undocumented(res, method, action)) return;
    const vm = vms.get(m[1]);
    if (!vm || vm.status === "deleted") return error(res, 404, "not_found", `Instance ${m[1]} introuvable`);
    if (action !== undefined) return act(vm, action, json, res);
    if (method === "GET") {
      sendJson(res, 200, { data: views.one(vm, url.searchParams.get("include") === "metrics") });
      return;
    }
    if (method === "PATCH") return patch(vm, json, res);
    if (transitions.deleting === undefined) remove(vm);
    else if (vm.status !== transitions.deleting) {
      vm.status = transitions.deleting;
      later(vm, "deleted", () => remove(vm));
    }
    views.deleted(res, vm);
  }

  function list(url: URL, res: ServerResponse): void {
    const page = Math.max(1, Number(url.searchParams.get("page") ?? 1) || 1);
    const limit = Math.min(100, Math.max(1, Number(url.searchParams.get("limit") ?? 20) || 20));
    const status = url.searchParams.get("status");
    const region = url.searchParams.get("region");
    const all = [...vms.values()].filter(
      (v) => v.status !== "deleted" && (!status || v.status === status) && (!region || v.region === region),
    );
    const data = all.slice((page - 1) * limit, page * limit).map((v) => views.listItem(v));
    sendJson(res, 200, {
      data,
      pagination: { page, limit, total: all.length, total_pages: Math.max(1, Math.ceil(all.length / limit)) },
    });
  }

  function validate(json: Record<string, unknown>, res: ServerResponse): boolean {
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

  function create(json: Record<string, unknown>, res: ServerResponse): void {
    for (const f of ["name", "plan", "region", "image"]) {
      if (typeof json[f] !== "string") return error(res, 422, "missing_field", `Champ requis manquant: ${f}`);
    }
    if (!validate(json, res)) return;
    const n = ++seq;
    const now = new Date().toISOString();
    const vm: VmRecord = {
      id: `i-${n.toString(36).padStart(6, "0")}`,
      name: json.name as string,
      status: "provisioning",
      plan: json.plan as string,
      region: json.region as string,
      image: json.image as string,
      ip_address: `51.15.${(n >> 8) & 255}.${n & 255}`,
      ipv6_address: `2001:bc8:1234::${n.toString(16)}`,
      tags: Array.isArray(json.tags) ? json.tags.map(String) : [],
      ssh_keys: Array.isArray(json.ssh_keys) ? json.ssh_keys.map(String) : [],
      backup_enabled: json.backup_enabled === true,
      monitoring_enabled: json.monitoring_enabled === true,
      private_network: typeof json.private_network === "string" ? json.private_network : null,
      created_at: now,
      updated_at: now,
    };
    vms.set(vm.id, vm);
    later(vm, "running");
    injector.knobs.onCreated(vm.id);
    sendJson(res, 201, {
      data: views.created(vm),
      message: "Instance en cours de création. Comptez 2-3 minutes.",
    });
  }

  function patch(vm: VmRecord, json: Record<string, unknown>, res: ServerResponse): void {
    if (!validate({ plan: json.plan }, res)) return;
    if (json.tags !== undefined && !Array.isArray(json.tags))
      return error(res, 422, "invalid_tags", "tags doit être une liste");
    if (typeof json.plan === "string" && json.plan !== vm.plan) {
      if (!["running", "stopped"].includes(vm.status))
        return error(res, 409, "busy", `Instance ${vm.status}`);
      vm.plan = json.plan;
      if (vm.status === "running" && json.reboot !== false) {
        vm.status = transitions.resize;
        later(vm, "running");
      }
    }
    if (Array.isArray(json.tags)) vm.tags = json.tags.map(String);
    if (typeof json.backup_enabled === "boolean") vm.backup_enabled = json.backup_enabled;
    if (typeof json.monitoring_enabled === "boolean") vm.monitoring_enabled = json.monitoring_enabled;
    vm.updated_at = new Date().toISOString();
    views.patched(res, vm);
  }

  function act(vm: VmRecord, action: string, json: Record<string, unknown>, res: ServerResponse): void {
    const need = (states: string[]): boolean => {
      if (states.includes(vm.status)) return true;
      error(res, 409, "invalid_state", `Action ${action} impossible: instance ${vm.status}`);
      return false;
    };
    switch (action) {
      case "start":
        if (!need(["stopped"])) return;
        vm.status = "starting";
        later(vm, "running");
        break;
      case "stop":
        if (!need(["running"])) return;
        vm.status = "stopping";
        later(vm, "stopped");
        break;
      case "poweroff":
        if (!need(["running", "stopping", "starting"])) return;
        clearTimeout(vm.timer);
        vm.status = "stopped";
        break;
      case "reboot":
        if (!need(["running"])) return;
        vm.status = "rebooting";
        later(vm, "running");
        break;
      case "rebuild": {
        if (!need(["running", "stopped"])) return;
        if (typeof json.image !== "string")
          return error(res, 422, "missing_field", "Champ requis manquant: image");
        if (!validate({ image: json.image }, res)) return;
        const after = vm.status;
        vm.image = json.image;
        vm.status = transitions.rebuild;
        later(vm, after);
        break;
      }
    }
    vm.updated_at = new Date().toISOString();
    views.accepted(res, vm, action);
  }

  const server = await listen(handle, () => injector.knobs.latencyMs);
  return {
    provider: "m2s",
    profile,
    url: `${server.url}/v1`,
    credentials: { apiKey },
    faults: injector.knobs,
    requestCounts: counts,
    vms(): SimVm[] {
      return [...vms.values()]
        .filter((v) => v.status !== "deleted")
        .map((v) => ({
          id: v.id,
          ownerUID: v.tags.find((t) => t.startsWith("cio-owner:"))?.slice("cio-owner:".length),
          status: v.status,
          plan: v.plan,
          image: v.image,
          region: v.region,
        }));
    },
    mutate(id, change) {
      const vm = vms.get(id);
      if (vm) Object.assign(vm, change);
    },
    destroy(id) {
      const vm = vms.get(id);
      if (vm) remove(vm);
    },
    async close() {
      for (const v of vms.values()) clearTimeout(v.timer);
      await server.close();
    },
  };
}
