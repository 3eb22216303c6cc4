import { PROVIDERS } from "../providers/registry.ts";

/** The providers the CRD accepts: the registry's, in its order (src/providers/registry.ts). */
export type ProviderName = (typeof PROVIDERS)[number]["provider"];
export const PROVIDER_NAMES = PROVIDERS.map((p) => p.provider) as unknown as readonly [
  ProviderName,
  ...ProviderName[],
];
