import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { renderCrdFiles } from "../../scripts/crd-files.ts";
import { toStructural, StructuralSchemaError } from "../../src/api/crd.ts";
import { CloudInstanceSpecSchema } from "../../src/api/index.ts";

const root = join(import.meta.dirname, "../..");

test("crds/ is what `npm run gen:crds` writes from src/api (run it and commit when this fails)", () => {
  for (const [file, text] of renderCrdFiles()) {
    const path = join(root, "crds", file);
    assert.ok(existsSync(path), `${path} is missing`);
    assert.equal(readFileSync(path, "utf8"), text, `${file} is stale`);
  }
});

type Node = Record<string, unknown>;

/** Walks every schema node with its path, as Kubernetes' structural-schema check does. */
function walk(node: Node, path: string, visit: (n: Node, p: string) => void): void {
  visit(node, path);
  const props = node.properties as Record<string, Node> | undefined;
  for (const [k, v] of Object.entries(props ?? {})) walk(v, `${path}.${k}`, visit);
  if (node.items) walk(node.items as Node, `${path}[]`, visit);
  if (typeof node.additionalProperties === "object")
    walk(node.additionalProperties as Node, `${path}{}`, visit);
}

for (const [file, text] of renderCrdFiles()) {
  test(`${file} is a structural schema with a description on every field`, () => {
    const crd = parse(text);
    const schema = crd.spec.versions[0].schema.openAPIV3Schema as Node;
    let preserveUnknown = 0;
    walk(schema, "", (n, p) => {
      assert.ok(typeof n.type === "string", `${p}: type missing`);
      for (const banned of ["$ref", "anyOf", "oneOf", "allOf", "not", "const", "$schema"])
        assert.ok(!(banned in n), `${p}: ${banned}`);
      assert.notEqual(n.additionalProperties, false, `${p}: additionalProperties false`);
      if (n["x-kubernetes-preserve-unknown-fields"] === true) {
        preserveUnknown++;
        assert.ok(
          p === ".spec.providerOptions" || p === ".metadata",
          `${p}: preserve-unknown-fields only for providerOptions`,
        );
      }
      const isLeafOfMap = p.endsWith("{}") || p.endsWith("[]");
      if (p !== "" && p !== ".metadata" && !isLeafOfMap)
        assert.ok(typeof n.description === "string" && n.description.length > 0, `${p}: description missing`);
    });
    assert.ok(preserveUnknown >= 1);
  });
}

test("CRDs carry subresources, printer columns, short names and the cloud category", () => {
  const crds = [...renderCrdFiles().values()].map((t) => parse(t));
  const byKind = new Map(crds.map((c) => [c.spec.names.kind, c]));
  const ci = byKind.get("CloudInstance");
  assert.deepEqual(ci.spec.names.shortNames, ["cinst"]);
  assert.deepEqual(ci.spec.names.categories, ["cloud"]);
  assert.deepEqual(ci.spec.versions[0].subresources, { status: {} });
  assert.deepEqual(
    ci.spec.versions[0].additionalPrinterColumns.map((c: { name: string }) => c.name),
    ["Provider", "Region", "Plan", "Phase", "IP", "Ready", "Age"],
  );
  const it = byKind.get("InstanceTemplate");
  assert.deepEqual(it.spec.names.shortNames, ["itpl"]);
  assert.equal(it.spec.versions[0].subresources.scale.specReplicasPath, ".spec.replicas");
  assert.equal(
    ci.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.powerState.default,
    "Running",
  );
});

test("toStructural refuses what Kubernetes would refuse", () => {
  assert.throws(
    () => toStructural(z.toJSONSchema(z.union([z.string(), z.number()]), { target: "openapi-3.0" })),
    StructuralSchemaError,
  );
  assert.throws(() => toStructural({ $ref: "#/$defs/missing" }), StructuralSchemaError);
  assert.deepEqual(
    toStructural({ type: "object", additionalProperties: false, properties: { a: { const: "x" } } }),
    {
      type: "object",
      properties: { a: { enum: ["x"], type: "string" } },
    },
  );
});

test("the spec schema applies the defaults DESIGN.md gives", () => {
  const spec = CloudInstanceSpecSchema.parse({ provider: { name: "m2s" } });
  assert.equal(spec.powerState, "Running");
  assert.equal(spec.deletionPolicy, "Delete");
  assert.equal(spec.updatePolicy, "Safe");
  assert.throws(() => CloudInstanceSpecSchema.parse({ provider: { name: "nope" } }));
});
