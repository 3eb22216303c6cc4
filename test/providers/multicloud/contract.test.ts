import {
  definition,
  MulticloudOptionsSchema,
  type MulticloudOptions,
} from "../../../src/providers/multicloud/index.ts";
import { startMulticloudSimulator } from "../../sim/multicloud/index.ts";
import { runDriverContract } from "../contract.ts";
import { desiredMachine } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";

// Both route spellings (the document's and jupiter's source's) pass the same contract, each on
// both profiles. The simulator sits behind a token (as a gateway in front of jupiter would) so
// the contract's secret scan has a credential to look for.
for (const routes of ["document", "source"] as const) {
  runDriverContract<MulticloudOptions>({
    provider: "multicloud",
    definition,
    startSimulator: (profile) =>
      startMulticloudSimulator({
        profile,
        faults: { transitionMs: 20 },
        routes,
        token: "mc-contract-token-6f1d2a",
      }),
    desired: (over = {}) =>
      desiredMachine(SIMULATORS.multicloud.spec, MulticloudOptionsSchema.parse({ cloud: "aliyun" }), {
        ownerUID: "contract",
        name: "contract",
        ...over,
      }),
    unknownId: "i-nosuchinstance",
    badCredentials: () => ({ token: "wrong-token-0000" }),
    secretCredentialKeys: ["token"],
  });
}
