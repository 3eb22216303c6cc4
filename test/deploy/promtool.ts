// Runs Prometheus' promtool (Debian: `apt-get install -y prometheus`; or $PROMTOOL) for the alert
// and dashboard checks, and writes the chart's rendered rules where promtool can read them.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { stringify } from "yaml";
import { CHART_DIR, helm } from "../../scripts/helm.ts";
import { find, helmSkip, parseObjects, type K8sObject } from "./render.ts";

export const PROMTOOL_DIR = join(import.meta.dirname, "promtool");
/** The values the promtool unit tests are written for (release cio, namespace ops). */
export const PROMTOOL_VALUES = join(PROMTOOL_DIR, "values.yaml");
export const PROMTOOL_TESTS = join(PROMTOOL_DIR, "alerts.test.yaml");

const binary = process.env.PROMTOOL || "promtool";

/** A skip reason when promtool (or helm, which renders the rules) is missing, else false. */
export const promtoolSkip: string | false = (() => {
  if (helmSkip) return helmSkip;
  const run = spawnSync(binary, ["--version"], { encoding: "utf8" });
  if (run.error && (run.error as NodeJS.ErrnoException).code === "ENOENT")
    return `promtool not found (apt-get install -y prometheus, or set $PROMTOOL)`;
  if (run.error) throw run.error;
  return false;
})();

/** Runs promtool; `ok` is its exit status 0, `output` stdout and stderr together. */
export function promtool(args: readonly string[], cwd?: string): { ok: boolean; output: string } {
  const run = spawnSync(binary, args, { encoding: "utf8", ...(cwd === undefined ? {} : { cwd }) });
  if (run.error) throw run.error;
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
}

/**
 * The chart's PrometheusRule rendered with a values file, --set values and --set-json ones (helm
 * --set passes 0.05 as a string, which the schema refuses for a number).
 */
export function renderRule(
  valuesFile: string | undefined,
  sets: readonly string[] = [],
  setJson: readonly string[] = [],
): K8sObject {
  const args = ["template", "cio", CHART_DIR, "--namespace", "ops", "--set", "prometheusRule.enabled=true"];
  if (valuesFile !== undefined) args.push("-f", valuesFile);
  for (const s of sets) args.push("--set", s);
  for (const s of setJson) args.push("--set-json", s);
  const [rule] = find(parseObjects(helm(args)), "PrometheusRule");
  if (!rule) throw new Error("no PrometheusRule rendered");
  return rule;
}

/** A Prometheus rules file: the PrometheusRule's spec.groups, as Prometheus itself would load them. */
export const rulesFile = (rule: K8sObject): string => stringify({ groups: rule.spec.groups });

/** Runs fn in a fresh temporary directory, removed afterwards. */
export function inTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "cio-promtool-"));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Writes rules.yaml (rendered with the promtool values) and a copy of the unit tests, which name
 * `rules.yaml` relative to themselves, into dir. Returns the path of the tests file.
 */
export function writePromtoolFiles(dir: string): string {
  writeFileSync(join(dir, "rules.yaml"), rulesFile(renderRule(PROMTOOL_VALUES)));
  const tests = join(dir, basename(PROMTOOL_TESTS));
  copyFileSync(PROMTOOL_TESTS, tests);
  return tests;
}

// `node test/deploy/promtool.ts <dir>` writes those files for running promtool by hand (docs/deploy.md).
if (import.meta.main) {
  const dir = process.argv[2];
  if (!dir) throw new Error("usage: node test/deploy/promtool.ts <output dir>");
  console.log(writePromtoolFiles(dir));
}
