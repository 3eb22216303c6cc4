import type { ManagerConfig } from "../../../src/controller/manager.ts";

/** A manager config for tests: no servers, fast lease timings, a short grace period. */
export function testConfig(overrides: Partial<ManagerConfig> = {}): ManagerConfig {
  return {
    namespaces: [],
    labelSelector: undefined,
    maxConcurrentReconciles: 4,
    queueQps: 1000,
    queueBurst: 1000,
    resyncPeriodMs: 0,
    leaderElect: false,
    leaderElectionNamespace: "default",
    leaderElectionId: "test-leader",
    metricsBindAddress: "0",
    healthProbeBindAddress: "0",
    metricsSecure: false,
    metricsCertDir: undefined,
    podName: "test-pod",
    shutdownGracePeriodMs: 5_000,
    leaseDurationMs: 1_500,
    renewDeadlineMs: 1_000,
    retryPeriodMs: 200,
    ...overrides,
  };
}
