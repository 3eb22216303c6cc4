import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parse } from "yaml";
import { CloudInstanceStatusSchema, PHASES, PROVIDER_NAMES } from "../../src/api/index.ts";
import { MAX_SHARDS, shardOfLeaseName } from "../../src/controller/runtime/sharding.ts";
import { exportedSeries, readsOf, seriesProblems, TARGET_LABELS } from "./promql.ts";
import {
  inTempDir,
  PROMTOOL_TESTS,
  PROMTOOL_VALUES,
  promtool,
  promtoolSkip,
  renderRule,
  rulesFile,
  writePromtoolFiles,
} from "./promtool.ts";
import { helmSkip, templateError, type K8sObject } from "./render.ts";

interface AlertCase {
  eval_time: string;
  alertname: string;
  exp_alerts?: unknown[];
}
interface UnitTests {
  rule_files: string[];
  tests: { name: string; input_series: { series: string; values: string }[]; alert_rule_test: AlertCase[] }[];
}

const unitTests = (): UnitTests => parse(readFileSync(PROMTOOL_TESTS, "utf8")) as UnitTests;
const rulesOf = (rule: K8sObject): K8sObject[] => rule.spec.groups.flatMap((g: K8sObject) => g.rules);
const JOB = "cio-cloud-instance-operator-metrics";
const CONTROLLERS = ["cloudinstance", "instancetemplate"];
const LEASE = "cloud-instance-operator-leader";

const ALL_ALERTS = [
  "CloudInstanceOperatorDown",
  "CloudInstanceReconcileErrorsHigh",
  "CloudInstancesStuckProvisioning",
  "CloudInstancesStuckDeleting",
  "CloudInstancesFailed",
  "CloudInstancesDrifted",
  "CloudInstanceReconcileHung",
  "CloudInstanceProviderErrorRateHigh",
  "CloudInstanceProviderBalanceLow",
  "CloudInstanceOperatorNoLeader",
  "CloudInstanceShardsUnowned",
  "CloudInstanceLeaseHeldTwice",
];

/** Values the operator really puts in each label (a typo in a test series would test nothing). */
const LABEL_VALUES: Record<string, (value: string, metric: string) => boolean> = {
  provider: (v) => (PROVIDER_NAMES as readonly string[]).includes(v) || v === "template",
  phase: (v) => (PHASES as readonly string[]).includes(v),
  field: (v) =>
    CloudInstanceStatusSchema.shape.drift.safeParse([{ field: v, desired: "a", observed: "b", since: "c" }]).success,
  code: (v) => /^([1-5][0-9][0-9]|timeout|error)$/.test(v),
  controller: (v) => CONTROLLERS.includes(v),
  result: (v) => ["success", "error", "requeue", "requeue_after"].includes(v),
  // leader_election_master_status: the leader Lease, or with --shards a shard's (shardLeaseName).
  name: (v, metric) =>
    metric === "leader_election_master_status"
      ? v === LEASE || shardOfLeaseName(LEASE, v, MAX_SHARDS) !== undefined
      : CONTROLLERS.includes(v),
  account_digest: (v) => /^[0-9a-f]{16}$/.test(v),
};

test("promtool check rules accepts the rendered alerts with default and non-default values", { skip: promtoolSkip }, () => {
  const variants: [string | undefined, string[], string[]][] = [
    [undefined, [], []],
    [PROMTOOL_VALUES, [], []],
    [undefined, ["leaderElection.enabled=false"], []],
    [
      undefined,
      [
        "prometheusRule.drifted.severity=warning",
        "prometheusRule.hungReconcile.seconds=1800",
        "prometheusRule.additionalAlertLabels.team=platform",
      ],
      ["prometheusRule.reconcileErrors.ratio=0.05", "prometheusRule.lowBalance.threshold=2500.5"],
    ],
  ];
  for (const [values, sets, setJson] of variants) {
    const rule = renderRule(values, sets, setJson);
    inTempDir((dir) => {
      writeFileSync(join(dir, "rules.yaml"), rulesFile(rule));
      const { ok, output } = promtool(["check", "rules", "rules.yaml"], dir);
      assert.ok(ok, output);
      assert.match(output, new RegExp(`SUCCESS: ${rulesOf(rule).length} rules found`));
    });
  }
});

test("promtool test rules: every alert fires on its series and stays quiet otherwise", { skip: promtoolSkip }, () => {
  inTempDir((dir) => {
    const tests = writePromtoolFiles(dir);
    const { ok, output } = promtool(["test", "rules", basename(tests)], dir);
    assert.ok(ok, output);
    assert.match(output, /SUCCESS/);
  });
});

test("the promtool tests give every alert a case that fires it and one that does not", { skip: helmSkip }, () => {
  const alerts = rulesOf(renderRule(PROMTOOL_VALUES)).map((r) => r.alert as string);
  assert.deepEqual(alerts, ALL_ALERTS, "the promtool values render every alert");
  const { rule_files, tests } = unitTests();
  assert.deepEqual(rule_files, ["rules.yaml"]);
  const cases = tests.flatMap((t) => t.alert_rule_test);
  for (const c of cases) assert.ok(alerts.includes(c.alertname), `${c.alertname} is not an alert of the chart`);
  for (const alert of alerts) {
    const mine = cases.filter((c) => c.alertname === alert);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${alert} has no case where it fires`);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${alert} has no case where it stays quiet`);
  }
});

test("promtool input series carry exactly the operator's labels, with values it really exports", () => {
  const exported = exportedSeries();
  const inputs = unitTests().tests.flatMap((t) => t.input_series.map((s) => s.series));
  assert.ok(inputs.length > 20);
  for (const series of inputs) {
    const { selectors } = readsOf(series);
    assert.equal(selectors.length, 1, series);
    const { metric, matchers } = selectors[0]!;
    const own = exported.get(metric);
    assert.ok(own, `${metric} is not exported`);
    const labels = new Map(matchers.map((m) => [m.label, m.value]));
    assert.ok(matchers.every((m) => m.op === "="));
    assert.deepEqual(
      [...labels.keys()].filter((l) => !TARGET_LABELS.includes(l)).sort(),
      [...own].sort(),
      `${series}: the operator's labels`,
    );
    for (const target of ["job", "namespace", "pod", "instance"]) assert.ok(labels.has(target), `${series}: ${target}`);
    assert.equal(labels.get("namespace"), "ops");
    assert.match(labels.get("job")!, /^(cio|other)-cloud-instance-operator-metrics$/);
    for (const [label, value] of labels) {
      const valid = LABEL_VALUES[label];
      if (valid) assert.ok(valid(value, metric), `${series}: ${label}="${value}" is not a value the operator exports`);
    }
  }
});

test("every alert reads only series and labels the operator exports, scoped to its release", { skip: helmSkip }, () => {
  const exported = exportedSeries();
  for (const r of rulesOf(renderRule(PROMTOOL_VALUES)))
    assert.deepEqual(seriesProblems(String(r.expr), exported, { job: JOB, namespace: "ops" }), [], r.alert);
});

test("the balance alert is opt-in; the drift alert's severity and the thresholds are checked values", { skip: helmSkip }, () => {
  const alerts = (rule: K8sObject): string[] => rulesOf(rule).map((r) => r.alert as string);
  assert.ok(!alerts(renderRule(undefined)).includes("CloudInstanceProviderBalanceLow"));
  const custom = rulesOf(
    renderRule(undefined, [
      "prometheusRule.drifted.severity=warning",
      "prometheusRule.lowBalance.threshold=0",
      "prometheusRule.hungReconcile.seconds=1800",
    ]),
  );
  const byName = new Map(custom.map((r) => [r.alert as string, r]));
  assert.equal(byName.get("CloudInstancesDrifted")!.labels.severity, "warning");
  assert.match(byName.get("CloudInstanceProviderBalanceLow")!.expr, /\) < 0$/, "a threshold of 0 still renders");
  assert.match(byName.get("CloudInstanceReconcileHung")!.expr, /\) > 1800$/);
  assert.match(templateError(["prometheusRule.drifted.severity=loud"]), /severity/);
  assert.match(templateError(["prometheusRule.hungReconcile.seconds=0"]), /seconds/);
  assert.match(templateError(["prometheusRule.lowBalance.threshold=plenty"]), /threshold/);
  assert.match(templateError(["prometheusRule.stuckDeleting.for=soon"]), /for/);
});
