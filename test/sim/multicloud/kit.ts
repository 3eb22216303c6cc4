import type { SimulatorKit } from "../common.ts";
import { startMulticloudSimulator } from "./index.ts";

/** How the e2e tests, the demo, the bench and the chaos suite drive multicloud (test/sim/all.ts finds it by name). */
export const kit: SimulatorKit = {
  start: (faults, profile) =>
    startMulticloudSimulator({ faults: faults ?? {}, profile: profile ?? "default" }),
  spec: {
    region: "cn-beijing",
    plan: "1Core-1GB",
    image: "centos7u2_64_40G_cloudinit_20160728.raw",
    providerOptions: { cloud: "aliyun" },
  },
  canStop: false,
  lifecycleCallBudget: 120,
};
