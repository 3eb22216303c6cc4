import { factory, type M2sOptions } from "../../../src/providers/m2s/index.ts";
import { startM2sSimulator } from "../../sim/m2s/index.ts";
import { runDriverContract } from "../contract.ts";

runDriverContract<M2sOptions>({
  provider: "m2s",
  factory,
  startSimulator: () => startM2sSimulator({ faults: { transitionMs: 20 } }),
  desired: (over = {}) => ({
    ownerUID: "contract",
    namespace: "ns",
    name: "contract",
    region: "fr-par-1",
    plan: "business",
    image: "ubuntu-22.04",
    sshKeys: [],
    tags: ["contract"],
    powerState: "Running",
    options: { resizeReboot: true },
    providerData: {},
    ...over,
  }),
  resizeTo: "performance",
  rebuildTo: "debian-12",
  unknownId: "i-zzzzzz",
  // m2s publishes plans but no image list: the API refuses an unknown image at create (422).
  imageCatalogue: false,
  badCredentials: () => ({ apiKey: "m2s-wrong-key" }),
});
