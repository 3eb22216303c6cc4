import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { formattedDocFiles } from "../../scripts/docs-tables.ts";
import { PROVIDERS } from "../../src/providers/registry.ts";

const root = join(import.meta.dirname, "../..");

test("the provider tables in the docs are generated from the definitions (npm run gen:docs)", async () => {
  for (const [file, text] of await formattedDocFiles(root, PROVIDERS)) {
    assert.equal(readFileSync(join(root, file), "utf8"), text, `${file} is stale: run npm run gen:docs`);
  }
});
