// The operator-bound scenario's yardstick: the API writes of N CloudInstances' whole lives,
// from apply to Ready and from delete to gone, sent by a client that does nothing else
// (no provider, no cache, no decisions) on the same in-memory API server and the operator's
// own kube client. Run as a separate process, as the operator is, so it competes for the
// machine's cores as the operator does. Prints one JSON line:
//   { applySeconds, deleteSeconds, applyCpuSeconds, deleteCpuSeconds, writes: { apply, delete },
//     watchEvents, watchRestarts, writesPerSecond }
// Usage: node bench/empty-reconciler.ts <kubeconfig> <namespace> <n> <concurrency> <instance.json>
import { readFileSync } from "node:fs";
import { KubeClient } from "../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../src/kube/connection.ts";
import { createLogger } from "../src/observability/logger.ts";
import { CloudInstanceResource, EventResource } from "../src/kube/resources.ts";
import type { CloudInstance } from "../src/api/index.ts";
import { FINALIZER } from "../src/api/index.ts";
import type { KubeEvent } from "../src/kube/core-types.ts";
import { helpAndExit } from "../scripts/cli-help.ts";

helpAndExit(`Usage: node bench/empty-reconciler.ts <kubeconfig> <namespace> <n> <concurrency> <instance.json>

The operator-bound scenario's yardstick (run by npm run bench -- --scenario=operator-bound):
the API writes of n CloudInstances' whole lives, with no provider and no decisions; prints
one JSON line.`);

const [kubeconfigPath = "", namespace = "", nText = "0", concurrencyText = "64", templatePath = ""] =
  process.argv.slice(2);
const n = Number(nText);
const concurrency = Number(concurrencyText);
const template = JSON.parse(readFileSync(templatePath, "utf8")) as CloudInstance;

const kube = new KubeClient({
  connection: await connect(kubeConfigFromString(readFileSync(kubeconfigPath, "utf8"))),
  logger: createLogger({ level: "silent" }),
});

async function forEach(fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}
const nameOf = (i: number): string => `empty-${String(i).padStart(5, "0")}`;
const stamp = (): string => new Date().toISOString();

function event(obj: CloudInstance, reason: string): KubeEvent {
  const at = stamp();
  return {
    metadata: { name: `${obj.metadata.name ?? ""}.${Date.now().toString(16)}`, namespace },
    involvedObject: {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      namespace,
      name: obj.metadata.name ?? "",
      uid: obj.metadata.uid ?? "",
    },
    reason,
    message: `created VM at m2s`,
    type: "Normal",
    count: 1,
    firstTimestamp: at,
    lastTimestamp: at,
    source: { component: "empty-reconciler" },
  };
}

// Any controller lists and watches what it reconciles: the server's cost of that stream is
// counted. A real kube-apiserver ends a watch whose client reads too slowly for its buffer; a
// controller resumes from the last resourceVersion it saw, and so does this one.
const watching = new AbortController();
let watchRestarts = 0;
let lastEventAt = performance.now();
let { resourceVersion } = await kube.list(CloudInstanceResource, { namespace, limit: 1 });
const watched = (async () => {
  let seen = 0;
  for (;;) {
    for await (const e of kube.watch(CloudInstanceResource, { signal: watching.signal, resourceVersion })) {
      seen++;
      lastEventAt = performance.now();
      resourceVersion = e.object.metadata.resourceVersion ?? resourceVersion;
    }
    if (watching.signal.aborted) return seen;
    watchRestarts++;
  }
})();

let applyWrites = 0;
let deleteWrites = 0;
// Apply to Ready: what the bench sends (create) and what the operator must write at the
// least (the finalizer, the VM's id, Ready) plus the one Event.
const applyStart = performance.now();
const applyCpu0 = process.cpuUsage();
await forEach(async (i) => {
  let obj = await kube.create(CloudInstanceResource, {
    ...template,
    metadata: { ...template.metadata, name: nameOf(i), namespace },
  });
  obj = await kube.patch(
    CloudInstanceResource,
    namespace,
    nameOf(i),
    { metadata: { resourceVersion: obj.metadata.resourceVersion, finalizers: [FINALIZER] } },
    "merge",
  );
  obj = await kube.updateStatus(CloudInstanceResource, {
    ...obj,
    status: { phase: "Provisioning", instanceID: `i-${String(i)}`, observedGeneration: 1 },
  });
  await kube.create(EventResource, event(obj, "Created"));
  await kube.updateStatus(CloudInstanceResource, {
    ...obj,
    status: {
      ...obj.status,
      phase: "Running",
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "Running",
          message: "the VM is running",
          lastTransitionTime: stamp(),
          observedGeneration: 1,
        },
      ],
    },
  });
  applyWrites += 5;
});
const applySeconds = (performance.now() - applyStart) / 1000;
const applyCpu = process.cpuUsage(applyCpu0);

// Delete to gone: the delete (the bench's) and the finalizer's removal.
const deleteStart = performance.now();
const deleteCpu0 = process.cpuUsage();
await forEach(async (i) => {
  await kube.delete(CloudInstanceResource, namespace, nameOf(i));
  await kube.patch(CloudInstanceResource, namespace, nameOf(i), { metadata: { finalizers: null } }, "merge");
  deleteWrites += 2;
});
const deleteSeconds = (performance.now() - deleteStart) / 1000;
const deleteCpu = process.cpuUsage(deleteCpu0);
const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;
// The watch may trail the writes (that is why a real server ends it): count what it still
// brings until it has been quiet for a second, outside the timed phases.
const settledBy = performance.now() + 30_000;
while (performance.now() - lastEventAt < 1_000 && performance.now() < settledBy)
  await new Promise((r) => setTimeout(r, 100));
watching.abort();
const watchEvents = await watched;
await kube.close();
process.stdout.write(
  `${JSON.stringify({
    applySeconds,
    deleteSeconds,
    applyCpuSeconds: cpuSeconds(applyCpu),
    deleteCpuSeconds: cpuSeconds(deleteCpu),
    writes: { apply: applyWrites, delete: deleteWrites },
    watchEvents,
    watchRestarts,
    writesPerSecond: (applyWrites + deleteWrites) / (applySeconds + deleteSeconds),
  })}\n`,
);
process.exit(0);
