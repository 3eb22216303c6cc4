// What a PromQL expression reads (series, label matchers, grouping labels), checked against the
// series the operator exports: a renamed metric or label would otherwise leave a dashboard panel
// empty or an alert silent without any error anywhere.
import { Metrics } from "../../src/observability/metrics.ts";

/** Labels Prometheus adds to every series it scrapes through the chart's ServiceMonitor. */
export const TARGET_LABELS: readonly string[] = ["job", "namespace", "instance", "pod", "service", "endpoint", "container"];

export interface Matcher {
  label: string;
  op: "=" | "!=" | "=~" | "!~";
  value: string;
}

export interface Selector {
  /** Empty for a selector without a metric name (`{__name__=~"..."}`), which the checks refuse. */
  metric: string;
  matchers: Matcher[];
}

export interface Reads {
  selectors: Selector[];
  /** Label names in by/without/on/ignoring/group_left/group_right lists. */
  grouping: string[];
}

/** Series name -> label names the operator gives it, for every series it exposes, plus `up`. */
export function exportedSeries(): Map<string, ReadonlySet<string>> {
  const series = new Map<string, ReadonlySet<string>>([["up", new Set()]]);
  // processMetrics: the operator's main() turns them on (src/operator.ts); tests leave them off.
  for (const metric of new Metrics({ processMetrics: true }).registry.getMetricsAsArray()) {
    // prom-client's typings hide these fields of every metric object.
    const { name, type, labelNames } = metric as unknown as { name: string; type: string; labelNames: string[] };
    if (type === "histogram") {
      series.set(`${name}_bucket`, new Set([...labelNames, "le"]));
      series.set(`${name}_sum`, new Set(labelNames));
      series.set(`${name}_count`, new Set(labelNames));
    } else if (type === "summary") {
      series.set(name, new Set([...labelNames, "quantile"]));
      series.set(`${name}_sum`, new Set(labelNames));
      series.set(`${name}_count`, new Set(labelNames));
    } else series.set(name, new Set(labelNames));
  }
  return series;
}

const GROUPING = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);
const WORDS = new Set(["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"]);
// Aggregations may be followed by `by (...)` before their parenthesis: `sum by (a) (x)`.
const AGGREGATIONS = new Set([
  "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile",
]);
const MATCHER = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*,?/y;

function stringEnd(s: string, i: number): number {
  const quote = s[i];
  let j = i + 1;
  while (j < s.length && s[j] !== quote) j += s[j] === "\\" && quote !== "`" ? 2 : 1;
  if (j >= s.length) throw new Error(`unterminated string in ${s}`);
  return j + 1;
}

function unquote(literal: string): string {
  if (literal.startsWith("`")) return literal.slice(1, -1);
  if (literal.startsWith('"')) return JSON.parse(literal) as string;
  const body = literal.slice(1, -1).replaceAll("\\'", "'").replaceAll('"', '\\"');
  return JSON.parse(`"${body}"`) as string;
}

/** Parses `{a="b", c=~"d"}` starting at s[i] === "{"; returns the matchers and the index after "}". */
function matchersAt(s: string, i: number): [Matcher[], number] {
  const matchers: Matcher[] = [];
  MATCHER.lastIndex = i + 1;
  for (;;) {
    const rest = /\s*\}/y;
    rest.lastIndex = MATCHER.lastIndex;
    if (rest.exec(s)) return [matchers, rest.lastIndex];
    const at = MATCHER.lastIndex;
    const m = MATCHER.exec(s);
    if (!m) throw new Error(`cannot read the label matchers at ${JSON.stringify(s.slice(at, at + 40))}`);
    matchers.push({ label: m[1]!, op: m[2] as Matcher["op"], value: unquote(m[3]!) });
  }
}

/** The selectors and grouping labels of a PromQL expression (Grafana variables are plain text). */
export function readsOf(expr: string): Reads {
  const reads: Reads = { selectors: [], grouping: [] };
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (c === '"' || c === "'" || c === "`") i = stringEnd(expr, i);
    else if (c === "#") i = expr.includes("\n", i) ? expr.indexOf("\n", i) : expr.length;
    // Ranges and subqueries hold durations (or $__rate_interval) only.
    else if (c === "[") i = expr.indexOf("]", i) + 1 || expr.length;
    else if (c === "{") {
      const [matchers, end] = matchersAt(expr, i);
      reads.selectors.push({ metric: "", matchers });
      i = end;
    } else if (/[0-9.]/.test(c)) i += /^[0-9.]+(?:[eE][+-]?[0-9]+)?[a-zA-Z]*/.exec(expr.slice(i))![0].length;
    else if (/[a-zA-Z_:]/.test(c)) {
      const word = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i))![0];
      let j = i + word.length;
      while (/\s/.test(expr[j] ?? "")) j++;
      if (GROUPING.has(word) && expr[j] === "(") {
        const close = expr.indexOf(")", j);
        reads.grouping.push(...expr.slice(j + 1, close).split(",").map((l) => l.trim()).filter(Boolean));
        i = close + 1;
      } else if (expr[j] === "(" || WORDS.has(word.toLowerCase()) || AGGREGATIONS.has(word) || GROUPING.has(word))
        i = j;
      else if (expr[j] === "{") {
        const [matchers, end] = matchersAt(expr, j);
        reads.selectors.push({ metric: word, matchers });
        i = end;
      } else {
        reads.selectors.push({ metric: word, matchers: [] });
        i = j;
      }
    } else i++;
  }
  return reads;
}

/**
 * Why an expression would read nothing the operator exports: unknown series, label names the
 * series does not carry, a missing scope matcher (e.g. job/namespace of the release).
 */
export function seriesProblems(
  expr: string,
  exported: ReadonlyMap<string, ReadonlySet<string>>,
  scope: Readonly<Record<string, string>> = {},
): string[] {
  const problems: string[] = [];
  const { selectors, grouping } = readsOf(expr);
  if (selectors.length === 0) problems.push(`${expr}: reads no series`);
  const known = new Set(TARGET_LABELS);
  for (const { metric, matchers } of selectors) {
    const labels = exported.get(metric);
    if (!labels) {
      problems.push(metric ? `${metric} is not exported` : `a selector without a metric name in ${expr}`);
      continue;
    }
    for (const l of labels) known.add(l);
    for (const m of matchers)
      if (!labels.has(m.label) && !TARGET_LABELS.includes(m.label)) problems.push(`${metric} has no label ${m.label}`);
    for (const [label, value] of Object.entries(scope))
      if (!matchers.some((m) => m.label === label && m.op === "=" && m.value === value))
        problems.push(`${metric} is not scoped by ${label}="${value}"`);
  }
  for (const label of grouping)
    if (!known.has(label)) problems.push(`groups by ${label}, which no series of ${expr} carries`);
  return problems;
}
