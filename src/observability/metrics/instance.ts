import { Gauge, type Registry } from "prom-client";

/** The fleet as the cache sees it: instances by phase, drift, prices and cost, orphaned VMs. */
export function instanceMetrics(registers: Registry[]) {
  return {
    instances: new Gauge({
      name: "cloud_instances",
      help: "CloudInstances by provider and phase, as seen in the cache.",
      labelNames: ["provider", "phase"],
      registers,
    }),
    drifted: new Gauge({
      name: "cloud_instance_drifted",
      help: "CloudInstances whose VM was changed outside Kubernetes (status.drift), by provider and field.",
      labelNames: ["provider", "field"],
      registers,
    }),
    pricePerHour: new Gauge({
      name: "cloud_instance_price_per_hour",
      help: "What one VM of a plan costs per hour, where the provider's documented catalogue gives a price (monthly prices / 730).",
      labelNames: ["provider", "plan", "currency"],
      registers,
    }),
    hourlyCost: new Gauge({
      name: "cloud_instance_hourly_cost",
      help: "What a namespace's CloudInstances cost per hour, summed from status.price (only VMs with a documented price).",
      labelNames: ["namespace", "provider", "currency"],
      registers,
    }),
    orphans: new Gauge({
      name: "cloud_instance_orphaned_vms",
      help: "VMs marked by this cluster whose owning CloudInstance no longer exists, per provider account (last orphan scan).",
      labelNames: ["provider", "account_digest"],
      registers,
    }),
  };
}
