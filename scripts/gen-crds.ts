// Writes crds/*.yaml from the zod schemas in src/api (the single source of truth), and the
// same files into the Helm chart's crds/ folder when the chart exists.
import { mkdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { renderCrdFiles } from "./crd-files.ts";
import { helpAndExit } from "./cli-help.ts";

helpAndExit(`Usage: npm run gen:crds

Writes crds/*.yaml (and the Helm chart's crds/) from the zod schemas in src/api.`);

const root = join(import.meta.dirname, "..");
const targets = [join(root, "crds"), join(root, "deploy/helm/cloud-instance-operator/crds")];
for (const dir of targets) {
  if (dir !== targets[0] && !existsSync(join(dir, ".."))) continue;
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of renderCrdFiles()) writeFileSync(join(dir, file), text);
  console.log(`wrote ${dir}`);
}
