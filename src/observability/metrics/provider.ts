import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { SECONDS_BUCKETS } from "./buckets.ts";

/** The provider APIs as the operator sees them: calls, latency, throttling, account balance. */
export function providerMetrics(registers: Registry[]) {
  return {
    providerRequests: new Counter({
      name: "cloud_instance_provider_requests_total",
      help: "Provider API requests by provider, operation and HTTP status code (or error kind).",
      labelNames: ["provider", "operation", "code"],
      registers,
    }),
    providerThrottled: new Counter({
      name: "cloud_instance_provider_throttled_total",
      help:
        "Reconciles put off (requeued for later, not errors) because their provider account had no budget " +
        "left in its rate limit (reason=budget) or already ran its share of the workers (reason=inflight).",
      labelNames: ["provider", "reason"],
      registers,
    }),
    providerRequestDuration: new Histogram({
      name: "cloud_instance_provider_request_duration_seconds",
      help: "Provider API request latency by provider and operation.",
      labelNames: ["provider", "operation"],
      buckets: SECONDS_BUCKETS,
      registers,
    }),
    providerBalance: new Gauge({
      name: "cloud_instance_provider_account_balance",
      help: "Account balance reported by providers that expose one (MOS GetBalance); the account is named by a digest, never its id.",
      labelNames: ["provider", "account_digest"],
      registers,
    }),
  };
}
