import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import { CloudInstanceSchema, InstanceTemplateSchema, PROVIDER_NAMES } from "../../src/api/index.ts";
import { DRIVERS } from "../../src/providers/registry.ts";
import { loadCrdSchemas, validate, validateCustomObject, type K8sObject } from "./openapi-validator.ts";

const root = join(import.meta.dirname, "../..");
const examplesDir = join(root, "examples");
const schemas = loadCrdSchemas(join(root, "crds"));

/** Secret keys that are settings, not secrets, and so may hold a real value in an example. */
const NON_SECRET_KEYS = new Set(["signatureMethod"]);

interface Doc {
  file: string;
  obj: K8sObject;
}

function loadExamples(): Doc[] {
  const docs: Doc[] = [];
  for (const entry of readdirSync(examplesDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".yaml")) continue;
    const path = join(entry.parentPath, entry.name);
    const file = relative(examplesDir, path);
    for (const d of parseAllDocuments(readFileSync(path, "utf8"))) {
      assert.deepEqual(d.errors, [], `${file}: YAML errors`);
      const obj = d.toJS();
      if (obj !== null) docs.push({ file, obj });
    }
  }
  return docs;
}

const docs = loadExamples();
const ofKind = (kind: string): Doc[] => docs.filter((d) => d.obj.kind === kind);
const folder = (d: Doc): string => d.file.split("/")[0] ?? "";

/** Secret data as strings, whether written as stringData or base64 data. */
function secretData(secret: K8sObject): Record<string, string> {
  const out: Record<string, string> = { ...(secret.stringData ?? {}) };
  for (const [k, v] of Object.entries<string>(secret.data ?? {}))
    out[k] = Buffer.from(v, "base64").toString();
  return out;
}

test("the validator rejects what the API server would reject, and unknown fields", () => {
  const schema = schemas.get("compute.instance-operator.dev/v1alpha1/CloudInstance")!;
  const base = {
    apiVersion: "compute.instance-operator.dev/v1alpha1",
    kind: "CloudInstance",
    metadata: { name: "ok" },
    spec: { provider: { name: "m2s" } },
  };
  assert.deepEqual(validateCustomObject(base, schemas), []);
  const bad = (spec: unknown): string[] => validate({ ...base, spec }, schema);
  assert.match(bad({ provider: { name: "aws" } }).join(), /\/spec\/provider\/name: "aws" is not one of/);
  assert.match(bad({ provider: { name: "m2s" }, plann: "x" }).join(), /\/spec\/plann: unknown field/);
  assert.match(bad({ provider: { name: "m2s" }, region: "" }).join(), /\/spec\/region: shorter than 1/);
  assert.match(bad({ provider: { name: "m2s" }, tags: "web" }).join(), /\/spec\/tags: expected array/);
  assert.match(bad({ provider: { name: "m2s", endpoint: "not a url" } }).join(), /endpoint: not a URI/);
  const { spec: _spec, ...withoutSpec } = base;
  assert.match(validate(withoutSpec, schema).join(), /\/spec: required field missing/);
  assert.deepEqual(bad({ provider: { name: "m2s" }, providerOptions: { any: { thing: 1 } } }), []);
  assert.match(
    validateCustomObject({ ...base, metadata: { name: "Not_Valid" } }, schemas).join(),
    /not a DNS-1123 subdomain/,
  );
  assert.match(validateCustomObject({ ...base, kind: "Other" }, schemas).join(), /no CRD serves/);
});

test("every custom object in examples/ is valid against the CRD schemas and the zod schemas", () => {
  const custom = docs.filter((d) => d.obj.kind === "CloudInstance" || d.obj.kind === "InstanceTemplate");
  assert.ok(custom.length >= 11);
  for (const { file, obj } of custom) {
    assert.deepEqual(validateCustomObject(obj, schemas), [], `${file} (${obj.kind}/${obj.metadata?.name})`);
    const zod = obj.kind === "CloudInstance" ? CloudInstanceSchema : InstanceTemplateSchema;
    const parsed = zod.safeParse(obj);
    assert.ok(parsed.success, `${file}: ${parsed.error?.message ?? ""}`);
    assert.equal(obj.metadata.namespace, undefined, `${file}: examples apply to the namespace of choice`);
  }
});

test("every object in examples/ is a Secret, InstanceTemplate or CloudInstance with a unique name", () => {
  const seen = new Set<string>();
  for (const { file, obj } of docs) {
    assert.ok(
      ["Secret", "InstanceTemplate", "CloudInstance"].includes(obj.kind),
      `${file}: kind ${obj.kind}`,
    );
    const key = `${obj.kind}/${obj.metadata?.name}`;
    assert.ok(!seen.has(key), `${file}: ${key} defined twice (applying all examples would clash)`);
    seen.add(key);
  }
});

for (const provider of PROVIDER_NAMES) {
  test(`examples/${provider} has a Secret, an InstanceTemplate and a CloudInstance that fit together`, () => {
    const mine = docs.filter((d) => folder(d) === provider);
    const [secret, template, instance] = ["Secret", "InstanceTemplate", "CloudInstance"].map((kind) => {
      const found = mine.filter((d) => d.obj.kind === kind);
      assert.equal(found.length, 1, `examples/${provider}: one ${kind}`);
      return found[0]!.obj;
    });
    assert.equal(template!.spec.provider.name, provider);
    assert.equal(template!.spec.provider.credentialsSecretRef.name, secret!.metadata.name);
    assert.equal(instance!.spec.templateRef?.name, template!.metadata.name);
    // The effective spec (template + overrides) names the same provider.
    assert.equal(instance!.spec.provider?.name ?? template!.spec.provider.name, provider);
    assert.ok(template!.spec.plan ?? instance!.spec.plan, "a plan is set");
    assert.ok(template!.spec.image ?? instance!.spec.image, "an image is set");
  });

  test(`examples/${provider}: the Secret carries exactly the keys the ${provider} driver reads`, () => {
    const secret = docs.find((d) => folder(d) === provider && d.obj.kind === "Secret")!.obj;
    assert.equal(secret.type ?? "Opaque", "Opaque");
    const data = secretData(secret);
    const { required, optional } = DRIVERS[provider].credentialKeys;
    for (const key of required) assert.ok(data[key], `${provider} Secret lacks ${key}`);
    for (const key of Object.keys(data))
      assert.ok([...required, ...optional].includes(key), `${provider} Secret: unexpected key ${key}`);
    for (const [key, value] of Object.entries(data))
      if (!NON_SECRET_KEYS.has(key))
        assert.match(value, /^REPLACE-/, `${provider} Secret ${key}: examples hold placeholders only`);
  });
}

test("the mos example's signatureMethod is one MOS accepts", () => {
  const secret = docs.find((d) => folder(d) === "mos" && d.obj.kind === "Secret")!.obj;
  const method = secretData(secret).signatureMethod;
  if (method !== undefined) assert.ok(["HmacSHA256", "HmacSHA1"].includes(method));
});

test("the replicas example is a template with replicas whose Secret exists among the examples", () => {
  const sets = ofKind("InstanceTemplate").filter((d) => d.obj.spec.replicas !== undefined);
  assert.ok(
    sets.some((d) => folder(d) === "replicas"),
    "examples/replicas has a template with replicas",
  );
  const secrets = new Set(ofKind("Secret").map((d) => d.obj.metadata.name));
  for (const { file, obj } of sets) {
    assert.ok(obj.spec.replicas >= 1, `${file}: replicas`);
    assert.ok(secrets.has(obj.spec.provider.credentialsSecretRef.name), `${file}: Secret not in examples`);
  }
});

test("examples/features: each builds on a template of the examples and shows one feature of the spec", () => {
  const features = docs.filter((d) => folder(d) === "features");
  const templates = new Set(ofKind("InstanceTemplate").map((d) => d.obj.metadata.name));
  const shown = new Map<string, (o: K8sObject) => boolean>([
    [
      "connection-secret.yaml",
      (o) => o.spec.writeConnectionSecretToRef !== undefined && o.spec.sshKeyGeneration !== undefined,
    ],
    ["drift-report.yaml", (o) => o.spec.driftPolicy === "Report"],
    [
      "import-read-only.yaml",
      (o) =>
        JSON.stringify(o.spec.managementPolicies) === '["Observe"]' &&
        o.metadata.annotations?.["compute.instance-operator.dev/external-id"] !== undefined,
    ],
    [
      "keep-on-delete.yaml",
      (o) => Array.isArray(o.spec.managementPolicies) && !o.spec.managementPolicies.includes("Delete"),
    ],
  ]);
  assert.deepEqual(features.map((d) => d.file.split("/")[1]).sort(), [...shown.keys()].sort());
  for (const { file, obj } of features) {
    assert.equal(obj.kind, "CloudInstance", file);
    assert.ok(templates.has(obj.spec.templateRef?.name), `${file}: its template is among the examples`);
    assert.ok(shown.get(file.split("/")[1] ?? "")?.(obj), `${file}: shows its feature`);
  }
});
