import { test } from "node:test";
import assert from "node:assert/strict";
import { PROVIDERS } from "../../src/providers/registry.ts";
import { completeness, describeReport, REPO_LAYOUT } from "./completeness.ts";

test("every registered provider has its simulator kit, contract test, docs page, examples and up-to-date generated files", async () => {
  const report = await completeness(PROVIDERS, REPO_LAYOUT);
  const text = describeReport(report);
  if (text !== "") console.log(`what the providers still lack:\n${text}`);
  assert.equal(text, "", `what the providers still lack:\n${text}`);
});
