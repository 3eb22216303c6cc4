import {
  factory,
  MulticloudOptionsSchema,
  type MulticloudOptions,
} from "../../../src/providers/multicloud/index.ts";
import { startMulticloudSimulator } from "../../sim/multicloud/index.ts";
import { runDriverContract } from "../contract.ts";

// Both route spellings (the document's and the source code's) pass the same contract.
for (const routes of ["document", "source"] as const) {
  runDriverContract<MulticloudOptions>({
    provider: "multicloud",
    factory,
    startSimulator: () => startMulticloudSimulator({ faults: { transitionMs: 20 }, routes }),
    desired: (over = {}) => ({
      ownerUID: "contract",
      namespace: "ns",
      name: "contract",
      region: "cn-beijing",
      plan: "1Core-1GB",
      image: "centos7u2_64_40G_cloudinit_20160728.raw",
      sshKeys: [],
      tags: [],
      powerState: "Running",
      options: MulticloudOptionsSchema.parse({ cloud: "aliyun" }),
      providerData: {},
      ...over,
    }),
    unknownId: "i-nosuchinstance",
    // No badCredentials: the document's API has no authentication.
  });
}
