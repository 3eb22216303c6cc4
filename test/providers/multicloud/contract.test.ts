import {
  factory,
  MulticloudOptionsSchema,
  type MulticloudOptions,
} from "../../../src/providers/multicloud/index.ts";
import { startMulticloudSimulator } from "../../sim/multicloud/index.ts";
import { runDriverContract } from "../contract.ts";
import { desiredMachine } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";

// Both route spellings (the document's and the source code's) pass the same contract.
for (const routes of ["document", "source"] as const) {
  runDriverContract<MulticloudOptions>({
    provider: "multicloud",
    factory,
    startSimulator: (profile) => startMulticloudSimulator({ profile, faults: { transitionMs: 20 }, routes }),
    desired: (over = {}) =>
      desiredMachine(SIMULATORS.multicloud.spec, MulticloudOptionsSchema.parse({ cloud: "aliyun" }), {
        ownerUID: "contract",
        name: "contract",
        ...over,
      }),
    unknownId: "i-nosuchinstance",
    // No badCredentials: the document's API has no authentication.
  });
}
