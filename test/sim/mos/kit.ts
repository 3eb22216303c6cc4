import type { SimulatorKit } from "../common.ts";
import { startMosSimulator } from "./index.ts";

/** How the e2e tests, the demo, the bench and the chaos suite drive mos (test/sim/all.ts finds it by name). */
export const kit: SimulatorKit = {
  start: (faults, profile) => startMosSimulator({ faults: faults ?? {}, profile: profile ?? "default" }),
  spec: { plan: "small_net", image: "019c6db6-55fa-443d-ac0c-182e3379d175" },
  resizeTo: "medium_net",
  canStop: true,
  lifecycleCallBudget: 160,
};
