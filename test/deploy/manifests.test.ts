import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { MANIFESTS_DIR, MANIFESTS_NAMESPACE, renderManifestFiles } from "../../scripts/manifest-files.ts";
import { renderCrdFiles } from "../../scripts/crd-files.ts";
import { find, helmSkip, parseObjects, rbacProblems, securityProblems, type K8sObject } from "./render.ts";

const read = (file: string): string => readFileSync(join(MANIFESTS_DIR, file), "utf8");

/** Everything `kubectl apply -k deploy/manifests` would send, in order. */
function kustomizeResources(): K8sObject[] {
  const kustomization = parse(read("kustomization.yaml")) as { resources: string[] };
  return kustomization.resources.flatMap((file) => parseObjects(read(file)));
}

test(
  "deploy/manifests/ is what `node scripts/render-manifests.ts` renders from the chart (run it when this fails)",
  { skip: helmSkip },
  () => {
    const expected = renderManifestFiles();
    assert.deepEqual(readdirSync(MANIFESTS_DIR).sort(), [...expected.keys()].sort());
    for (const [file, text] of expected) assert.equal(read(file), text, `deploy/manifests/${file} is stale`);
  },
);

test("the kustomization lists every manifest file and they hold the whole install", () => {
  const kustomization = parse(read("kustomization.yaml"));
  assert.equal(kustomization.kind, "Kustomization");
  const yamlFiles = readdirSync(MANIFESTS_DIR).filter((f) => f !== "kustomization.yaml");
  assert.deepEqual([...kustomization.resources].sort(), yamlFiles.sort());
  const objects = kustomizeResources();
  const kinds = objects.map((o) => o.kind);
  for (const kind of ["CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "Deployment"])
    assert.ok(kinds.includes(kind), kind);
  assert.ok(
    kinds.indexOf("Namespace") < kinds.indexOf("ServiceAccount"),
    "the Namespace comes before what lives in it",
  );
  for (const o of objects) assert.ok(o.apiVersion && o.kind && o.metadata?.name, "complete objects");
  for (const o of objects.filter((x) => x.metadata.namespace !== undefined))
    assert.equal(o.metadata.namespace, MANIFESTS_NAMESPACE);
});

test("the plain manifests carry the generated CRDs unchanged", () => {
  const crds = find(kustomizeResources(), "CustomResourceDefinition");
  const generated = [...renderCrdFiles().values()].map((text) => parse(text));
  assert.deepEqual(crds, generated);
});

test("the plain manifests are restricted and least-privilege", () => {
  const objects = kustomizeResources();
  assert.deepEqual(securityProblems(objects), []);
  assert.deepEqual(rbacProblems(objects), []);
  const [ns] = find(objects, "Namespace");
  assert.equal(ns!.metadata.labels["pod-security.kubernetes.io/enforce"], "restricted");
});
