import { factory, ZomroOptionsSchema, type ZomroOptions } from "../../../src/providers/zomro/index.ts";
import { startZomroSimulator } from "../../sim/zomro/index.ts";
import { runDriverContract } from "../contract.ts";
import { desiredMachine } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";

runDriverContract<ZomroOptions>({
  provider: "zomro",
  factory,
  startSimulator: (profile) => startZomroSimulator({ profile, faults: { transitionMs: 20 } }),
  desired: (over = {}) =>
    desiredMachine(SIMULATORS.zomro.spec, ZomroOptionsSchema.parse({}), {
      ownerUID: "contract",
      name: "contract",
      ...over,
    }),
  resizeTo: "3603",
  rebuildTo: "debian-12",
  unknownId: "999999999",
  badCredentials: (good) => ({ username: good.username ?? "", password: "wrong-password-1" }),
  secretCredentialKeys: ["password"],
});
