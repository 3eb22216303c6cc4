import type { CloudInstance } from "../api/index.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { Informer } from "./runtime/informer.ts";

/** Keeps `cloud_instances{provider,phase}` current from cache events, O(1) per event. */
export function trackInstancePhases(informer: Informer<CloudInstance>, metrics: Metrics): void {
  const labels = (o: CloudInstance): { provider: string; phase: string } => ({
    provider: o.spec.provider?.name ?? "template",
    phase: o.status?.phase ?? "Pending",
  });
  informer.addHandler({
    onAdd: (o) => {
      metrics.instances.inc(labels(o));
    },
    onUpdate: (old, o) => {
      metrics.instances.dec(labels(old));
      metrics.instances.inc(labels(o));
    },
    onDelete: (o) => {
      metrics.instances.dec(labels(o));
    },
  });
}
