import type { SimulatorKit } from "../common.ts";
import { startM2sSimulator } from "./index.ts";

/** How the e2e tests, the demo, the bench and the chaos suite drive m2s (test/sim/all.ts finds it by name). */
export const kit: SimulatorKit = {
  start: (faults, profile) => startM2sSimulator({ faults: faults ?? {}, profile: profile ?? "default" }),
  spec: { region: "fr-par-1", plan: "business", image: "ubuntu-22.04" },
  resizeTo: "performance",
  canStop: true,
  lifecycleCallBudget: 120,
};
