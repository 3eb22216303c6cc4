// A control for the replicas bench (--neighbours): a process that uses all the CPU its limit
// gives it, as a replica busy reconciling does, but does none of a replica's work. One replica
// run beside two of these, each under the same limit as the replicas, shares the machine the
// way one of three replicas does: what it then spends per reconcile beyond running alone is
// the machine's (cores, caches and the scheduler shared with more busy processes), not the
// code's. It parses and serialises an object-sized JSON document in a loop, allocating as an
// operator does, and yields every few milliseconds.
import { helpAndExit } from "../scripts/cli-help.ts";

helpAndExit(`Usage: node bench/neighbour.ts

Burns CPU (JSON parse and serialise of a CloudInstance-sized document, yielding every 5 ms)
until killed: a busy neighbour for npm run bench -- --scenario=replicas --neighbours=N.`);

const doc = JSON.stringify({
  apiVersion: "compute.instance-operator.dev/v1alpha1",
  kind: "CloudInstance",
  metadata: {
    name: "vm-000000",
    namespace: "bench",
    uid: "0f8fad5b-d9cb-469f-a165-70867728950e",
    labels: { "compute.instance-operator.dev/shard-of-12": "7" },
    finalizers: ["compute.instance-operator.dev/finalizer"],
  },
  spec: { provider: { name: "m2s", credentialsSecretRef: { name: "acct-001" } }, plan: "business" },
  status: {
    phase: "Running",
    instanceID: "i-000000",
    conditions: Array.from({ length: 4 }, (_, i) => ({
      type: `Condition${String(i)}`,
      status: "True",
      reason: "Reconciled",
      message: "the VM matches the spec".repeat(4),
      lastTransitionTime: new Date(0).toISOString(),
    })),
  },
});

let serial = 0;
function burn(): void {
  const until = performance.now() + 5;
  while (performance.now() < until) {
    const obj = JSON.parse(doc) as { metadata: { resourceVersion?: string } };
    obj.metadata.resourceVersion = String(serial++);
    if (JSON.stringify(obj).length === 0) process.exit(1);
  }
  setImmediate(burn);
}
burn();
