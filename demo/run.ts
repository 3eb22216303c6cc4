// `npm run demo`: the operator's main job end to end on an embedded default — the in-memory
// Kubernetes API server and the provider simulators on loopback, the real operator process
// (src/main.ts, the production entry point) pointed at a generated kubeconfig, and the
// examples/ applied to it. `--keep` leaves everything running for kubectl.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { startKubeApiServer } from "../test/kube/server.ts";
import { SIMULATOR_ENDPOINTS, SIMULATORS } from "../test/sim/all.ts";
import type { Simulator } from "../test/sim/common.ts";
import { KubeClient } from "../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../src/kube/connection.ts";
import { createLogger } from "../src/observability/logger.ts";
import {
  CloudInstanceResource,
  InstanceTemplateResource,
  SecretResource,
  type Resource,
} from "../src/kube/resources.ts";
import type { CloudInstance } from "../src/api/index.ts";
import { isNotFound } from "../src/kube/errors.ts";
import { helpAndExit } from "../scripts/cli-help.ts";

helpAndExit(`Usage: npm run demo [-- --keep]

Runs the operator end to end on an embedded default: the in-memory Kubernetes API server and
every provider's simulator on loopback, the real operator process (src/main.ts) and the
examples/ applied to it; prints what happens and stops.
  --keep   leave everything running for kubectl (the kubeconfig is .demo/kubeconfig)`);

const root = join(import.meta.dirname, "..");
const keep = process.argv.includes("--keep");
const tty = process.stdout.isTTY;
const NS = "demo";
const started = Date.now();
const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Every provider, simulated with believable timings (a VM takes 1.5 s per transition). */
const DEMO_FAULTS = { transitionMs: 1500, latencyMs: 20 };

function examplesFor(provider: string): Record<string, unknown>[] {
  const dir = join(root, "examples", provider);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => d.toJS() as Record<string, unknown>),
    )
    .filter((o) => typeof o.kind === "string");
}

async function main(): Promise<number> {
  const api = await startKubeApiServer();
  const dir = join(root, ".demo");
  mkdirSync(dir, { recursive: true });
  const kubeconfig = join(dir, "kubeconfig");
  api.writeKubeconfig(kubeconfig);
  const kube = new KubeClient({
    connection: await connect(kubeConfigFromString(api.kubeconfigYaml())),
    logger: createLogger({ level: "silent" }),
  });
  const sims = new Map<string, Simulator>();
  for (const [name, kit] of Object.entries(SIMULATORS)) sims.set(name, await kit.start(DEMO_FAULTS));

  const metricsPort = 18080 + Math.floor(Math.random() * 1000);
  const operator: ChildProcess = spawn(
    process.execPath,
    [
      join(root, "src/main.ts"),
      `--kubeconfig=${kubeconfig}`,
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      `--health-probe-bind-address=127.0.0.1:${metricsPort + 1000}`,
      // Plain HTTP for the demo's reader on loopback; in a cluster metrics are HTTPS behind RBAC.
      "--metrics-secure=false",
      "--resync-period=30s",
      "--log-level=warn",
      // The simulators listen on loopback, which the operator refuses unless it is listed.
      `--allowed-endpoints=${SIMULATOR_ENDPOINTS}`,
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const operatorExited = new Promise<number | null>((resolve) =>
    operator.once("exit", (code) => resolve(code)),
  );
  say(
    `in-memory API server ${api.url}; operator pid ${operator.pid ?? "?"}; metrics http://127.0.0.1:${metricsPort}/metrics`,
  );
  for (const [name, sim] of sims) say(`simulated ${name} at ${sim.url}`);

  // Apply the examples with each simulator's endpoint and credentials filled in.
  const templateProvider = new Map<string, string>();
  for (const [provider, sim] of sims) {
    for (const obj of examplesFor(provider)) {
      const meta = (obj.metadata ?? {}) as Record<string, unknown>;
      obj.metadata = { ...meta, namespace: NS };
      if (obj.kind === "Secret") obj.stringData = { ...sim.credentials };
      const spec = obj.spec as { provider?: { endpoint?: string } } | undefined;
      if (spec?.provider) spec.provider.endpoint = sim.url;
      const res: Resource =
        obj.kind === "Secret"
          ? SecretResource
          : obj.kind === "InstanceTemplate"
            ? InstanceTemplateResource
            : CloudInstanceResource;
      await kube.create(res, obj as never);
      if (obj.kind === "InstanceTemplate") templateProvider.set(String(meta.name), provider);
      say(`applied ${String(obj.kind)} ${NS}/${String(meta.name)}`);
    }
    // One template with replicas: the operator owns its CloudInstances.
    const base = examplesFor(provider).find((o) => o.kind === "InstanceTemplate") as
      { spec: Record<string, unknown> } | undefined;
    if (base) {
      await kube.create(InstanceTemplateResource, {
        apiVersion: "compute.instance-operator.dev/v1alpha1",
        kind: "InstanceTemplate",
        metadata: { name: `${provider}-pool`, namespace: NS },
        spec: {
          ...base.spec,
          provider: { ...(base.spec.provider as object), endpoint: sim.url },
          replicas: 3,
        },
      } as never);
      templateProvider.set(`${provider}-pool`, provider);
      say(`applied InstanceTemplate ${NS}/${provider}-pool (replicas 3)`);
    }
  }

  const providerOf = (i: CloudInstance): string =>
    i.spec.provider?.name ?? templateProvider.get(i.spec.templateRef?.name ?? "") ?? "?";
  /** Time to Ready of each instance, by provider. */
  const readyAt = new Map<string, { provider: string; ms: number }>();
  const list = async (): Promise<CloudInstance[]> =>
    (await kube.list(CloudInstanceResource, { namespace: NS })).items;
  let lastTable = "";
  const show = (items: CloudInstance[]): void => {
    const rows = items.map((i) => {
      const ready = i.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "";
      return [
        i.metadata.name ?? "",
        providerOf(i),
        i.status?.phase ?? "",
        i.status?.plan ?? "",
        i.status?.addresses?.public?.[0] ?? "",
        ready,
        `${Math.round((Date.now() - Date.parse(i.metadata.creationTimestamp ?? "")) / 1000)}s`,
      ];
    });
    const header = ["NAME", "PROVIDER", "PHASE", "PLAN", "IP", "READY", "AGE"];
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
    const fmt = (r: string[]): string => r.map((v, c) => v.padEnd(widths[c] ?? 0)).join("  ");
    const table = [fmt(header), ...rows.map(fmt)].join("\n");
    if (tty) process.stdout.write(`\x1b[H\x1b[2J${table}\n`);
    else {
      // Plain lines: only what changed since the last print.
      const prev = new Set(lastTable.split("\n"));
      for (const line of table.split("\n").slice(1)) if (!prev.has(line)) say(line.replace(/\s+\d+s$/, ""));
    }
    lastTable = table;
  };
  const until = async (
    what: string,
    pred: (items: CloudInstance[]) => boolean,
    timeoutMs = 60_000,
  ): Promise<CloudInstance[]> => {
    say(`-- waiting: ${what}`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const items = await list();
      for (const i of items) {
        const ready = i.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
        if (ready && !readyAt.has(i.metadata.uid ?? ""))
          readyAt.set(i.metadata.uid ?? "", {
            provider: providerOf(i),
            ms: Date.now() - Date.parse(i.metadata.creationTimestamp ?? ""),
          });
      }
      show(items);
      if (pred(items)) return items;
      if (Date.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  const isReady = (i: CloudInstance): boolean =>
    i.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";

  let ok = true;
  try {
    const all = await until(
      "every CloudInstance Ready",
      (items) => items.length >= sims.size * 4 && items.every(isReady),
    );
    // The stop and resize steps run on the m2s example (any provider that can stop and resize would do).
    const single = all.find((i) => !i.metadata.ownerReferences?.length && providerOf(i) === "m2s");
    const bigger = SIMULATORS.m2s.resizeTo ?? "performance";
    if (single?.metadata.name) {
      await kube.patch(CloudInstanceResource, NS, single.metadata.name, { spec: { powerState: "Stopped" } });
      say(`-- stop ${single.metadata.name}`);
      await until("stopped", (items) =>
        items.some(
          (i) => i.metadata.name === single.metadata.name && i.status?.phase === "Stopped" && isReady(i),
        ),
      );
      await kube.patch(CloudInstanceResource, NS, single.metadata.name, {
        spec: { powerState: "Running", plan: bigger },
      });
      say(`-- resize ${single.metadata.name} to ${bigger} (and start it)`);
      await until("resized", (items) =>
        items.some(
          (i) =>
            i.metadata.name === single.metadata.name &&
            i.status?.plan === bigger &&
            i.status.phase === "Running" &&
            isReady(i),
        ),
      );
    }
    for (const provider of sims.keys()) {
      await kube.patch(InstanceTemplateResource, NS, `${provider}-pool`, { spec: { replicas: 1 } });
      say(`-- scale ${provider}-pool to 1`);
    }
    await until(
      "scale-down",
      (items) => items.filter((i) => i.metadata.ownerReferences?.length).length === sims.size,
    );

    if (keep) {
      say(
        `\nKeeping everything running. Try:\n  export KUBECONFIG=${kubeconfig}\n  kubectl get cloudinstances -n ${NS}\nCtrl-C to stop.`,
      );
      await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
    }
    say("-- delete everything");
    for (const i of await list())
      if (!i.metadata.ownerReferences?.length)
        await kube.delete(CloudInstanceResource, NS, i.metadata.name ?? "");
    for (const t of (await kube.list(InstanceTemplateResource, { namespace: NS })).items)
      await kube.delete(InstanceTemplateResource, NS, t.metadata.name ?? "");
    await until("every CloudInstance gone", (items) => items.length === 0, 90_000);
    for (const t of (await kube.list(InstanceTemplateResource, { namespace: NS })).items) {
      try {
        await kube.get(InstanceTemplateResource, NS, t.metadata.name ?? "");
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  } catch (err) {
    ok = false;
    say(String(err));
  }

  say("\n== summary");
  for (const [name, sim] of sims) {
    const times = [...readyAt.values()]
      .filter((r) => r.provider === name)
      .map((r) => r.ms)
      .sort((a, b) => a - b);
    const calls = [...sim.requestCounts.values()].reduce((a, b) => a + b, 0);
    const left = sim.vms().length;
    say(
      `${name.padEnd(10)} time to Ready median ${((times[Math.floor(times.length / 2)] ?? 0) / 1000).toFixed(1)}s, max ${((times.at(-1) ?? 0) / 1000).toFixed(1)}s (${String(times.length)} instances); provider calls ${String(calls)}; VMs left ${String(left)}`,
    );
    if (left !== 0) ok = false;
  }
  say(`total ${((Date.now() - started) / 1000).toFixed(1)}s; ${ok ? "all Ready, 0 VMs left" : "FAILED"}`);

  operator.kill("SIGTERM");
  const code = await operatorExited;
  say(`operator exited with ${String(code)}`);
  await kube.close();
  for (const sim of sims.values()) await sim.close();
  await api.close();
  return ok && code === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${String(err)}\n`);
    process.exit(1);
  },
);
