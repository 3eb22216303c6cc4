import type { ProviderDefinition } from "./definition.ts";

type Facts = Pick<ProviderDefinition, "provider" | "credentialKeys" | "fields">;

/** "a, b or c" */
export function orList(items: readonly string[]): string {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} or ${items.at(-1) ?? ""}`;
}

/** A provider's Secret keys in words: `apiKey`; `accessKeyId, secretAccessKey, optional signatureMethod`. */
export function secretKeysText(def: Pick<ProviderDefinition, "credentialKeys">, quote = ""): string {
  const q = (k: string) => `${quote}${k}${quote}`;
  return [
    ...def.credentialKeys.required.map(q),
    ...def.credentialKeys.optional.map((k) => `optional ${q(k)}`),
  ].join(", ");
}

/** The CRD's descriptions of the fields whose meaning depends on the provider. */
export function providerFieldDescriptions(defs: readonly Facts[]): {
  name: string;
  credentialsSecretRef: string;
  region: string;
  plan: string;
  image: string;
} {
  const each = (f: (d: Facts) => string) => defs.map(f).join(", ");
  return {
    name: `Which provider driver manages the VM: ${orList(defs.map((d) => d.provider))}.`,
    credentialsSecretRef:
      "Secret in the SAME namespace holding the provider credentials " +
      `(${defs.map((d) => `${d.provider}: ${secretKeysText(d)}`).join("; ")}).`,
    region: `Provider region: ${each((d) => d.fields.region)}.`,
    plan: `Size of the VM: ${each((d) => d.fields.plan)}.`,
    image: `Boot image: ${each((d) => d.fields.image)}.`,
  };
}
