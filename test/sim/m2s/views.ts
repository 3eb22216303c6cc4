/**
 * What the m2s simulator shows of a VM and how it words its answers, per profile. The field
 * lists are copied from ../shared/providers/m2s.txt; the choices are explained in index.ts.
 */
import type { ServerResponse } from "node:http";
import { sendJson, type SimProfile } from "../common.ts";

/** The document's plan table, smallest first. */
export const M2S_PLANS = ["starter", "business", "performance", "enterprise"] as const;
export const M2S_REGIONS = ["fr-par-1", "fr-par-2", "nl-ams-1"] as const;
export const M2S_IMAGES = ["ubuntu-22.04", "ubuntu-24.04", "debian-12"] as const;

/** vCPU and RAM per plan, from the document's plan table. */
const PLAN_SIZES: Record<string, { vcpu: number; memory: number }> = {
  starter: { vcpu: 1, memory: 2048 },
  business: { vcpu: 2, memory: 4096 },
  performance: { vcpu: 4, memory: 8192 },
  enterprise: { vcpu: 8, memory: 16384 },
};

export interface VmRecord {
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

/** The list item of `GET /instances`, field for field. */
const LIST_FIELDS = ["id", "name", "status", "plan", "region", "ip_address", "created_at", "updated_at"];
/** The answer of `GET /instances/:id` (metrics only with `?include=metrics`). */
const ONE_FIELDS = [
  "id",
  "name",
  "status",
  "plan",
  "region",
  "ip_address",
  "ipv6_address",
  "disk_size",
  "memory",
  "vcpu",
  "image",
  "backup_enabled",
  "monitoring_enabled",
  "tags",
  "created_at",
];
/** The `data` of the `POST /instances` answer. */
const CREATE_FIELDS = ["id", "name", "status", "plan", "region", "image", "created_at"];
/** What the default profile adds (see index.ts for why). */
const DEFAULT_LIST_EXTRA = ["tags", "image"];
const DEFAULT_ONE_EXTRA = ["updated_at", "private_network"];

function everything(vm: VmRecord): Record<string, unknown> {
  const size = PLAN_SIZES[vm.plan];
  return {
    id: vm.id,
    name: vm.name,
    status: vm.status,
    plan: vm.plan,
    region: vm.region,
    image: vm.image,
    // No address is given out before the VM has booted.
    ip_address: vm.status === "provisioning" ? null : vm.ip_address,
    ipv6_address: vm.status === "provisioning" ? null : vm.ipv6_address,
    disk_size: 25 * 2 ** M2S_PLANS.indexOf(vm.plan as (typeof M2S_PLANS)[number]),
    memory: size?.memory,
    vcpu: size?.vcpu,
    backup_enabled: vm.backup_enabled,
    monitoring_enabled: vm.monitoring_enabled,
    private_network: vm.private_network,
    tags: [...vm.tags],
    created_at: vm.created_at,
    updated_at: vm.updated_at,
  };
}

function pick(all: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) out[f] = all[f];
  return out;
}

const METRICS = { cpu_usage: 12.5, memory_usage: 40, disk_usage: 20, network_in: 0, network_out: 0 };

/** How one profile shows VMs and words its answers. */
export interface M2sViews {
  listItem: (vm: VmRecord) => Record<string, unknown>;
  one: (vm: VmRecord, metrics: boolean) => Record<string, unknown>;
  created: (vm: VmRecord) => Record<string, unknown>;
  error: (
    res: ServerResponse,
    status: number,
    code: string,
    message: string,
    headers?: Record<string, string>,
  ) => void;
  /** The answer to an accepted PATCH. */
  patched: (res: ServerResponse, vm: VmRecord) => void;
  /** The answer to an accepted start/stop/poweroff/reboot/rebuild. */
  accepted: (res: ServerResponse, vm: VmRecord, action: string) => void;
  /** The answer to an accepted DELETE. */
  deleted: (res: ServerResponse, vm: VmRecord) => void;
}

const strict: M2sViews = {
  listItem: (vm) => pick(everything(vm), LIST_FIELDS),
  one: (vm, metrics) => ({ ...pick(everything(vm), ONE_FIELDS), ...(metrics ? { metrics: METRICS } : {}) }),
  created: (vm) => pick(everything(vm), CREATE_FIELDS),
  error: (res, status, _code, message, headers = {}) => {
    sendJson(res, status, { message }, headers);
  },
  patched: (res) => {
    sendJson(res, 200, { message: "Instance mise à jour" });
  },
  accepted: (res, _vm, action) => {
    sendJson(res, 202, { message: `Action ${action} acceptée` });
  },
  deleted: (res) => {
    res.writeHead(204);
    res.end();
  },
};

const defaults: M2sViews = {
  listItem: (vm) => pick(everything(vm), [...LIST_FIELDS, ...DEFAULT_LIST_EXTRA]),
  one: (vm, metrics) => ({
    ...pick(everything(vm), [...ONE_FIELDS, ...DEFAULT_ONE_EXTRA]),
    ...(metrics ? { metrics: METRICS } : {}),
  }),
  created: (vm) => pick(everything(vm), [...ONE_FIELDS, ...DEFAULT_ONE_EXTRA]),
  error: (res, status, code, message, headers = {}) => {
    sendJson(res, status, { error: { code, message } }, headers);
  },
  patched: (res, vm) => {
    sendJson(res, 200, { data: defaults.one(vm, false) });
  },
  accepted: (res, vm) => {
    sendJson(res, 202, { data: defaults.one(vm, false) });
  },
  deleted: (res, vm) => {
    sendJson(res, 202, { data: defaults.one(vm, false), message: "Suppression en cours" });
  },
};

export function viewsFor(profile: SimProfile): M2sViews {
  return profile === "strict" ? strict : defaults;
}
