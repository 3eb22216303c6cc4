import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { CHART_DIR, helm } from "../../scripts/helm.ts";
import { exportedSeries, readsOf, seriesProblems, TARGET_LABELS } from "./promql.ts";
import { inTempDir, promtool, promtoolSkip } from "./promtool.ts";
import { find, helmSkip, template, templateError, type K8sObject } from "./render.ts";

const FILE = join(CHART_DIR, "dashboards", "cloud-instance-operator.json");
const KEY = "cloud-instance-operator.json";
const dashboard = (): K8sObject => JSON.parse(readFileSync(FILE, "utf8")) as K8sObject;

/** Every panel, rows' collapsed children included, rows themselves excluded. */
const panelsOf = (d: K8sObject): K8sObject[] =>
  (d.panels as K8sObject[]).flatMap((p) => (p.type === "row" ? ((p.panels ?? []) as K8sObject[]) : [p]));

/** Every PromQL expression of the dashboard, with the scope its selectors must carry. */
function queries(d: K8sObject): { where: string; expr: string; scope: Record<string, string> }[] {
  const out: { where: string; expr: string; scope: Record<string, string> }[] = panelsOf(d).flatMap((p) =>
    (p.targets as K8sObject[]).map((t) => ({
      where: `${p.title as string}/${t.refId as string}`,
      expr: t.expr as string,
      scope: { job: "$job", namespace: "$namespace" },
    })),
  );
  for (const v of d.templating.list as K8sObject[]) {
    if (v.type !== "query") continue;
    const m = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(v.query as string);
    assert.ok(m, `variable ${v.name as string}: label_values(<selector>, <label>)`);
    assert.ok(TARGET_LABELS.includes(m[2]!), `variable ${v.name as string} lists a target label`);
    out.push({
      where: `variable ${v.name as string}`,
      expr: m[1]!,
      scope: v.name === "job" ? { namespace: "$namespace" } : {},
    });
  }
  return out;
}

interface Grid {
  x: number;
  y: number;
  w: number;
  h: number;
}
const overlap = (a: Grid, b: Grid): boolean => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

test("the dashboard is valid JSON: unique ids, a laid-out grid, a Prometheus data source and job/namespace variables", () => {
  const d = dashboard();
  assert.equal(d.uid, "cloud-instance-operator");
  assert.equal(typeof d.schemaVersion, "number");
  const all = d.panels as K8sObject[];
  const ids = all.flatMap((p) => [p.id, ...((p.panels ?? []) as K8sObject[]).map((c) => c.id)]);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  for (const [i, p] of all.entries()) {
    const g = p.gridPos as Grid;
    assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0, `${p.title as string}: inside the 24-column grid`);
    for (const q of all.slice(i + 1)) assert.ok(!overlap(g, q.gridPos), `${p.title as string} overlaps ${q.title as string}`);
  }
  const panels = panelsOf(d);
  assert.ok(panels.length >= 20);
  for (const p of panels) {
    assert.deepEqual(p.datasource, { type: "prometheus", uid: "${datasource}" }, `${p.title as string}: data source`);
    assert.ok((p.targets as K8sObject[]).length > 0, `${p.title as string}: queries`);
    for (const t of p.targets as K8sObject[]) assert.ok(t.expr && t.refId, `${p.title as string}: expr and refId`);
  }
  const vars = new Map((d.templating.list as K8sObject[]).map((v) => [v.name as string, v]));
  assert.deepEqual([...vars.keys()], ["datasource", "namespace", "job"]);
  assert.equal(vars.get("datasource")!.type, "datasource");
  assert.equal(vars.get("datasource")!.query, "prometheus");
  for (const name of ["namespace", "job"]) assert.equal(vars.get(name)!.datasource.uid, "${datasource}");
});

test("every dashboard query reads only series the operator exports, scoped to the chosen job and namespace", () => {
  const exported = exportedSeries();
  const all = queries(dashboard());
  for (const { where, expr, scope } of all) assert.deepEqual(seriesProblems(expr, exported, scope), [], where);
});

test("the dashboard shows reconciles, latency, queue, providers, phases, drift, leader and process", () => {
  const reads = queries(dashboard()).map((q) => ({ expr: q.expr, ...readsOf(q.expr) }));
  const reading = (metric: string): typeof reads => reads.filter((r) => r.selectors.some((s) => s.metric === metric));
  const grouped = (metric: string, labels: string[]): boolean =>
    reading(metric).some((r) => labels.every((l) => r.grouping.includes(l)));
  assert.ok(grouped("controller_runtime_reconcile_total", ["controller"]), "reconcile rate per controller");
  assert.ok(grouped("controller_runtime_reconcile_errors_total", ["controller"]), "errors per controller");
  for (const q of ["0.5", "0.99"]) {
    for (const [metric, by] of [
      ["controller_runtime_reconcile_time_seconds_bucket", "controller"],
      ["workqueue_queue_duration_seconds_bucket", "name"],
      ["cloud_instance_provider_request_duration_seconds_bucket", "provider"],
    ] as const)
      assert.ok(
        reading(metric).some((r) => r.expr.startsWith(`histogram_quantile(${q},`) && r.grouping.includes(by)),
        `p${Number(q) * 100} of ${metric} by ${by}`,
      );
  }
  assert.ok(grouped("workqueue_depth", ["name"]), "queue depth");
  assert.ok(grouped("cloud_instance_provider_requests_total", ["provider", "code"]), "provider calls");
  assert.ok(
    reading("cloud_instance_provider_requests_total").some((r) =>
      r.selectors.some((s) => s.matchers.some((m) => m.label === "code" && m.op === "=~")),
    ),
    "provider errors",
  );
  assert.ok(grouped("cloud_instances", ["phase"]), "CloudInstances per phase");
  assert.ok(grouped("cloud_instance_drifted", ["provider", "field"]), "drift");
  for (const metric of ["leader_election_master_status", "process_resident_memory_bytes", "process_cpu_seconds_total"])
    assert.ok(reading(metric).length > 0, metric);
});

test("the PromQL reader finds selectors, matchers and grouping, and names what the operator lacks", () => {
  const { selectors, grouping } = readsOf(
    'sum by (controller, le) (rate(controller_runtime_reconcile_time_seconds_bucket{job="$job",code=~"5..|429"}[$__rate_interval] offset 5m))' +
      " / on () group_left max without (pod) (up) or vector(1e+06) and absent(workqueue_depth{name='a\\'b'})",
  );
  assert.deepEqual(
    selectors.map((s) => [s.metric, s.matchers.map((m) => `${m.label}${m.op}${m.value}`)]),
    [
      ["controller_runtime_reconcile_time_seconds_bucket", ["job=$job", "code=~5..|429"]],
      ["up", []],
      ["workqueue_depth", ["name=a'b"]],
    ],
  );
  assert.deepEqual(grouping, ["controller", "le", "pod"]);
  const exported = exportedSeries();
  const scope = { job: "$job" };
  assert.deepEqual(seriesProblems('sum by (phase) (cloud_instances{job="$job"})', exported, scope), []);
  assert.deepEqual(seriesProblems('cloud_instance{job="$job"}', exported, scope), ["cloud_instance is not exported"]);
  assert.deepEqual(seriesProblems('cloud_instances{job="$job",state="Running"}', exported, scope), [
    "cloud_instances has no label state",
  ]);
  assert.deepEqual(seriesProblems("cloud_instances", exported, scope), ['cloud_instances is not scoped by job="$job"']);
  assert.match(seriesProblems('sum by (zone) (cloud_instances{job="$job"})', exported, scope).join(), /groups by zone/);
  assert.match(seriesProblems('{__name__="cloud_instances"}', exported).join(), /without a metric name/);
  assert.throws(() => readsOf('up{job="x",namespace}'), /label matchers/);
});

test("the chart ships the dashboard as a sidecar ConfigMap only when enabled", { skip: helmSkip }, () => {
  assert.equal(find(template(), "ConfigMap").length, 0, "opt-in");
  const [cm] = find(template(["grafanaDashboard.enabled=true"]), "ConfigMap");
  assert.ok(cm);
  assert.equal(cm.metadata.name, "cio-cloud-instance-operator-dashboard");
  assert.equal(cm.metadata.namespace, "ops");
  assert.equal(cm.metadata.labels.grafana_dashboard, "1");
  assert.equal(cm.metadata.labels["app.kubernetes.io/instance"], "cio");
  assert.deepEqual(Object.keys(cm.data), [KEY]);
  assert.deepEqual(JSON.parse(cm.data[KEY] as string), dashboard(), "the ConfigMap holds the dashboard file");

  const custom = template([
    "grafanaDashboard.enabled=true",
    "grafanaDashboard.label=grafana.example.com/dashboard",
    "grafanaDashboard.labelValue=2",
    "grafanaDashboard.namespace=monitoring",
    "grafanaDashboard.labels.team=platform",
    "grafanaDashboard.annotations.grafana_folder=Operators",
  ]);
  const [c] = find(custom, "ConfigMap");
  assert.equal(c!.metadata.namespace, "monitoring");
  assert.equal(c!.metadata.labels["grafana.example.com/dashboard"], "2", "the label value is always a string");
  assert.equal(c!.metadata.labels.grafana_dashboard, undefined);
  assert.equal(c!.metadata.labels.team, "platform");
  assert.deepEqual(c!.metadata.annotations, { grafana_folder: "Operators" });
  assert.match(templateError(["grafanaDashboard.enabled=true", "grafanaDashboard.label=not a label"]), /label/);
  const sets = ["grafanaDashboard.enabled=true", "grafanaDashboard.namespace=monitoring"].flatMap((s) => ["--set", s]);
  assert.match(helm(["lint", "--strict", CHART_DIR, ...sets]), /0 chart\(s\) failed/);
});

test("every dashboard query is valid PromQL (promtool check rules)", { skip: promtoolSkip }, () => {
  const all = queries(dashboard());
  // Grafana's variables become what they stand for on a real install.
  const rules = all.map(({ expr }, i) => ({
    record: `dashboard:query_${String(i)}`,
    expr: expr
      .replaceAll("$__rate_interval", "2m")
      .replaceAll("$job", "cio-cloud-instance-operator-metrics")
      .replaceAll("$namespace", "ops"),
  }));
  assert.ok(rules.every((r) => !r.expr.includes("$")), "no variable left");
  inTempDir((dir) => {
    writeFileSync(join(dir, "dashboard.rules.yaml"), stringify({ groups: [{ name: "dashboard", rules }] }));
    const { ok, output } = promtool(["check", "rules", "dashboard.rules.yaml"], dir);
    assert.ok(ok, output);
    assert.match(output, new RegExp(`SUCCESS: ${String(rules.length)} rules found`));
  });
});
