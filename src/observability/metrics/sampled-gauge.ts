import { Gauge, type GaugeConfiguration, type LabelValues } from "prom-client";

/**
 * A gauge whose values are read from their sources when it is scraped. The gauges of the
 * reconcile path (active workers, queue depth, longest running processor) changed several
 * times per reconcile, and every `set` hashed its labels; only the value at scrape time is
 * ever seen, so it is read then — and is exact then, where a set-on-change value of the
 * longest running processor was as old as the last queue event.
 */
export interface SampledGauge<T extends string> extends Gauge<T> {
  /** Reports `read()` under `labels` at every scrape (a later source for the same labels replaces it). */
  sample(labels: LabelValues<T>, read: () => number): void;
}

export function sampledGauge<T extends string>(
  config: Omit<GaugeConfiguration<T>, "collect">,
): SampledGauge<T> {
  const sources = new Map<string, { labels: LabelValues<T>; read: () => number }>();
  const gauge = new Gauge<T>({
    ...config,
    collect(this: Gauge<T>) {
      for (const { labels, read } of sources.values()) this.set(labels, read());
    },
  });
  return Object.assign(gauge, {
    sample(labels: LabelValues<T>, read: () => number): void {
      sources.set(JSON.stringify(labels), { labels, read });
    },
  });
}
