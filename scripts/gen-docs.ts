// Rewrites the generated provider tables in README.md, examples/README.md and docs/deploy.md
// from the provider definitions (src/providers/registry.ts); a test fails when they are stale.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PROVIDERS } from "../src/providers/registry.ts";
import { renderDocFiles } from "./docs-tables.ts";

const root = join(import.meta.dirname, "..");
for (const [file, text] of renderDocFiles(root, PROVIDERS)) {
  writeFileSync(join(root, file), text);
  console.log(`wrote ${file}`);
}
