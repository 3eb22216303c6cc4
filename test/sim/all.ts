import { PROVIDER_NAMES, type ProviderName } from "../../src/api/index.ts";
import type { SimulatorKit } from "./common.ts";

export type { SimulatorKit } from "./common.ts";

/** Loads `test/sim/<provider>/kit.ts`; undefined when the provider has none yet. */
export async function loadKit(
  provider: string,
  dir = import.meta.dirname,
): Promise<SimulatorKit | undefined> {
  try {
    const mod = (await import(`${dir}/${provider}/kit.ts`)) as { kit?: SimulatorKit };
    return mod.kit;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === "ERR_MODULE_NOT_FOUND" && (e.message ?? "").includes(`${provider}/kit.ts`))
      return undefined;
    throw err;
  }
}

/**
 * Every registered provider's simulator kit, found by name: the test matrices (e2e, chaos,
 * real-server, demo) follow the registry. A provider without a kit fails here, naming it
 * (test/providers/completeness.test.ts lists what else it lacks).
 */
export const SIMULATORS: Record<ProviderName, SimulatorKit> = Object.fromEntries(
  await Promise.all(
    PROVIDER_NAMES.map(async (p) => {
      const kit = await loadKit(p);
      if (kit === undefined) throw new Error(`provider ${p} has no simulator kit: add test/sim/${p}/kit.ts`);
      return [p, kit] as const;
    }),
  ),
) as Record<ProviderName, SimulatorKit>;

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
