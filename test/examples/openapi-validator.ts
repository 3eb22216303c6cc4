// A small validator for the OpenAPI v3 subset our CRDs use (see src/api/crd.ts), applied to
// custom objects the way the API server does before it stores them. Stricter in one place on
// purpose: an unknown field is an error here, where the API server would silently prune it —
// in an example a pruned field is a typo the user would never notice.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

/** A Kubernetes object parsed from YAML: any shape, which the tests then assert on. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type K8sObject = Record<string, any>;

export interface OpenApiSchema {
  type?: string;
  description?: string;
  properties?: Record<string, OpenApiSchema>;
  additionalProperties?: OpenApiSchema;
  items?: OpenApiSchema;
  required?: string[];
  enum?: unknown[];
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  format?: string;
  default?: unknown;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function typeMatches(expected: string, value: unknown): boolean {
  const actual = typeOf(value);
  return actual === expected || (expected === "number" && actual === "integer");
}

/** Every violation of `schema` by `value`, as `path: message` strings (empty when valid). */
export function validate(value: unknown, schema: OpenApiSchema, path = ""): string[] {
  const at = path || "/";
  if (schema.type !== undefined && !typeMatches(schema.type, value))
    return [`${at}: expected ${schema.type}, got ${typeOf(value)}`];
  const errors: string[] = [];
  if (schema.enum !== undefined && !schema.enum.includes(value))
    errors.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === "string") {
    if (schema.minLength !== undefined && value.length < schema.minLength)
      errors.push(`${at}: shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength)
      errors.push(`${at}: longer than ${schema.maxLength}`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, "u").test(value))
      errors.push(`${at}: does not match ${schema.pattern}`);
    if (schema.format === "uri" && !URL.canParse(value)) errors.push(`${at}: not a URI`);
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum)
      errors.push(`${at}: less than ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum)
      errors.push(`${at}: more than ${schema.maximum}`);
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    const items = schema.items;
    value.forEach((item, i) => errors.push(...validate(item, items, `${path}[${i}]`)));
  }
  // The API server validates metadata itself (the CRD only says `type: object`).
  if (typeOf(value) === "object" && path !== "/metadata") {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? [])
      if (!(key in obj)) errors.push(`${path}/${key}: required field missing`);
    for (const [key, child] of Object.entries(obj)) {
      const sub = schema.properties?.[key] ?? schema.additionalProperties;
      if (sub !== undefined) errors.push(...validate(child, sub, `${path}/${key}`));
      else if (schema["x-kubernetes-preserve-unknown-fields"] !== true)
        errors.push(`${path}/${key}: unknown field`);
    }
  }
  return errors;
}

interface Crd {
  spec: {
    group: string;
    names: { kind: string };
    versions: { name: string; schema: { openAPIV3Schema: OpenApiSchema } }[];
  };
}

/** The CRD schemas in crds/, keyed by `apiVersion/kind`. */
export function loadCrdSchemas(crdDir: string): Map<string, OpenApiSchema> {
  const schemas = new Map<string, OpenApiSchema>();
  for (const file of readdirSync(crdDir).filter((f) => f.endsWith(".yaml"))) {
    const crd = parse(readFileSync(join(crdDir, file), "utf8")) as Crd;
    for (const v of crd.spec.versions)
      schemas.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, v.schema.openAPIV3Schema);
  }
  return schemas;
}

/**
 * Validates one custom object as the API server would on create: its schema, plus a name that
 * is a DNS-1123 subdomain (metadata itself is not in the CRD schema).
 */
export function validateCustomObject(
  obj: Record<string, unknown>,
  schemas: Map<string, OpenApiSchema>,
): string[] {
  const key = `${String(obj.apiVersion)}/${String(obj.kind)}`;
  const schema = schemas.get(key);
  if (schema === undefined) return [`no CRD serves ${key}`];
  const errors = validate(obj, schema);
  const name = (obj.metadata as { name?: unknown } | undefined)?.name;
  if (typeof name !== "string" || name.length > 253 || !DNS1123_SUBDOMAIN.test(name))
    errors.push(`/metadata/name: ${JSON.stringify(name)} is not a DNS-1123 subdomain`);
  return errors;
}
