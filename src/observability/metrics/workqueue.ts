import { Counter, Histogram, type Registry } from "prom-client";
import { SECONDS_BUCKETS } from "./buckets.ts";
import { sampledGauge } from "./sampled-gauge.ts";

/** client-go's work queue families (`name` is the controller's queue), as controller-runtime exports them. */
export function workqueueMetrics(registers: Registry[]) {
  return {
    queueDepth: sampledGauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue.",
      labelNames: ["name"],
      registers,
    }),
    queueAdds: new Counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue.",
      labelNames: ["name"],
      registers,
    }),
    queueRetries: new Counter({
      name: "workqueue_retries_total",
      help: "Total number of retries handled by workqueue.",
      labelNames: ["name"],
      registers,
    }),
    queueDuration: new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in workqueue before being requested.",
      labelNames: ["name"],
      // Fine below 25 ms: the event-to-reconcile latency target (p99 <= 20 ms) is read from here.
      // Up to 1000 s like controller-runtime's: a backlog of thousands waiting on a provider's
      // rate limit must show its real wait, not pile up in +Inf.
      buckets: [
        0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
        30, 60, 120, 300, 1000,
      ],
      registers,
    }),
    workDuration: new Histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes.",
      labelNames: ["name"],
      buckets: [0.0001, 0.001, ...SECONDS_BUCKETS],
      registers,
    }),
    longestRunningProcessor: sampledGauge({
      name: "workqueue_longest_running_processor_seconds",
      help: "How many seconds has the longest running processor for workqueue been running.",
      labelNames: ["name"],
      registers,
    }),
  };
}
