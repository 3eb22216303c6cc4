/**
 * What a registered provider still lacks: everything outside its definition that the operator,
 * the docs and the test matrices expect. `test/providers/completeness.test.ts` runs it over the
 * registry; the toy-provider test runs it over a fixture's own layout.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { renderCrdFiles } from "../../scripts/crd-files.ts";
import { formattedDocFiles } from "../../scripts/docs-tables.ts";
import type { ProviderDefinition } from "../../src/providers/definition.ts";
import { SIM_PROFILES } from "../sim/common.ts";
import { loadKit } from "../sim/all.ts";

/** Where each piece of a provider lives. */
export interface ProviderLayout {
  /** Repository root holding README.md, examples/README.md, docs/deploy.md and crds/. */
  root: string;
  kit(provider: string): string;
  contractTest(provider: string): string;
  docsPage(provider: string): string;
  /** The folder of examples (a Secret, a template, an instance), or undefined when none is expected. */
  examples(provider: string): string | undefined;
}

const repo = join(import.meta.dirname, "../..");

/** The repository's own layout. */
export const REPO_LAYOUT: ProviderLayout = {
  root: repo,
  kit: (p) => join(repo, "test/sim", p, "kit.ts"),
  contractTest: (p) => join(repo, "test/providers", p, "contract.test.ts"),
  docsPage: (p) => join(repo, "docs/providers", `${p}.md`),
  examples: (p) => join(repo, "examples", p),
};

/** Checks that need no registry around the provider (the file-backed pieces and the kit). */
async function ownPieces(def: ProviderDefinition, layout: ProviderLayout): Promise<string[]> {
  const missing: string[] = [];
  const p = def.provider;
  const kit = await loadKit(layout.kit(p));
  if (kit === undefined) missing.push(`a simulator kit exporting \`kit\` at ${layout.kit(p)}`);
  else {
    if (!(kit.lifecycleCallBudget > 0)) missing.push("a positive lifecycleCallBudget in its simulator kit");
    for (const profile of SIM_PROFILES) {
      try {
        const sim = await kit.start({}, profile);
        const lacking = def.credentialKeys.required.filter((k) => !(k in sim.credentials));
        if (lacking.length > 0) missing.push(`${profile} simulator credentials with ${lacking.join(", ")}`);
        await sim.close();
      } catch (err) {
        missing.push(`a simulator that starts in the ${profile} profile (${String(err)})`);
      }
    }
  }
  // The docs table shows only what the driver has; a word for an action it lacks is a stale promise.
  for (const action of Object.keys(def.docs.actions ?? {}))
    if (action !== "create" && !(def.capabilities as ReadonlySet<string>).has(action))
      missing.push(`a \`${action}\` method on its driver, or no docs.actions.${action}`);
  const contract = layout.contractTest(p);
  if (!existsSync(contract) || !readFileSync(contract, "utf8").includes("runDriverContract"))
    missing.push(`a contract test calling runDriverContract at ${contract}`);
  if (!existsSync(layout.docsPage(p))) missing.push(`a docs page at ${layout.docsPage(p)}`);
  const examples = layout.examples(p);
  if (examples !== undefined && (!existsSync(examples) || readdirSync(examples).length === 0))
    missing.push(`examples at ${examples}`);
  return missing;
}

/** The generated files under `layout.root` that do not show `registry` as it is now. */
async function staleArtefacts(registry: readonly ProviderDefinition[], root: string): Promise<string[]> {
  const stale: string[] = [];
  for (const [file, text] of renderCrdFiles(registry)) {
    const path = join(root, "crds", file);
    if (!existsSync(path) || readFileSync(path, "utf8") !== text)
      stale.push(`crds/${file} (npm run gen:crds)`);
  }
  for (const [file, text] of await formattedDocFiles(root, registry))
    if (readFileSync(join(root, file), "utf8") !== text) stale.push(`${file} (npm run gen:docs)`);
  return stale;
}

/** provider -> what it lacks (empty when complete); "generated files" for stale artefacts. */
export async function completeness(
  registry: readonly ProviderDefinition[],
  layout: ProviderLayout,
): Promise<Map<string, string[]>> {
  const report = new Map<string, string[]>();
  for (const def of registry) report.set(def.provider, await ownPieces(def, layout));
  report.set("generated files", await staleArtefacts(registry, layout.root));
  return report;
}

/** The report in words, one line per missing piece. */
export function describeReport(report: ReadonlyMap<string, readonly string[]>): string {
  return [...report].flatMap(([who, missing]) => missing.map((m) => `${who}: ${m}`)).join("\n");
}
