/**
 * Leadership under a partition, parameterised so `npm run test:chaos` runs 20 repetitions per
 * mode and `npm test` a few. Two replicas (real operator processes) elect a leader through a
 * Lease; each talks to the API server through its own proxy, so one can be partitioned
 * (requests accepted, never answered) or slowed past the renew deadline while the other and
 * the test talk normally. The provider simulator records which replica sent each request (its
 * User-Agent), so "the old leader sent nothing after it lost the lease" is counted, not assumed.
 */
import assert from "node:assert/strict";
import { CloudInstanceResource, LeaseResource } from "../../src/kube/resources.ts";
import type { CloudInstance } from "../../src/api/index.ts";
import type { SeenRequest } from "../sim/common.ts";
import { startProxy, type ProxyMode } from "./proxy.ts";
import { persist, sleep, startChaosWorld, type ChaosWorld, type OperatorProcess } from "./world.ts";

export const LEASE = { durationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };
/**
 * How long after its renew deadline a partitioned leader may take to be gone. Safety is the
 * fence (no mutation after the deadline, asserted exactly); this bound only tells "exits" from
 * "hangs", so it leaves room for a loaded 2-core machine (5.8 s was seen with a 2 s deadline).
 */
export const EXIT_SLACK_MS = 8_000;
const LEASE_ID = "chaos-leader";

export interface Replica {
  name: string;
  proxy: Awaited<ReturnType<typeof startProxy>>;
  process: OperatorProcess;
}

export interface PartitionReport {
  mode: ProxyMode;
  repetitions: number;
  /** Per repetition: ms from the partition to the old leader's exit. */
  exitAfterMs: number[];
  /** Mutations the old leader sent after its lease could have expired (must be 0). */
  lateMutations: number;
  /** Mutations the old leader sent after its renew deadline (the fence; reported). */
  afterFence: number;
  exitCodes: (number | null)[];
}

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const ready = (o: CloudInstance | undefined): boolean =>
  o?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

export async function leaderWorld(
  opts: { instances: number; extraNodeArgs?: Record<string, string[]> } = { instances: 3 },
): Promise<{
  world: ChaosWorld;
  seen: SeenRequest[];
  replicas: Map<string, Replica>;
  start(name: string, env?: Record<string, string>, nodeArgs?: string[]): Promise<Replica>;
  holder(): Promise<string>;
  close(): Promise<void>;
}> {
  const world = await startChaosWorld({ namespace: "lead", faults: { transitionMs: 100 } });
  const seen: SeenRequest[] = [];
  const m2s = world.sims.get("m2s");
  assert.ok(m2s);
  m2s.faults.onRequest = (r) => seen.push(r);
  const replicas = new Map<string, Replica>();
  const start = async (name: string, env: Record<string, string> = {}, nodeArgs: string[] = []) => {
    const proxy = replicas.get(name)?.proxy ?? (await startProxy(world.api.url));
    proxy.mode = "pass";
    const process = await world.startOperator(
      [
        "--leader-elect",
        `--leader-election-id=${LEASE_ID}`,
        "--leader-election-namespace=lead",
        `--leader-election-lease-duration=${String(LEASE.durationMs)}ms`,
        `--leader-election-renew-deadline=${String(LEASE.renewDeadlineMs)}ms`,
        `--leader-election-retry-period=${String(LEASE.retryPeriodMs)}ms`,
        `--pod-name=${name}`,
        "--poll-initial=100ms",
        "--poll-max=300ms",
      ],
      { kubeconfig: world.kubeconfigVia(proxy.url), env, nodeArgs },
    );
    const replica = { name, proxy, process };
    replicas.set(name, replica);
    return replica;
  };
  const holder = async (): Promise<string> => {
    try {
      return (await world.kube.get(LeaseResource, "lead", LEASE_ID)).spec?.holderIdentity ?? "";
    } catch {
      return "";
    }
  };
  for (let i = 0; i < opts.instances; i++) await persist(() => world.instance("m2s", `vm-${String(i)}`));
  return {
    world,
    seen,
    replicas,
    start,
    holder,
    async close() {
      for (const r of replicas.values()) {
        r.process.kill("SIGKILL");
        await r.process.exited;
        await r.proxy.close();
      }
      await world.close();
    },
  };
}

export async function until(
  what: string,
  pred: () => boolean | Promise<boolean>,
  ms = 30_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) assert.fail(`timed out: ${what}`);
    await sleep(50);
  }
}

/**
 * `repetitions` times: partition the leader (or slow its API traffic past the renew deadline)
 * while the new leader stops and starts the VMs; the old leader must exit non-zero and send no
 * mutation once its lease could have expired; it then comes back as a standby.
 */
export async function partitionTheLeader(
  mode: "blackhole" | "slow",
  repetitions: number,
): Promise<PartitionReport> {
  const lw = await leaderWorld({ instances: 3 });
  const report: PartitionReport = {
    mode,
    repetitions,
    exitAfterMs: [],
    lateMutations: 0,
    afterFence: 0,
    exitCodes: [],
  };
  try {
    await lw.start("replica-a");
    await until("replica-a leads", async () => (await lw.holder()) === "replica-a");
    await lw.start("replica-b");
    await until("all VMs Ready", () => lw.world.instances().filter(ready).length === 3, 60_000);
    for (let rep = 0; rep < repetitions; rep++) {
      const leaderName = await lw.holder();
      const leader = lw.replicas.get(leaderName);
      assert.ok(leader, `a known leader (${leaderName})`);
      const standby = [...lw.replicas.values()].find((r) => r.name !== leaderName);
      assert.ok(standby);
      const t0 = Date.now();
      if (mode === "slow") leader.proxy.delayMs = LEASE.renewDeadlineMs + 2_000;
      leader.proxy.mode = mode;
      // The new leader has work to do the whole time: VMs stopped and started.
      let toggling = true;
      const toggler = (async () => {
        let stopped = false;
        while (toggling) {
          stopped = !stopped;
          for (let i = 0; i < 3; i++)
            await persist(() =>
              lw.world.kube.patch(CloudInstanceResource, "lead", `vm-${String(i)}`, {
                spec: { powerState: stopped ? "Stopped" : "Running" },
              }),
            );
          await sleep(700);
        }
      })();
      const code = await Promise.race([leader.process.exited, sleep(30_000).then(() => "hung" as const)]);
      if (code === "hung") assert.fail(`${leaderName} did not stop after losing the lease`);
      report.exitAfterMs.push(Date.now() - t0);
      report.exitCodes.push(code);
      await until(`${standby.name} leads`, async () => (await lw.holder()) === standby.name);
      await sleep(LEASE.durationMs);
      toggling = false;
      await toggler;
      const late = (after: number) =>
        lw.seen.filter(
          (r) => r.userAgent?.includes(`(${leaderName})`) && MUTATING.has(r.method) && r.at > after,
        ).length;
      report.lateMutations += late(t0 + LEASE.durationMs);
      report.afterFence += late(t0 + LEASE.renewDeadlineMs);
      // Back as a standby, through a healed network.
      await leader.proxy.close();
      lw.replicas.delete(leaderName);
      await lw.start(leaderName);
    }
    return report;
  } finally {
    await lw.close();
  }
}
