import type { SimulatorKit } from "../common.ts";
import { startZomroSimulator } from "./index.ts";

/** How the e2e tests, the demo, the bench and the chaos suite drive zomro (test/sim/all.ts finds it by name). */
export const kit: SimulatorKit = {
  start: (faults, profile) => startZomroSimulator({ faults: faults ?? {}, profile: profile ?? "default" }),
  spec: { region: "nl", plan: "3601", image: "ubuntu-22.04" },
  resizeTo: "3603",
  canStop: true,
  lifecycleCallBudget: 200,
};
