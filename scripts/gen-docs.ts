// Rewrites the generated provider tables in README.md, examples/README.md and docs/deploy.md
// from the provider definitions (src/providers/registry.ts); a test fails when they are stale.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PROVIDERS } from "../src/providers/registry.ts";
import { formattedDocFiles } from "./docs-tables.ts";
import { helpAndExit } from "./cli-help.ts";

helpAndExit(`Usage: npm run gen:docs

Rewrites the generated provider tables in README.md, examples/README.md and docs/deploy.md
from the provider definitions (src/providers/registry.ts), formatted by prettier.`);

const root = join(import.meta.dirname, "..");
for (const [file, text] of await formattedDocFiles(root, PROVIDERS)) {
  writeFileSync(join(root, file), text);
  console.log(`wrote ${file}`);
}
