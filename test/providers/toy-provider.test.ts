/**
 * A sixth provider added the way docs/adding-a-provider.md says: one folder
 * (test/fixtures/toy-provider/, standing for src/providers/toy/ plus its simulator, contract
 * test and docs page) and one registry line (below, in a registry of the test's own). The CRD,
 * the docs tables, the redaction lists, the simulator matrix and the completeness report pick
 * it up; its contract test runs from the folder (test/fixtures/toy-provider/contract.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { renderCrdFiles } from "../../scripts/crd-files.ts";
import { formattedDocFiles, renderDocFiles } from "../../scripts/docs-tables.ts";
import { redactPaths, createLogger } from "../../src/observability/logger.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { providerClient, type ProviderDefinition } from "../../src/providers/definition.ts";
import { HttpClientFactory } from "../../src/providers/http/client.ts";
import { PROVIDERS } from "../../src/providers/registry.ts";
import { simulatorKits } from "../sim/all.ts";
import { definition as toy } from "../fixtures/toy-provider/definition.ts";
import { completeness, describeReport, REPO_LAYOUT, type ProviderLayout } from "./completeness.ts";

const fixture = join(import.meta.dirname, "../fixtures/toy-provider");
/** The one line. */
const REGISTRY: readonly ProviderDefinition[] = [...PROVIDERS, toy];

/** The fixture folder holds every piece a provider has. */
const toyLayout = (root: string): ProviderLayout => ({
  root,
  kit: (p) => (p === "toy" ? join(fixture, "kit.ts") : REPO_LAYOUT.kit(p)),
  contractTest: (p) => (p === "toy" ? join(fixture, "contract.test.ts") : REPO_LAYOUT.contractTest(p)),
  docsPage: (p) => (p === "toy" ? join(fixture, "toy.md") : REPO_LAYOUT.docsPage(p)),
  examples: (p) => (p === "toy" ? undefined : REPO_LAYOUT.examples(p)),
});

type Schema = { properties?: Record<string, Schema>; enum?: string[]; description?: string };

test("the CRD's provider enum and field descriptions include the toy provider", () => {
  for (const text of renderCrdFiles(REGISTRY).values()) {
    const crd = parse(text) as { spec: { versions: { schema: { openAPIV3Schema: Schema } }[] } };
    const spec = crd.spec.versions[0]?.schema.openAPIV3Schema.properties?.spec;
    const ref = spec?.properties?.provider?.properties;
    assert.deepEqual(ref?.name?.enum, ["m2s", "mos", "vscale", "zomro", "multicloud", "toy"]);
    assert.match(ref?.name?.description ?? "", /zomro, multicloud or toy\.$/);
    assert.match(ref?.credentialsSecretRef?.description ?? "", /toy: toyToken\)/);
    assert.match(spec?.properties?.region?.description ?? "", /toy site/);
    assert.match(spec?.properties?.plan?.description ?? "", /toy size/);
    assert.match(spec?.properties?.image?.description ?? "", /toy disk/);
  }
});

test("the docs tables get a toy row, the logger and the HTTP redactor the toy's secrets", () => {
  const docs = renderDocFiles(REPO_LAYOUT.root, REGISTRY);
  assert.match(
    docs.get("README.md") ?? "",
    /\| \[toy\]\(docs\/providers\/toy\.md\) \| `toyToken` \| create \(hatch\), start, stop \| a test fixture/,
  );
  assert.match(docs.get("examples/README.md") ?? "", /; toy `toyToken`\./);
  assert.ok(redactPaths(REGISTRY).includes("*.toyToken"));
  assert.ok(redactPaths(REGISTRY).includes("*.headers['x-toy']"));
  const logger = createLogger({ level: "silent" });
  const http = new HttpClientFactory({ logger, metrics: new Metrics() });
  const client = providerClient(
    toy,
    { credentials: {}, secretName: undefined, endpoint: undefined, http, logger },
    { credentialKey: "k", secrets: ["t0y-secret"] },
  );
  assert.equal(client.baseUrl.href, "https://api.toy.example/v1");
  assert.equal(
    client.redactor.text("?toy_sig=abc&name=web&k=t0y-secret"),
    "?toy_sig=[REDACTED]&name=web&k=[REDACTED]",
  );
  void http.close();
});

test("the simulator matrix finds the toy's kit; the completeness report asks only for regenerated files, then nothing", async () => {
  const kits = await simulatorKits(
    REGISTRY.map((d) => d.provider),
    (p) => toyLayout("").kit(p),
  );
  assert.equal(kits.toy?.spec.plan, "small");

  const before = await completeness([toy], toyLayout(REPO_LAYOUT.root));
  assert.deepEqual(before.get("toy"), [], describeReport(before));
  assert.ok((before.get("generated files") ?? []).some((f) => f.startsWith("README.md")));

  // What `npm run gen:crds && npm run gen:docs` do, into a copy of the repository's files.
  const root = mkdtempSync(join(tmpdir(), "toy-provider-"));
  try {
    for (const f of ["README.md", "examples/README.md", "docs/deploy.md", "crds"])
      cpSync(join(REPO_LAYOUT.root, f), join(root, f), { recursive: true });
    for (const [file, text] of renderCrdFiles(REGISTRY)) writeFileSync(join(root, "crds", file), text);
    for (const [file, text] of await formattedDocFiles(root, REGISTRY)) writeFileSync(join(root, file), text);
    const after = await completeness(REGISTRY, toyLayout(root));
    assert.equal(describeReport(after), "");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
