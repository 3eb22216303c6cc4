import { definition, type VscaleOptions } from "../../../src/providers/vscale/index.ts";
import { startVscaleSimulator } from "../../sim/vscale/index.ts";
import { runDriverContract } from "../contract.ts";
import { desiredMachine } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";

runDriverContract<VscaleOptions>({
  provider: "vscale",
  definition,
  startSimulator: (profile) => startVscaleSimulator({ profile, faults: { transitionMs: 20 } }),
  desired: (over = {}) =>
    desiredMachine(
      SIMULATORS.vscale.spec,
      { catalogueTtlSeconds: 600 },
      { ownerUID: "contract", name: "contract", ...over },
    ),
  resizeTo: "large",
  // No rebuildTo: Vscale reinstalls a scalet's own image only.
  // The document has no GET /images, so on the strict API the provider judges the image at
  // create (a 400, terminal); the same path is checked on the default API.
  imageCatalogue: false,
  badCredentials: () => ({ token: "vscale-wrong-token" }),
});
