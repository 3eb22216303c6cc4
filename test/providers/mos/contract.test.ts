import { definition, MosOptionsSchema, type MosOptions } from "../../../src/providers/mos/index.ts";
import { startMosSimulator } from "../../sim/mos/index.ts";
import { runDriverContract } from "../contract.ts";
import { desiredMachine } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";

runDriverContract<MosOptions>({
  provider: "mos",
  definition,
  startSimulator: (profile) => startMosSimulator({ profile, faults: { transitionMs: 20 } }),
  desired: (over = {}) =>
    desiredMachine(SIMULATORS.mos.spec, MosOptionsSchema.parse({}), {
      ownerUID: "contract",
      name: "contract",
      ...over,
    }),
  resizeTo: "medium_net",
  rebuildTo: "d1620e45-c561-42e7-a2a4-53ae0a389bb9",
  unknownId: "00000000-0000-0000-0000-000000000000",
  badCredentials: (good) => ({ ...good, secretAccessKey: "not-the-secret-key" }),
  secretCredentialKeys: ["secretAccessKey"],
});
