import { Counter, Histogram, type Registry } from "prom-client";
import { SECONDS_BUCKETS } from "./buckets.ts";
import { sampledGauge } from "./sampled-gauge.ts";

/** controller-runtime's reconcile families, same names and labels, so its dashboards work. */
export function reconcileMetrics(registers: Registry[]) {
  return {
    reconcileTotal: new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller and result (success, error, requeue, requeue_after).",
      labelNames: ["controller", "result"],
      registers,
    }),
    reconcileErrors: new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller.",
      labelNames: ["controller"],
      registers,
    }),
    reconcileTime: new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller.",
      labelNames: ["controller"],
      buckets: SECONDS_BUCKETS,
      registers,
    }),
    activeWorkers: sampledGauge({
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller.",
      labelNames: ["controller"],
      registers,
    }),
  };
}
