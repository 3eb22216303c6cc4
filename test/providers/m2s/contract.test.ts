import { definition, type M2sOptions } from "../../../src/providers/m2s/index.ts";
import { startM2sSimulator } from "../../sim/m2s/index.ts";
import { runDriverContract } from "../contract.ts";
import { desiredMachine } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";

runDriverContract<M2sOptions>({
  provider: "m2s",
  definition,
  startSimulator: (profile) => startM2sSimulator({ profile, faults: { transitionMs: 20 } }),
  desired: (over = {}) =>
    desiredMachine(
      SIMULATORS.m2s.spec,
      { resizeReboot: true },
      { ownerUID: "contract", name: "contract", ...over },
    ),
  resizeTo: "performance",
  rebuildTo: "debian-12",
  unknownId: "i-zzzzzz",
  // m2s publishes plans but no image list: the API refuses an unknown image at create (422).
  imageCatalogue: false,
  badCredentials: () => ({ apiKey: "m2s-wrong-key" }),
});
