import { factory, MosOptionsSchema, type MosOptions } from "../../../src/providers/mos/index.ts";
import { startMosSimulator } from "../../sim/mos/index.ts";
import { runDriverContract } from "../contract.ts";

runDriverContract<MosOptions>({
  provider: "mos",
  factory,
  startSimulator: () => startMosSimulator({ faults: { transitionMs: 20 } }),
  desired: (over = {}) => ({
    ownerUID: "contract",
    namespace: "ns",
    name: "contract",
    region: undefined,
    plan: "small_net",
    image: "019c6db6-55fa-443d-ac0c-182e3379d175",
    sshKeys: [],
    tags: ["contract"],
    powerState: "Running",
    options: MosOptionsSchema.parse({}),
    providerData: {},
    ...over,
  }),
  resizeTo: "medium_net",
  rebuildTo: "d1620e45-c561-42e7-a2a4-53ae0a389bb9",
  unknownId: "00000000-0000-0000-0000-000000000000",
  badCredentials: (good) => ({ ...good, secretAccessKey: "not-the-secret-key" }),
  secretCredentialKeys: ["secretAccessKey"],
});
