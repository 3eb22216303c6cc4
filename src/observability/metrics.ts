import { Registry, collectDefaultMetrics } from "prom-client";
import { instanceMetrics } from "./metrics/instance.ts";
import { leadershipMetrics } from "./metrics/leadership.ts";
import { providerMetrics } from "./metrics/provider.ts";
import { reconcileMetrics } from "./metrics/reconcile.ts";
import { workqueueMetrics } from "./metrics/workqueue.ts";

/** Every family the operator exports, by concern (each in `./metrics/`), registered on `registers`. */
function families(registers: Registry[]) {
  return {
    ...reconcileMetrics(registers),
    ...workqueueMetrics(registers),
    ...providerMetrics(registers),
    ...instanceMetrics(registers),
    ...leadershipMetrics(registers),
  };
}

type MetricFamilies = Readonly<ReturnType<typeof families>>;

// The class takes its fields from `families`, so each family's type (its label names) is
// written once, in its builder, and the constructor assigns exactly what `families` returns.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type
export interface Metrics extends MetricFamilies {}

/**
 * Every metric the operator exports, on one registry owned by the caller (no global
 * registry: tests, the demo and the bench run several operators in one process).
 * Names follow controller-runtime where they mean the same thing, so its dashboards work.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Metrics {
  readonly registry: Registry;

  constructor(opts: { registry?: Registry; processMetrics?: boolean } = {}) {
    this.registry = opts.registry ?? new Registry();
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
    Object.assign(this, families([this.registry]));
  }
}
