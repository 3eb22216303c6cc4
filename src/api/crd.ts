import { z } from "zod";
import { GROUP, VERSION } from "./group.ts";
import type { CrdDefinition } from "./crd-definitions.ts";

type JsonSchema = Record<string, unknown>;

export class StructuralSchemaError extends Error {
  readonly code = "ERR_STRUCTURAL_SCHEMA";
  override readonly name = "StructuralSchemaError";
}

const SAFE_INT = Number.MAX_SAFE_INTEGER;
/** Keys Kubernetes' structural-schema validation rejects or that carry no meaning there. */
const DROPPED_KEYS = new Set(["$schema", "$id", "$defs", "definitions", "id"]);

function isObject(v: unknown): v is JsonSchema {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Rewrites a JSON Schema produced by zod into a Kubernetes structural schema:
 * `$ref` inlined, `additionalProperties: false` removed (Kubernetes prunes unknown fields
 * instead), zod's safe-integer bounds dropped, `const` turned into a one-value `enum`, an
 * open record (`additionalProperties: {}`) turned into `x-kubernetes-preserve-unknown-fields`
 * and every node given a `type`. Anything it cannot express structurally throws, so a schema
 * change that Kubernetes would refuse fails at generation time rather than at `kubectl apply`.
 */
export function toStructural(schema: JsonSchema, path = "", defs: JsonSchema = {}): JsonSchema {
  const localDefs = {
    ...defs,
    ...(isObject(schema.$defs) ? schema.$defs : {}),
    ...(isObject(schema.definitions) ? schema.definitions : {}),
  };
  let node: JsonSchema = schema;
  if (typeof node.$ref === "string") {
    const name = node.$ref.replace(/^#\/(\$defs|definitions)\//, "");
    const target = localDefs[name];
    if (!isObject(target)) throw new StructuralSchemaError(`${path || "/"}: unresolvable $ref ${node.$ref}`);
    const { $ref: _ignored, ...rest } = node;
    node = { ...target, ...rest };
  }
  for (const key of ["anyOf", "oneOf", "allOf", "not"]) {
    if (key in node)
      throw new StructuralSchemaError(
        `${path || "/"}: ${key} cannot be expressed in a structural schema here`,
      );
  }
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (DROPPED_KEYS.has(key)) continue;
    if (key === "additionalProperties") {
      if (value === false || value === true) continue;
      if (isObject(value) && Object.keys(value).length === 0) {
        out["x-kubernetes-preserve-unknown-fields"] = true;
        continue;
      }
      if (isObject(value)) out.additionalProperties = toStructural(value, `${path}/*`, localDefs);
      continue;
    }
    if (key === "properties" && isObject(value)) {
      out.properties = Object.fromEntries(
        Object.entries(value).map(([name, sub]) => {
          if (!isObject(sub)) throw new StructuralSchemaError(`${path}/${name}: not a schema`);
          return [name, toStructural(sub, `${path}/${name}`, localDefs)];
        }),
      );
      continue;
    }
    if (key === "items") {
      if (!isObject(value)) throw new StructuralSchemaError(`${path}[]: tuple items are not structural`);
      out.items = toStructural(value, `${path}[]`, localDefs);
      continue;
    }
    if ((key === "minimum" && value === -SAFE_INT) || (key === "maximum" && value === SAFE_INT)) continue;
    if (key === "const") {
      out.enum = [value];
      continue;
    }
    out[key] = value;
  }
  if (out.type === undefined) {
    if (out["x-kubernetes-preserve-unknown-fields"] === true) out.type = "object";
    else if (Array.isArray(out.enum) && out.enum.every((v) => typeof v === "string")) out.type = "string";
    else if (Object.keys(out).every((k) => k === "description" || k === "default")) {
      // z.unknown(): any value at all
      out["x-kubernetes-preserve-unknown-fields"] = true;
    } else throw new StructuralSchemaError(`${path || "/"}: every node needs a type`);
  }
  if (out.type === "object" && out.properties === undefined && out.additionalProperties === undefined) {
    out["x-kubernetes-preserve-unknown-fields"] = true;
  }
  return out;
}

/** The OpenAPI v3 schema of one field, as it goes into a CRD. */
export function fieldSchema(schema: z.ZodType): JsonSchema {
  const raw = z.toJSONSchema(schema, {
    target: "openapi-3.0",
    io: "input",
    unrepresentable: "throw",
  }) as JsonSchema;
  return toStructural(raw);
}

/** A complete apiextensions.k8s.io/v1 CustomResourceDefinition object for one kind. */
export function buildCrd(def: CrdDefinition): Record<string, unknown> {
  const openAPIV3Schema = {
    type: "object",
    description: def.description,
    required: ["spec"],
    properties: {
      apiVersion: { type: "string", description: "APIVersion of this representation of the object." },
      kind: { type: "string", description: "Kind of this object." },
      metadata: { type: "object" },
      spec: fieldSchema(def.spec),
      status: fieldSchema(def.status),
    },
  };
  const subresources: Record<string, unknown> = { status: {} };
  if (def.scale) subresources.scale = { ...def.scale };
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${def.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: {
        kind: def.kind,
        listKind: def.listKind,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: def.categories,
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema },
          subresources,
          additionalPrinterColumns: def.printerColumns,
        },
      ],
    },
  };
}
