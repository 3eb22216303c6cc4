import { factory, ZomroOptionsSchema, type ZomroOptions } from "../../../src/providers/zomro/index.ts";
import { startZomroSimulator } from "../../sim/zomro/index.ts";
import { runDriverContract } from "../contract.ts";

runDriverContract<ZomroOptions>({
  provider: "zomro",
  factory,
  startSimulator: () => startZomroSimulator({ faults: { transitionMs: 20 } }),
  desired: (over = {}) => ({
    ownerUID: "contract",
    namespace: "ns",
    name: "contract",
    region: "nl",
    plan: "3601",
    image: "ubuntu-22.04",
    sshKeys: [],
    tags: [],
    powerState: "Running",
    options: ZomroOptionsSchema.parse({}),
    providerData: {},
    ...over,
  }),
  resizeTo: "3603",
  rebuildTo: "debian-12",
  unknownId: "999999999",
  badCredentials: (good) => ({ username: good.username ?? "", password: "wrong-password-1" }),
  secretCredentialKeys: ["password"],
});
