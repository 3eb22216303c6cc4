/** Validation and defaulting of custom objects against a CRD's openAPIV3Schema, like kube-apiserver. */
export type Schema = Record<string, unknown>;

export interface FieldError {
  field: string;
  reason:
    | "FieldValueRequired"
    | "FieldValueInvalid"
    | "FieldValueNotSupported"
    | "FieldValueTypeInvalid"
    | "FieldValueTooLong"
    | "FieldValueTooMany";
  message: string;
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** Applies `default`s (and prunes unknown fields) in place, as the real server does on write. */
export function applyDefaultsAndPrune(value: unknown, schema: Schema): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    const items = schema.items as Schema | undefined;
    return items ? value.map((v) => applyDefaultsAndPrune(v, items)) : value;
  }
  const obj = value as Record<string, unknown>;
  const props = schema.properties as Record<string, Schema> | undefined;
  const additional = schema.additionalProperties as Schema | undefined;
  if (schema["x-kubernetes-preserve-unknown-fields"] === true && !props) return obj;
  for (const key of Object.keys(obj)) {
    const sub = props?.[key] ?? additional;
    if (!sub) {
      if (schema["x-kubernetes-preserve-unknown-fields"] !== true) delete obj[key];
      continue;
    }
    obj[key] = applyDefaultsAndPrune(obj[key], sub);
  }
  for (const [key, sub] of Object.entries(props ?? {})) {
    if (obj[key] === undefined && sub.default !== undefined) obj[key] = structuredClone(sub.default);
  }
  return obj;
}

export function validate(value: unknown, schema: Schema, path: string, errors: FieldError[]): void {
  if (value === undefined) return;
  const type = schema.type as string | undefined;
  const actual = typeOf(value);
  if (type && !(type === actual || (type === "number" && actual === "integer"))) {
    errors.push({
      field: path,
      reason: "FieldValueTypeInvalid",
      message: `Invalid value: "${actual}": ${path} in body must be of type ${type}: "${actual}"`,
    });
    return;
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) {
    const allowed = (schema.enum as unknown[]).map((e) => JSON.stringify(e)).join(", ");
    errors.push({
      field: path,
      reason: "FieldValueNotSupported",
      message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed}`,
    });
  }
  if (typeof value === "string") {
    if (typeof schema.maxLength === "number" && value.length > schema.maxLength) {
      errors.push({
        field: path,
        reason: "FieldValueTooLong",
        message: `${path}: Too long: may not be longer than ${String(schema.maxLength)}`,
      });
    }
    if (typeof schema.minLength === "number" && value.length < schema.minLength) {
      errors.push({
        field: path,
        reason: "FieldValueInvalid",
        message: `Invalid value: "${value}": ${path} in body should be at least ${schema.minLength} chars long`,
      });
    }
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern).test(value)) {
      errors.push({
        field: path,
        reason: "FieldValueInvalid",
        message: `Invalid value: "${value}": ${path} in body should match '${schema.pattern}'`,
      });
    }
    if (schema.format === "uri" && !/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
      errors.push({
        field: path,
        reason: "FieldValueInvalid",
        message: `Invalid value: "${value}": ${path} in body must be of type uri: "${value}"`,
      });
    }
  }
  if (typeof value === "number" && typeof schema.minimum === "number" && value < schema.minimum) {
    errors.push({
      field: path,
      reason: "FieldValueInvalid",
      message: `Invalid value: ${value}: ${path} in body should be greater than or equal to ${schema.minimum}`,
    });
  }
  if (typeof value === "number" && typeof schema.maximum === "number" && value > schema.maximum) {
    errors.push({
      field: path,
      reason: "FieldValueInvalid",
      message: `Invalid value: ${String(value)}: ${path} in body should be less than or equal to ${String(schema.maximum)}`,
    });
  }
  if (Array.isArray(value) && typeof schema.maxItems === "number" && value.length > schema.maxItems) {
    errors.push({
      field: path,
      reason: "FieldValueTooMany",
      message: `${path}: Too many: ${String(value.length)}: must have at most ${String(schema.maxItems)} items`,
    });
  }
  if (
    typeOf(value) === "object" &&
    typeof schema.maxProperties === "number" &&
    Object.keys(value as object).length > schema.maxProperties
  ) {
    errors.push({
      field: path,
      reason: "FieldValueTooMany",
      message: `${path}: Too many: ${String(Object.keys(value as object).length)}: must have at most ${String(schema.maxProperties)} items`,
    });
  }
  if (Array.isArray(value) && schema.items)
    value.forEach((v, i) => validate(v, schema.items as Schema, `${path}[${i}]`, errors));
  if (actual === "object") {
    const obj = value as Record<string, unknown>;
    for (const req of (schema.required as string[] | undefined) ?? []) {
      if (obj[req] === undefined)
        errors.push({ field: `${path}.${req}`, reason: "FieldValueRequired", message: "Required value" });
    }
    const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
    for (const [k, v] of Object.entries(obj)) {
      const sub = props[k] ?? (schema.additionalProperties as Schema | undefined);
      if (sub) validate(v, sub, `${path}.${k}`, errors);
    }
  }
}
