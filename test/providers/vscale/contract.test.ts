import { factory, type VscaleOptions } from "../../../src/providers/vscale/index.ts";
import { startVscaleSimulator } from "../../sim/vscale/index.ts";
import { runDriverContract } from "../contract.ts";

runDriverContract<VscaleOptions>({
  provider: "vscale",
  factory,
  startSimulator: () => startVscaleSimulator({ faults: { transitionMs: 20 } }),
  desired: (over = {}) => ({
    ownerUID: "contract",
    namespace: "ns",
    name: "contract",
    region: "spb0",
    plan: "small",
    image: "ubuntu_14.04_64_002_master",
    sshKeys: [],
    tags: [],
    powerState: "Running",
    options: { catalogueTtlSeconds: 600 },
    providerData: {},
    ...over,
  }),
  resizeTo: "large",
  // No rebuildTo: Vscale reinstalls a scalet's own image only.
  badCredentials: () => ({ token: "vscale-wrong-token" }),
});
