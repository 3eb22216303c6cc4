import { definition, ZomroOptionsSchema, type ZomroOptions } from "../../../src/providers/zomro/index.ts";
import { startZomroSimulator } from "../../sim/zomro/index.ts";
import { runDriverContract, type ContractSubject } from "../contract.ts";
import { desiredMachine } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";

const subject: ContractSubject<ZomroOptions> = {
  provider: "zomro",
  definition,
  startSimulator: (profile) => {
    // The document shows no rebuild (Zomro's articles add `instances.fleio.rebuild`): against
    // the strict API the driver answers UnknownFunction instead (strict.test.ts). The suites
    // run one after the other, so the subject follows the profile just started.
    if (profile === "strict") delete subject.rebuildTo;
    else subject.rebuildTo = "debian-12";
    return startZomroSimulator({ profile, faults: { transitionMs: 20 } });
  },
  desired: (over = {}) =>
    desiredMachine(SIMULATORS.zomro.spec, ZomroOptionsSchema.parse({}), {
      ownerUID: "contract",
      name: "contract",
      ...over,
    }),
  resizeTo: "3603",
  unknownId: "999999999",
  badCredentials: (good) => ({ username: good.username ?? "", password: "wrong-password-1" }),
  // The login is an account identifier: it must stay out of logs and messages too.
  secretCredentialKeys: ["password", "username"],
};

runDriverContract<ZomroOptions>(subject);
