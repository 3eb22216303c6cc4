/** Just enough of the Prometheus text format to read the operator's own /metrics. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export type Samples = Sample[];

export function parseMetrics(text: string): Samples {
  const out: Samples = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] ?? ""] = (l[2] ?? "").replace(/\\(.)/g, "$1");
    out.push({ name: m[1] ?? "", labels, value: Number(m[3]) });
  }
  return out;
}

/**
 * The q-quantile of what a histogram observed between two scrapes, interpolated linearly inside
 * the bucket as Prometheus' histogram_quantile does. NaN when nothing was observed.
 */
export function histogramQuantile(
  q: number,
  before: Samples,
  after: Samples,
  name: string,
  match: Record<string, string>,
): number {
  const buckets = (s: Samples): Map<number, number> => {
    const m = new Map<number, number>();
    for (const x of s) {
      if (x.name !== `${name}_bucket`) continue;
      if (!Object.entries(match).every(([k, v]) => x.labels[k] === v)) continue;
      const le = x.labels.le === "+Inf" ? Infinity : Number(x.labels.le);
      m.set(le, (m.get(le) ?? 0) + x.value);
    }
    return m;
  };
  const a = buckets(after);
  const b = buckets(before);
  const bounds = [...a.keys()].sort((x, y) => x - y);
  const counts = bounds.map((le) => (a.get(le) ?? 0) - (b.get(le) ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    const count = counts[i] ?? 0;
    if (count >= rank) {
      const upper = bounds[i] ?? 0;
      const lower = i === 0 ? 0 : (bounds[i - 1] ?? 0);
      if (upper === Infinity) return lower;
      const below = i === 0 ? 0 : (counts[i - 1] ?? 0);
      return lower + ((upper - lower) * (rank - below)) / Math.max(1, count - below);
    }
  }
  return NaN;
}
