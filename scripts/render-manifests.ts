// Writes deploy/manifests/ (plain YAML for `kubectl apply -k deploy/manifests`) from the Helm
// chart. Run after changing the chart or the CRDs: `node scripts/render-manifests.ts`.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MANIFESTS_DIR, renderManifestFiles } from "./manifest-files.ts";
import { helpAndExit } from "./cli-help.ts";

helpAndExit(`Usage: node scripts/render-manifests.ts

Writes deploy/manifests/ (plain YAML for kubectl apply -k) from the Helm chart.`);

mkdirSync(MANIFESTS_DIR, { recursive: true });
for (const [file, text] of renderManifestFiles()) writeFileSync(join(MANIFESTS_DIR, file), text);
console.log(`wrote ${MANIFESTS_DIR}`);
