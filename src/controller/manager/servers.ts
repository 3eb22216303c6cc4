import type { KubeClient } from "../../kube/client.ts";
import type { Metrics } from "../../observability/metrics.ts";
import { startProbeServer, type RunningServer } from "../../observability/server.ts";
import { KubeMetricsAuthorizer } from "../../observability/metrics-auth.ts";
import { metricsCertificate } from "../../observability/metrics-tls.ts";
import type { ManagerConfig } from "../manager.ts";

export interface ServerSetDeps {
  config: Pick<
    ManagerConfig,
    "metricsBindAddress" | "metricsSecure" | "metricsCertDir" | "healthProbeBindAddress"
  >;
  metrics: Metrics;
  kube: KubeClient;
  /** Plural names of the caches not synced yet: /readyz fails until there are none. */
  pendingCaches: () => string[];
}

/** The manager's HTTP servers: /metrics and the /healthz, /readyz probes. */
export class ServerSet {
  readonly #d: ServerSetDeps;
  #running: RunningServer[] = [];

  constructor(deps: ServerSetDeps) {
    this.#d = deps;
  }

  get urls(): string[] {
    return this.#running.map((s) => s.url);
  }

  /**
   * Binds the metrics and probe addresses (one plain server when they are the same). A server
   * started before a later one fails to bind stays listed, so `close` still closes it.
   */
  async start(): Promise<void> {
    const c = this.#d.config;
    const probes = {
      healthz: () => ({ ok: true, detail: "" }),
      readyz: () => {
        const pending = this.#d.pendingCaches();
        return { ok: pending.length === 0, detail: `caches not synced: ${pending.join(", ")}` };
      },
    };
    const registry = this.#d.metrics.registry;
    if (c.metricsBindAddress === c.healthProbeBindAddress) {
      // Plain HTTP on loopback only (config refuses the rest), for tests and the demo.
      const s = await startProbeServer({ address: c.metricsBindAddress, registry, probes });
      if (s) this.#running.push(s);
      return;
    }
    const m = await startProbeServer({
      address: c.metricsBindAddress,
      registry,
      ...(c.metricsSecure
        ? {
            tls: metricsCertificate(c.metricsCertDir),
            authorizer: new KubeMetricsAuthorizer({ kube: this.#d.kube }),
          }
        : {}),
    });
    if (m) this.#running.push(m);
    const h = await startProbeServer({ address: c.healthProbeBindAddress, probes });
    if (h) this.#running.push(h);
  }

  async close(): Promise<void> {
    await Promise.all(this.#running.map((s) => s.close()));
    this.#running = [];
  }
}
