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

/**
 * m2s simulator, after ../shared/providers/m2s.txt. Choices where the document is silent:
 * - errors are `{"error": {"code", "message"}}` (the README's first accepted form);
 * - list items carry `tags` and `image` too (the real API returns full objects in lists);
 * - transitional statuses: provisioning, starting, stopping, rebooting, rebuilding, resizing,
 *   deleting; a resize with `reboot: false` on a running VM applies at once without a reboot;
 * - plans: starter < business < performance < enterprise; images and regions from the examples.
 */
export const M2S_PLANS = ["starter", "business", "performance", "enterprise"] as const;
export const M2S_REGIONS = ["fr-par-1", "fr-par-2", "nl-ams-1"] as const;
export const M2S_IMAGES = ["ubuntu-22.04", "ubuntu-24.04", "debian-12"] as const;

interface VmRecord {
  id: string;
  name: string;
  status: string;
  plan: string;
  region: string;
  image: string;
  ip_address: string;
  ipv6_address: string;
  tags: string[];
  ssh_keys: string[];
  backup_enabled: boolean;
  monitoring_enabled: boolean;
  private_network: string | null;
  created_at: string;
  updated_at: string;
  timer?: NodeJS.Timeout | undefined;
}

export interface M2sSimulator extends Simulator {
  /** Change a VM behind the operator's back (drift tests). */
  mutate(id: string, change: Partial<Pick<VmRecord, "status" | "plan" | "image" | "tags">>): void;
  /** Remove a VM behind the operator's back. */
  destroy(id: string): void;
}

export async function startM2sSimulator(
  opts: { faults?: Partial<FaultKnobs>; profile?: SimProfile; apiKey?: string } = {},
): Promise<M2sSimulator> {
  const apiKey = opts.apiKey ?? "m2s-sim-key-0123456789";
  const injector = new FaultInjector(opts.faults);
  const vms = new Map<string, VmRecord>();
  const counts = new Map<string, number>();
  let seq = 0;

  const error = (
    res: ServerResponse,
    status: number,
    code: string,
    message: string,
    headers: Record<string, string> = {},
  ): void => {
    sendJson(res, status, { error: { code, message } }, headers);
  };
  const later = (vm: VmRecord, status: string, then?: () => void): void => {
    clearTimeout(vm.timer);
    vm.timer = setTimeout(() => {
      vm.timer = undefined;
      vm.status = status;
      vm.updated_at = new Date().toISOString();
      then?.();
    }, injector.knobs.transitionMs);
  };
  const view = (vm: VmRecord, metrics: boolean): Record<string, unknown> => {
    const { timer: _t, ssh_keys: _k, ...rest } = vm;
    const ip = vm.status === "provisioning" ? null : vm.ip_address;
    return {
      ...rest,
      ip_address: ip,
      disk_size: 25 * 2 ** M2S_PLANS.indexOf(vm.plan as (typeof M2S_PLANS)[number]),
      ...(metrics
        ? { metrics: { cpu_usage: 12.5, memory_usage: 40, disk_usage: 20, network_in: 0, network_out: 0 } }
        : {}),
    };
  };

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
    if (path === "/v1/instances" && method === "GET") {
      list(url, res);
      return;
    }
    if (path === "/v1/instances" && method === "POST") {
      create(json, res);
      return;
    }
    const m = /^\/v1\/instances\/([^/]+)(?:\/(start|stop|poweroff|reboot|rebuild))?$/.exec(path);
    if (!m?.[1]) {
      error(res, 404, "not_found", "Ressource introuvable");
      return;
    }
    const vm = vms.get(m[1]);
    if (!vm || vm.status === "deleted") {
      error(res, 404, "not_found", `Instance ${m[1]} introuvable`);
      return;
    }
    const action = m[2];
    if (!action && method === "GET") {
      sendJson(res, 200, { data: view(vm, url.searchParams.get("include") === "metrics") });
      return;
    }
    if (!action && method === "PATCH") {
      patch(vm, json, res);
      return;
    }
    if (!action && method === "DELETE") {
      vm.status = "deleting";
      later(vm, "deleted", () => vms.delete(vm.id));
      sendJson(res, 202, { data: view(vm, false), message: "Suppression en cours" });
      return;
    }
    if (action && method === "POST") {
      act(vm, action, json, res);
      return;
    }
    error(res, 405, "method_not_allowed", "Méthode non autorisée");
  }

  function list(url: URL, res: ServerResponse): void {
    const page = Math.max(1, Number(url.searchParams.get("page") ?? 1) || 1);
    const limit = Math.min(100, Math.max(1, Number(url.searchParams.get("limit") ?? 20) || 20));
    const status = url.searchParams.get("status");
    const region = url.searchParams.get("region");
    const all = [...vms.values()].filter(
      (v) => (!status || v.status === status) && (!region || v.region === region),
    );
    const data = all.slice((page - 1) * limit, page * limit).map((v) => view(v, false));
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
    sendJson(res, 201, {
      data: view(vm, false),
      message: "Instance en cours de création. Comptez 2-3 minutes.",
    });
  }

  function patch(vm: VmRecord, json: Record<string, unknown>, res: ServerResponse): void {
    if (!validate({ plan: json.plan }, res)) return;
    if (json.tags !== undefined) {
      if (!Array.isArray(json.tags)) return error(res, 422, "invalid_tags", "tags doit être une liste");
      vm.tags = json.tags.map(String);
    }
    if (typeof json.backup_enabled === "boolean") vm.backup_enabled = json.backup_enabled;
    if (typeof json.monitoring_enabled === "boolean") vm.monitoring_enabled = json.monitoring_enabled;
    if (typeof json.plan === "string" && json.plan !== vm.plan) {
      if (!["running", "stopped"].includes(vm.status))
        return error(res, 409, "busy", `Instance ${vm.status}`);
      vm.plan = json.plan;
      if (vm.status === "running" && json.reboot !== false) {
        vm.status = "resizing";
        later(vm, "running");
      }
    }
    vm.updated_at = new Date().toISOString();
    sendJson(res, 200, { data: view(vm, false) });
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
        vm.status = "rebuilding";
        later(vm, after);
        break;
      }
    }
    sendJson(res, 202, { data: view(vm, false) });
  }

  const server = await listen(handle, () => injector.knobs.latencyMs);
  return {
    provider: "m2s",
    profile: opts.profile ?? "default",
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
      clearTimeout(vm?.timer);
      vms.delete(id);
    },
    async close() {
      for (const v of vms.values()) clearTimeout(v.timer);
      await server.close();
    },
  };
}
