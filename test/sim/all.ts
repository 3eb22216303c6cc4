import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PROVIDER_NAMES, type ProviderName } from "../../src/api/index.ts";
import type { SimulatorKit } from "./common.ts";

export type { SimulatorKit } from "./common.ts";

/** Where a provider's simulator kit is: `test/sim/<provider>/kit.ts`. */
export const kitPath = (provider: string): string => join(import.meta.dirname, provider, "kit.ts");

/** Loads the `kit` a file exports; undefined when there is no such file yet. */
export async function loadKit(path: string): Promise<SimulatorKit | undefined> {
  if (!existsSync(path)) return undefined;
  const mod = (await import(pathToFileURL(path).href)) as { kit?: SimulatorKit };
  return mod.kit;
}

/** The kits of `providers`, found with `where` (default `test/sim/<provider>/kit.ts`); a provider without one fails, naming the file. */
export async function simulatorKits<P extends string>(
  providers: readonly P[],
  where: (provider: string) => string = kitPath,
): Promise<Record<P, SimulatorKit>> {
  const entries = await Promise.all(
    providers.map(async (p) => {
      const kit = await loadKit(where(p));
      if (kit === undefined) throw new Error(`provider ${p} has no simulator kit: add ${where(p)}`);
      return [p, kit] as const;
    }),
  );
  return Object.fromEntries(entries) as Record<P, SimulatorKit>;
}

/**
 * Every registered provider's simulator kit, found by name: the test matrices (e2e, chaos,
 * real-server, demo) follow the registry (test/providers/completeness.test.ts lists what a
 * provider still lacks).
 */
export const SIMULATORS: Record<ProviderName, SimulatorKit> = await simulatorKits(PROVIDER_NAMES);

/** A CloudInstance manifest on `provider` that its simulator accepts, with overrides. */
export function instanceManifest(
  provider: ProviderName,
  at: { name: string; namespace: string; endpoint: string; secretName?: string },
  spec: Record<string, unknown> = {},
): Record<string, unknown> {
  const kit = SIMULATORS[provider].spec;
  return {
    apiVersion: "compute.instance-operator.dev/v1alpha1",
    kind: "CloudInstance",
    metadata: { name: at.name, namespace: at.namespace },
    spec: {
      provider: {
        name: provider,
        credentialsSecretRef: { name: at.secretName ?? `${provider}-creds` },
        endpoint: at.endpoint,
      },
      ...(kit.region === undefined ? {} : { region: kit.region }),
      plan: kit.plan,
      image: kit.image,
      ...(kit.providerOptions === undefined ? {} : { providerOptions: kit.providerOptions }),
      ...spec,
    },
  };
}

/** The label every credentials Secret carries (the operator reads no other Secret). */
export const CREDENTIALS_LABELS = { "compute.instance-operator.dev/credentials": "true" } as const;

/** Where the operator under test may send credentials: the loopback simulators. */
export const SIMULATOR_ENDPOINTS = "http://127.0.0.1:*";

/** A credentials Secret manifest for a simulator (labelled, as the operator requires). */
export function credentialsSecret(
  at: { name: string; namespace: string },
  credentials: Readonly<Record<string, string>>,
): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: at.name, namespace: at.namespace, labels: { ...CREDENTIALS_LABELS } },
    stringData: { ...credentials },
  };
}
