// The object-metadata rules kube-apiserver enforces on every write (apimachinery's
// ValidateObjectMeta), which the in-memory server must enforce too: a name that is not a DNS
// subdomain or a label value over 63 characters is a 422 on a real cluster, and a test that
// passes only because the fake accepted it hides an operator bug.

export interface MetaFieldError {
  field: string;
  reason: "FieldValueInvalid";
  message: string;
}

const DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS1123_LABEL}(\\.${DNS1123_LABEL})*$`);
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const QUALIFIED_MSG =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

const invalid = (field: string, value: string, why: string): MetaFieldError => ({
  field,
  reason: "FieldValueInvalid",
  message: `Invalid value: ${JSON.stringify(value)}: ${why}`,
});

function subdomainErrors(field: string, value: string): MetaFieldError[] {
  const out: MetaFieldError[] = [];
  if (value.length > 253) out.push(invalid(field, value, "must be no more than 253 characters"));
  if (!DNS1123_SUBDOMAIN.test(value)) out.push(invalid(field, value, SUBDOMAIN_MSG));
  return out;
}

/** A label (or annotation) key: an optional DNS-subdomain prefix, then a name of at most 63. */
function keyErrors(field: string, key: string): MetaFieldError[] {
  const slash = key.indexOf("/");
  const [prefix, name] = slash < 0 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)];
  const out: MetaFieldError[] = [];
  if (prefix !== undefined) {
    if (prefix === "") out.push(invalid(field, key, "prefix part must be non-empty"));
    else
      out.push(
        ...subdomainErrors(field, prefix).map((e) => ({
          ...e,
          message: e.message.replace(SUBDOMAIN_MSG, `prefix part ${SUBDOMAIN_MSG}`),
        })),
      );
  }
  if (name === "") out.push(invalid(field, key, "name part must be non-empty"));
  else {
    if (name.length > 63) out.push(invalid(field, key, "name part must be no more than 63 characters"));
    if (!QUALIFIED_NAME.test(name)) out.push(invalid(field, key, QUALIFIED_MSG));
  }
  return out;
}

/** Errors of metadata.name, metadata.labels and the annotation keys, as the real server words them. */
export function metadataErrors(metadata: {
  name?: string | undefined;
  labels?: Record<string, string> | undefined;
  annotations?: Record<string, string> | undefined;
}): MetaFieldError[] {
  const out: MetaFieldError[] = [];
  if (metadata.name) out.push(...subdomainErrors("metadata.name", metadata.name));
  for (const [k, v] of Object.entries(metadata.labels ?? {})) {
    out.push(...keyErrors("metadata.labels", k));
    if (typeof v !== "string") continue;
    if (v.length > 63) out.push(invalid("metadata.labels", v, "must be no more than 63 characters"));
    if (!LABEL_VALUE.test(v)) out.push(invalid("metadata.labels", v, VALUE_MSG));
  }
  for (const k of Object.keys(metadata.annotations ?? {})) out.push(...keyErrors("metadata.annotations", k));
  return out;
}
