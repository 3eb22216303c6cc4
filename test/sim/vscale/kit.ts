import type { SimulatorKit } from "../common.ts";
import { startVscaleSimulator } from "./index.ts";

/** How the e2e tests, the demo, the bench and the chaos suite drive vscale (test/sim/all.ts finds it by name). */
export const kit: SimulatorKit = {
  start: (faults, profile) => startVscaleSimulator({ faults: faults ?? {}, profile: profile ?? "default" }),
  spec: { region: "spb0", plan: "small", image: "ubuntu_14.04_64_002_master" },
  resizeTo: "large",
  canStop: true,
  lifecycleCallBudget: 160,
};
