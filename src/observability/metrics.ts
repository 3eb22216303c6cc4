import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Every metric the operator exports, on one registry owned by the caller (no global
 * registry: tests, the demo and the bench run several operators in one process).
 * Names follow controller-runtime where they mean the same thing, so its dashboards work.
 */
export class Metrics {
  readonly registry: Registry;
  readonly reconcileTotal: Counter<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller">;
  readonly reconcileTime: Histogram<"controller">;
  readonly activeWorkers: Gauge<"controller">;
  readonly queueDepth: Gauge<"name">;
  readonly queueAdds: Counter<"name">;
  readonly queueRetries: Counter<"name">;
  readonly queueDuration: Histogram<"name">;
  readonly workDuration: Histogram<"name">;
  readonly longestRunningProcessor: Gauge<"name">;
  readonly providerRequests: Counter<"provider" | "operation" | "code">;
  readonly providerRequestDuration: Histogram<"provider" | "operation">;
  readonly providerThrottled: Counter<"provider" | "reason">;
  readonly instances: Gauge<"provider" | "phase">;
  readonly leaderStatus: Gauge<"name">;
  readonly shards: Gauge;
  readonly shardsOwned: Gauge;
  readonly shardMembers: Gauge;
  readonly providerBalance: Gauge<"provider" | "account_digest">;
  readonly drifted: Gauge<"provider" | "field">;
  readonly orphans: Gauge<"provider" | "account_digest">;
  readonly pricePerHour: Gauge<"provider" | "plan" | "currency">;
  readonly hourlyCost: Gauge<"namespace" | "provider" | "currency">;

  constructor(opts: { registry?: Registry; processMetrics?: boolean } = {}) {
    const registers = [(this.registry = opts.registry ?? new Registry())];
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
    const seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    this.reconcileTotal = new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller and result (success, error, requeue, requeue_after).",
      labelNames: ["controller", "result"],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller.",
      labelNames: ["controller"],
      registers,
    });
    this.reconcileTime = new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller.",
      labelNames: ["controller"],
      buckets: seconds,
      registers,
    });
    this.activeWorkers = new Gauge({
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller.",
      labelNames: ["controller"],
      registers,
    });
    this.queueDepth = new Gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue.",
      labelNames: ["name"],
      registers,
    });
    this.queueAdds = new Counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue.",
      labelNames: ["name"],
      registers,
    });
    this.queueRetries = new Counter({
      name: "workqueue_retries_total",
      help: "Total number of retries handled by workqueue.",
      labelNames: ["name"],
      registers,
    });
    this.queueDuration = new Histogram({
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
    });
    this.workDuration = new Histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes.",
      labelNames: ["name"],
      buckets: [0.0001, 0.001, ...seconds],
      registers,
    });
    this.longestRunningProcessor = new Gauge({
      name: "workqueue_longest_running_processor_seconds",
      help: "How many seconds has the longest running processor for workqueue been running.",
      labelNames: ["name"],
      registers,
    });
    this.providerRequests = new Counter({
      name: "cloud_instance_provider_requests_total",
      help: "Provider API requests by provider, operation and HTTP status code (or error kind).",
      labelNames: ["provider", "operation", "code"],
      registers,
    });
    this.providerThrottled = new Counter({
      name: "cloud_instance_provider_throttled_total",
      help:
        "Reconciles put off (requeued for later, not errors) because their provider account had no budget " +
        "left in its rate limit (reason=budget) or already ran its share of the workers (reason=inflight).",
      labelNames: ["provider", "reason"],
      registers,
    });
    this.providerRequestDuration = new Histogram({
      name: "cloud_instance_provider_request_duration_seconds",
      help: "Provider API request latency by provider and operation.",
      labelNames: ["provider", "operation"],
      buckets: seconds,
      registers,
    });
    this.instances = new Gauge({
      name: "cloud_instances",
      help: "CloudInstances by provider and phase, as seen in the cache.",
      labelNames: ["provider", "phase"],
      registers,
    });
    this.drifted = new Gauge({
      name: "cloud_instance_drifted",
      help: "CloudInstances whose VM was changed outside Kubernetes (status.drift), by provider and field.",
      labelNames: ["provider", "field"],
      registers,
    });
    this.pricePerHour = new Gauge({
      name: "cloud_instance_price_per_hour",
      help: "What one VM of a plan costs per hour, where the provider's documented catalogue gives a price (monthly prices / 730).",
      labelNames: ["provider", "plan", "currency"],
      registers,
    });
    this.hourlyCost = new Gauge({
      name: "cloud_instance_hourly_cost",
      help: "What a namespace's CloudInstances cost per hour, summed from status.price (only VMs with a documented price).",
      labelNames: ["namespace", "provider", "currency"],
      registers,
    });
    this.orphans = new Gauge({
      name: "cloud_instance_orphaned_vms",
      help: "VMs marked by this cluster whose owning CloudInstance no longer exists, per provider account (last orphan scan).",
      labelNames: ["provider", "account_digest"],
      registers,
    });
    this.leaderStatus = new Gauge({
      name: "leader_election_master_status",
      help: "1 when this process holds the leader lease, 0 otherwise.",
      labelNames: ["name"],
      registers,
    });
    this.shards = new Gauge({
      name: "cloud_instance_shards",
      help: "Shards the objects are split into (--shards) when sharding; 0 with a single leader. Alerts compare it with the sum of cloud_instance_shards_owned.",
      registers,
    });
    this.shardsOwned = new Gauge({
      name: "cloud_instance_shards_owned",
      help: "Shards (--shards) whose Lease this replica holds and whose objects it reconciles.",
      registers,
    });
    this.shardMembers = new Gauge({
      name: "cloud_instance_shard_members",
      help: "Operator replicas this replica sees alive (membership Leases), itself included.",
      registers,
    });
    this.providerBalance = new Gauge({
      name: "cloud_instance_provider_account_balance",
      help: "Account balance reported by providers that expose one (MOS GetBalance); the account is named by a digest, never its id.",
      labelNames: ["provider", "account_digest"],
      registers,
    });
  }
}
