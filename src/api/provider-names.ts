/**
 * The providers the CRD accepts. The driver registry (src/providers/registry.ts) is typed
 * `Record<ProviderName, …>`, so adding a name here without a driver does not compile.
 */
export const PROVIDER_NAMES = ["m2s", "mos", "vscale", "zomro", "multicloud"] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];
