import { factory, ZomroOptionsSchema, type ZomroOptions } from "../../../src/providers/zomro/index.ts";
import { startZomroSimulator } from "../../sim/zomro/index.ts";
import type { SimProfile } from "../../sim/common.ts";
import { runDriverContract } from "../contract.ts";
import { desiredMachine } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";

/** The profile of the simulator the running suite started (the suites run one after the other). */
let profile: SimProfile = "default";

runDriverContract<ZomroOptions>({
  provider: "zomro",
  factory,
  startSimulator: (p) => {
    profile = p;
    return startZomroSimulator({ profile: p, faults: { transitionMs: 20 } });
  },
  desired: (over = {}) =>
    desiredMachine(SIMULATORS.zomro.spec, ZomroOptionsSchema.parse({}), {
      ownerUID: "contract",
      name: "contract",
      ...over,
    }),
  resizeTo: "3603",
  // The document shows no rebuild (Zomro's articles add `instances.fleio.rebuild`): against the
  // strict API the driver answers UnknownFunction instead (strict.test.ts).
  get rebuildTo() {
    return profile === "default" ? "debian-12" : undefined;
  },
  unknownId: "999999999",
  badCredentials: (good) => ({ username: good.username ?? "", password: "wrong-password-1" }),
  secretCredentialKeys: ["password", "username"],
});
