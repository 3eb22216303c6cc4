// The operator-bound scenario on a real kube-apiserver and etcd (`--api-server=real`): the
// server production runs against, not the in-memory one. The same accounts, simulator and
// operator flags as bench/accounts.ts; the operator, the empty reconciler of the ideal and the
// bench's own creates and deletes all act as the operator's ServiceAccount under the chart's
// RBAC (deploy/manifests/operator.yaml), so API Priority and Fairness files them under one
// flow; the bench reads (Secrets, counting, /metrics) as the admin. What differs from the
// in-memory server is written in README (Operator-bound: 100 accounts, fast providers).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startEnvtest, ROOT } from "../test/real/envtest.ts";
import { kubeClientFor } from "../test/real/client.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { CloudInstanceResource } from "../src/kube/resources.ts";
import { parseMetrics, type Samples } from "./prometheus.ts";
import { isReady, NAMESPACE, startAccounts, type Accounts } from "./accounts.ts";

/** Sets KUBEBUILDER_ASSETS (kube-apiserver and etcd) from scripts/envtest/assets.sh unless it is set. */
function ensureAssets(): void {
  if (process.env.KUBEBUILDER_ASSETS) return;
  process.env.KUBEBUILDER_ASSETS = execFileSync(join(ROOT, "scripts", "envtest", "assets.sh"), {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();
}

/** A fresh etcd and kube-apiserver with the CRDs, the chart's RBAC and the bench's namespace. */
export interface RealServer {
  /** The admin's client: Secrets, counting. */
  admin: KubeClient;
  /** The operator's ServiceAccount identity: for the operator and the empty reconciler. */
  kubeconfig: string;
  /** Writes of CloudInstances (with their subresources) and of Events so far, as the server counts them. */
  writes(): Promise<{ objects: number; events: number }>;
  /** CPU-seconds etcd and kube-apiserver have spent so far. */
  cpuSeconds(): number;
  close(): Promise<void>;
}

export async function startRealServer(): Promise<RealServer> {
  ensureAssets();
  const env = await startEnvtest({
    operator: { namespace: "cloud-instance-operator", serviceAccount: "cloud-instance-operator" },
  });
  let admin: KubeClient | undefined;
  try {
    await env.kubectl(["apply", "-f", join(ROOT, "deploy", "manifests", "operator.yaml")]);
    await env.kubectl(["create", "namespace", NAMESPACE]);
    admin = await kubeClientFor(env.adminKubeconfig);
  } catch (err) {
    await env.stop();
    throw err;
  }
  const client = admin;
  return {
    admin: client,
    kubeconfig: env.operatorKubeconfig,
    writes: async () => serverWrites(parseMetrics(await env.kubectl(["get", "--raw", "/metrics"]))),
    cpuSeconds: () => processCpuSeconds(env.pids.etcd) + processCpuSeconds(env.pids.apiserver),
    close: async () => {
      await client.close();
      await env.stop();
    },
  };
}

const WRITE_VERBS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** kube-apiserver's own request counter, as the in-memory server's `writes` in bench/common.ts. */
function serverWrites(samples: Samples): { objects: number; events: number } {
  let objects = 0;
  let events = 0;
  for (const s of samples) {
    if (s.name !== "apiserver_request_total" || !WRITE_VERBS.has(s.labels.verb ?? "")) continue;
    if (s.labels.resource === "cloudinstances") objects += s.value;
    if (s.labels.resource === "events") events += s.value;
  }
  return { objects, events };
}

/** utime + stime of a process, from /proc (Linux). */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, "utf8");
  // The command name, in parentheses, may hold spaces: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / CLOCK_TICKS;
}
/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

/** The accounts world of bench/accounts.ts on a real server. */
export interface RealAccountsWorld extends Accounts {
  server: RealServer;
  /** The bench's creates and deletes, as the operator's identity. */
  kube: KubeClient;
  /** CloudInstances in the namespace and how many are Ready: a paginated list, as the admin. */
  count(): Promise<{ all: number; ready: number }>;
  close(): Promise<void>;
}

export async function startRealAccountsWorld(n: number, accounts: number): Promise<RealAccountsWorld> {
  const server = await startRealServer();
  let kube: KubeClient | undefined;
  try {
    kube = await kubeClientFor(server.kubeconfig);
    const world = await startAccounts(n, accounts, server.admin, kube);
    const writer = kube;
    return {
      ...world,
      server,
      kube: writer,
      async count() {
        const { items } = await server.admin.listAll(CloudInstanceResource, {
          namespace: NAMESPACE,
          limit: 1000,
        });
        return { all: items.length, ready: items.filter(isReady).length };
      },
      close: async () => {
        await writer.close();
        await world.sim.close();
        await server.close();
      },
    };
  } catch (err) {
    await kube?.close();
    await server.close();
    throw err;
  }
}
