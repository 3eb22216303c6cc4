import type { ProviderName } from "../../src/api/index.ts";
import type { FaultKnobs, SimProfile, Simulator } from "./common.ts";
import { startM2sSimulator } from "./m2s/index.ts";
import { startMosSimulator } from "./mos/index.ts";
import { startMulticloudSimulator } from "./multicloud/index.ts";
import { startVscaleSimulator } from "./vscale/index.ts";
import { startZomroSimulator } from "./zomro/index.ts";

/** What the e2e tests, the demo, the bench and the chaos suite need to drive one provider. */
export interface SimulatorKit {
  /** Starts a simulator; `profile` defaults to "default" (see SimProfile). */
  start(faults?: Partial<FaultKnobs>, profile?: SimProfile): Promise<Simulator>;
  /** A spec every simulator accepts: region, plan, image and providerOptions. */
  spec: { region?: string; plan: string; image: string; providerOptions?: Record<string, unknown> };
  /** A larger plan, when the provider can resize. */
  resizeTo?: string;
  /** Whether the provider can stop a VM (multicloud cannot). */
  canStop: boolean;
}

export const SIMULATORS: Record<ProviderName, SimulatorKit> = {
  m2s: {
    start: (faults, profile) => startM2sSimulator({ faults: faults ?? {}, profile: profile ?? "default" }),
    spec: { region: "fr-par-1", plan: "business", image: "ubuntu-22.04" },
    resizeTo: "performance",
    canStop: true,
  },
  mos: {
    start: (faults, profile) => startMosSimulator({ faults: faults ?? {}, profile: profile ?? "default" }),
    spec: { plan: "small_net", image: "019c6db6-55fa-443d-ac0c-182e3379d175" },
    resizeTo: "medium_net",
    canStop: true,
  },
  vscale: {
    start: (faults, profile) => startVscaleSimulator({ faults: faults ?? {}, profile: profile ?? "default" }),
    spec: { region: "spb0", plan: "small", image: "ubuntu_14.04_64_002_master" },
    resizeTo: "large",
    canStop: true,
  },
  zomro: {
    start: (faults, profile) => startZomroSimulator({ faults: faults ?? {}, profile: profile ?? "default" }),
    spec: { region: "nl", plan: "3601", image: "ubuntu-22.04" },
    resizeTo: "3603",
    canStop: true,
  },
  multicloud: {
    start: (faults, profile) =>
      startMulticloudSimulator({ faults: faults ?? {}, profile: profile ?? "default" }),
    spec: {
      region: "cn-beijing",
      plan: "1Core-1GB",
      image: "centos7u2_64_40G_cloudinit_20160728.raw",
      providerOptions: { cloud: "aliyun" },
    },
    canStop: false,
  },
};

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
