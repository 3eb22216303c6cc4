/**
 * Hash sharding under chaos, parameterised so `npm test` runs a small variant and
 * `npm run test:chaos` the acceptance one (3 replicas, 3,000 objects). Real operator processes
 * run with --shards, each talking to the in-memory API server through its own proxy, so one
 * can be black-holed while the others and the test talk normally; others are SIGKILLed. After
 * each disruption every object's power state is flipped and the time until all are Ready
 * again is measured against an undisturbed flip.
 *
 * "Exactly one replica at a time per object" is measured, not assumed: the m2s simulator
 * records every request with its User-Agent (which carries the replica's pod name) and body,
 * each mutation is attributed to its object (the VM id in the URL, the owner mark in a
 * create's body), and the test records every change of each shard Lease's holder as the API
 * server stores it. A mutation is a violation when, at the moment it reached the provider,
 * the API server recorded another replica (or nobody) as the holder of the object's shard.
 * The recorder polls the server's memory every 10 ms, so it sees an acquisition a little late:
 * a mutation by a replica whose acquisition is recorded within `ACQUIRE_LAG_MS` after it is
 * not counted (it cannot hide a second holder: the recorder never sees a holder early).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { CloudInstanceResource } from "../../src/kube/resources.ts";
import type { CloudInstance } from "../../src/api/index.ts";
import { shardOf } from "../../src/controller/runtime/sharding.ts";
import type { SeenRequest } from "../sim/common.ts";
import { startProxy } from "./proxy.ts";
import { persist, sleep, startChaosWorld, type OperatorProcess } from "./world.ts";

/**
 * Lease timing of the replicas. Shorter than the production default (15 s / 10 s / 2 s) so a
 * take-over is quick, longer than the leadership test's 3 s / 2 s: three operators, the API
 * server and the simulators share two cores here, and a renewal that waits 2 s for a busy
 * API server would cut a healthy replica off.
 */
export const SHARD_LEASE = { durationMs: 6_000, renewDeadlineMs: 4_000, retryPeriodMs: 1_000 };
const LEASE_ID = "chaos-shards";
const NS = "shard";
const POLL_MAX_MS = 300;
const ACQUIRE_LAG_MS = 250;
const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

export type Disruption = "kill" | "blackhole";

export interface ShardChaosOptions {
  replicas: number;
  shards: number;
  objects: number;
  disruptions: Disruption[];
  /** --resync-period of each replica (long for thousands of objects). */
  resync: string;
  /** Hang guard for each wait. */
  waitMs: number;
  /** The replicas' --log-level (the logs are kept in memory: info for thousands of objects). */
  logLevel?: string;
  /**
   * --shard-watch of the replicas (default all); mixed: replica-1 runs labels and the others
   * all, as in a rolling change of the flag (a labels replica labels what it takes over).
   */
  shardWatch?: "all" | "labels" | "mixed";
}

export interface ShardChaosReport {
  replicas: number;
  shards: number;
  objects: number;
  kills: number;
  blackholes: number;
  /** Per black-holing: ms until the API server recorded none of its shards held by it any more. */
  blackholeShardsGoneMs: number[];
  /**
   * Replicas that exited although not killed (none expected: a replica cut off stays up and
   * rejoins), restarted as a Deployment would.
   */
  unexpectedExits: number;
  secondsToFirstReady: number;
  /** An undisturbed flip of every object's power state, to Ready again. */
  baselineFlipMs: number;
  /** Per disruption: ms from the flip (the disruption follows within 0.5 s) to all Ready. */
  readyAfterDisruptionMs: number[];
  /** Per rejoin: ms from the restarted replica's start to a balanced split (a flip runs meanwhile). */
  rebalanceMs: number[];
  /** Provider mutations seen, and by replica. */
  mutations: number;
  mutationsByReplica: Record<string, number>;
  /** Mutations no object could be found for (must be 0: otherwise the check is blind). */
  unattributed: number;
  /** Mutations sent while the API server recorded another replica as the shard's holder. */
  foreignHolderMutations: number;
  /** Mutations sent while the API server recorded no holder for the shard. */
  unheldMutations: number;
  /** Objects whose mutations came from more than one replica over the run (hand-overs). */
  objectsHandedOver: number;
  /** Shard Lease holder changes recorded. */
  leaseTransitions: number;
  /** Owners for which the provider accepted more than one create. */
  duplicatedVms: number;
  /** VMs left at the provider once every object was deleted. */
  leakedVms: number;
  seconds: number;
}

interface Replica {
  name: string;
  proxy: Awaited<ReturnType<typeof startProxy>>;
  process: OperatorProcess;
  /** Disrupted on purpose: the scenario restarts it itself. */
  victim: boolean;
}

const ready = (o: CloudInstance, power: "Running" | "Stopped"): boolean =>
  o.spec.powerState === power &&
  o.status?.phase === power &&
  (o.status.conditions?.some(
    (c) =>
      c.type === "Ready" &&
      c.status === "True" &&
      (c.observedGeneration === undefined || c.observedGeneration === o.metadata.generation),
  ) ??
    false);

export async function shardChaos(opts: ShardChaosOptions): Promise<ShardChaosReport> {
  const started = Date.now();
  const world = await startChaosWorld({ namespace: NS, faults: { transitionMs: 100 } });
  const m2s = world.sims.get("m2s");
  assert.ok(m2s);
  const seen: SeenRequest[] = [];
  m2s.faults.onRequest = (r) => {
    if (MUTATING.has(r.method)) seen.push(r);
  };
  // VM id -> owner UID, and creates accepted per owner (duplicates).
  const ownerOfVm = new Map<string, string>();
  const createsPerOwner = new Map<string, number>();
  m2s.faults.onCreated = (id) => {
    const vm = m2s.vms().find((v) => v.id === id);
    if (vm?.ownerUID === undefined) return;
    ownerOfVm.set(id, vm.ownerUID);
    createsPerOwner.set(vm.ownerUID, (createsPerOwner.get(vm.ownerUID) ?? 0) + 1);
  };
  // The shard Leases' holders as the API server stores them, with when the change was seen.
  const timeline: { shard: number; holder: string; at: number }[] = [];
  const current = new Map<number, string>();
  let recording = true;
  const recorder = (async () => {
    while (recording) {
      const at = Date.now();
      for (const l of world.api.objects("leases")) {
        const m = /^chaos-shards-shard-(\d+)$/.exec(l.metadata.name ?? "");
        if (!m) continue;
        const shard = Number(m[1]);
        const spec = (l as unknown as { spec?: { holderIdentity?: string } }).spec;
        const holder = spec?.holderIdentity ?? "";
        if (current.get(shard) !== holder) {
          current.set(shard, holder);
          timeline.push({ shard, holder, at });
        }
      }
      await sleep(10);
    }
  })();

  const replicas = new Map<string, Replica>();
  let closing = false;
  let unexpectedExits = 0;
  const start = async (name: string): Promise<Replica> => {
    const proxy = await startProxy(world.api.url);
    const process = await world.startOperator(
      [
        "--leader-elect",
        `--leader-election-id=${LEASE_ID}`,
        `--leader-election-namespace=${NS}`,
        `--leader-election-lease-duration=${String(SHARD_LEASE.durationMs)}ms`,
        `--leader-election-renew-deadline=${String(SHARD_LEASE.renewDeadlineMs)}ms`,
        `--leader-election-retry-period=${String(SHARD_LEASE.retryPeriodMs)}ms`,
        `--shards=${String(opts.shards)}`,
        `--shard-watch=${opts.shardWatch === "mixed" ? (name === "replica-1" ? "labels" : "all") : (opts.shardWatch ?? "all")}`,
        `--pod-name=${name}`,
        "--poll-initial=100ms",
        `--poll-max=${String(POLL_MAX_MS)}ms`,
        `--resync-period=${opts.resync}`,
        `--log-level=${opts.logLevel ?? "info"}`,
      ],
      { kubeconfig: world.kubeconfigVia(proxy.url) },
    );
    const r: Replica = { name, proxy, process, victim: false };
    replicas.set(name, r);
    // The Deployment's part: a replica that stops without being disrupted is restarted.
    void process.exited.then(async () => {
      if (closing || r.victim || replicas.get(name) !== r) return;
      unexpectedExits++;
      await proxy.close();
      replicas.delete(name);
      await start(name);
    });
    return r;
  };
  const holders = (): string[] => Array.from({ length: opts.shards }, (_, i) => current.get(i) ?? "");
  const balanced = (): boolean => {
    const h = holders();
    if (h.some((x) => x === "" || !replicas.has(x))) return false;
    const lo = Math.floor(opts.shards / replicas.size);
    const hi = Math.ceil(opts.shards / replicas.size);
    return [...replicas.keys()].every((n) => {
      const c = h.filter((x) => x === n).length;
      return c >= lo && c <= hi;
    });
  };
  const until = async (what: string, pred: () => boolean): Promise<void> => {
    const deadline = Date.now() + opts.waitMs;
    while (!pred()) {
      if (Date.now() > deadline) {
        const stuck = world.instances().find((o) => !ready(o, power));
        const bad = world.logs
          .join("")
          .split("\n")
          .filter((l) => /"level":"(error|fatal)"|shard|exit|lost/.test(l))
          .slice(-40);
        process.stderr.write(`${bad.join("\n")}\n`);
        assert.fail(
          `timed out: ${what}; holders ${JSON.stringify(holders())}; e.g. ${JSON.stringify({ spec: stuck?.spec.powerState, generation: stuck?.metadata.generation, status: stuck?.status })}`,
        );
      }
      await sleep(100);
    }
  };
  let power: "Running" | "Stopped" = "Running";
  const allReady = (): boolean => {
    const all = world.instances();
    return all.length === opts.objects && all.every((o) => ready(o, power));
  };
  const names = Array.from({ length: opts.objects }, (_, i) => `vm-${String(i)}`);
  const inParallel = async (fn: (name: string) => Promise<unknown>): Promise<void> => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < names.length) {
          const name = names[next++];
          if (name !== undefined) await fn(name);
        }
      }),
    );
  };
  const flip = async (): Promise<void> => {
    power = power === "Running" ? "Stopped" : "Running";
    await inParallel((name) =>
      persist(() => world.kube.patch(CloudInstanceResource, NS, name, { spec: { powerState: power } })),
    );
  };

  const report: ShardChaosReport = {
    replicas: opts.replicas,
    shards: opts.shards,
    objects: opts.objects,
    kills: 0,
    blackholes: 0,
    blackholeShardsGoneMs: [],
    unexpectedExits: 0,
    secondsToFirstReady: 0,
    baselineFlipMs: 0,
    readyAfterDisruptionMs: [],
    rebalanceMs: [],
    mutations: 0,
    mutationsByReplica: {},
    unattributed: 0,
    foreignHolderMutations: 0,
    unheldMutations: 0,
    objectsHandedOver: 0,
    leaseTransitions: 0,
    duplicatedVms: 0,
    leakedVms: 0,
    seconds: 0,
  };
  const uidOf = new Map<string, string>();
  try {
    for (let i = 0; i < opts.replicas; i++) await start(`replica-${String(i)}`);
    await Promise.all([...replicas.values()].map((r) => r.process.started));
    await until("shards balanced at start", balanced);
    const t0 = Date.now();
    await inParallel(async (name) => {
      const o = await persist(() => world.instance("m2s", name, { powerState: "Running" }));
      uidOf.set(o.metadata.uid ?? "", name);
    });
    await until("every object Ready", allReady);
    report.secondsToFirstReady = (Date.now() - t0) / 1000;

    const b0 = Date.now();
    await flip();
    await until("every object Ready after an undisturbed flip", allReady);
    report.baselineFlipMs = Date.now() - b0;

    for (const kind of opts.disruptions) {
      const all = [...replicas.values()];
      const victim = all[Math.floor(Math.random() * all.length)];
      assert.ok(victim);
      victim.victim = true;
      const d0 = Date.now();
      const flipping = flip();
      await sleep(Math.random() * 500);
      const hit = Date.now();
      if (kind === "kill") {
        victim.process.kill("SIGKILL");
        report.kills++;
      } else {
        // Nothing gets through either way while it lasts (delivered late once healed, as TCP does).
        victim.proxy.mode = "partition";
        report.blackholes++;
        // When the API server shows none of its shards held by it any more (measured alongside).
        void (async () => {
          while (holders().includes(victim.name) && Date.now() - hit < opts.waitMs) await sleep(20);
          report.blackholeShardsGoneMs.push(Date.now() - hit);
        })();
      }
      await flipping;
      await until(`every object Ready after a ${kind} of ${victim.name}`, allReady);
      report.readyAfterDisruptionMs.push(Date.now() - d0);
      const r0 = Date.now();
      if (kind === "kill") {
        await victim.process.exited;
        await victim.proxy.close();
        replicas.delete(victim.name);
        // Back (same pod name, as a restarted container).
        await (
          await start(victim.name)
        ).process.started;
      } else {
        await until(`${victim.name} holds no shard`, () => !holders().includes(victim.name));
        // Healed: the replica, still running, rejoins.
        victim.proxy.mode = "pass";
        victim.victim = false;
      }
      // The others hand shards over while every object's power state flips again.
      await flip();
      await until(`balanced again after ${victim.name} rejoined`, balanced);
      report.rebalanceMs.push(Date.now() - r0);
      await until(`every object Ready after ${victim.name} rejoined`, allReady);
    }

    // Delete everything; finalizers hold each object until its VM is gone.
    await inParallel((name) =>
      persist(() => world.kube.delete(CloudInstanceResource, NS, name)).catch((err: unknown) => {
        if ((err as { code?: unknown }).code !== "ERR_KUBE_NOT_FOUND") throw err;
      }),
    );
    await until("every object deleted", () => world.instances().length === 0);
    await until("no VM left", () => m2s.vms().length === 0).catch(() => undefined);
    report.leakedVms = m2s.vms().length;
  } finally {
    if (process.env["SHARD_CHAOS_LOG"]) writeFileSync(process.env["SHARD_CHAOS_LOG"], world.logs.join(""));
    closing = true;
    report.unexpectedExits = unexpectedExits;
    recording = false;
    await recorder;
    for (const r of replicas.values()) {
      r.process.kill("SIGKILL");
      await r.process.exited;
      await r.proxy.close();
    }
    await world.close();
  }

  // Attribution and the one-holder check.
  report.duplicatedVms = [...createsPerOwner.values()].filter((n) => n > 1).length;
  report.leaseTransitions = timeline.length;
  const byShard = new Map<number, { holder: string; at: number }[]>();
  for (const t of timeline) {
    const list = byShard.get(t.shard) ?? [];
    list.push(t);
    byShard.set(t.shard, list);
  }
  const replicasOfObject = new Map<string, Set<string>>();
  for (const r of seen) {
    const who = /\(([^)]+)\)/.exec(r.userAgent ?? "")?.[1] ?? "?";
    const id = /\/instances\/([^/?]+)/.exec(r.url)?.[1];
    const owner = id === undefined ? UUID.exec(r.body ?? "")?.[0] : ownerOfVm.get(decodeURIComponent(id));
    report.mutations++;
    report.mutationsByReplica[who] = (report.mutationsByReplica[who] ?? 0) + 1;
    if (owner === undefined || !uidOf.has(owner)) {
      report.unattributed++;
      continue;
    }
    const set = replicasOfObject.get(owner) ?? new Set<string>();
    set.add(who);
    replicasOfObject.set(owner, set);
    const changes = byShard.get(shardOf(owner, opts.shards)) ?? [];
    let holder = "";
    for (const c of changes) {
      if (c.at > r.at) break;
      holder = c.holder;
    }
    if (holder === who) continue;
    // Recorded late (the recorder polls): acquired by this replica just after the mutation arrived.
    const soon = changes.find((c) => c.at > r.at);
    if (soon?.holder === who && soon.at - r.at <= ACQUIRE_LAG_MS) continue;
    if (holder === "") report.unheldMutations++;
    else report.foreignHolderMutations++;
  }
  report.objectsHandedOver = [...replicasOfObject.values()].filter((s) => s.size > 1).length;
  report.seconds = (Date.now() - started) / 1000;
  return report;
}

/** What every variant asserts. */
export function assertShardChaos(report: ShardChaosReport, opts: ShardChaosOptions): void {
  assert.equal(report.duplicatedVms, 0, "no owner got two VMs");
  assert.equal(report.leakedVms, 0, "no VM left after every object was deleted");
  assert.equal(report.unattributed, 0, "every provider mutation attributed to its object");
  assert.ok(report.mutations >= opts.objects * 2, `mutations seen: ${String(report.mutations)}`);
  assert.equal(report.foreignHolderMutations, 0, "no mutation while another replica held the shard");
  assert.equal(report.unheldMutations, 0, "no mutation while nobody held the shard");
  assert.equal(report.unexpectedExits, 0, "no replica stopped unless killed");
  // Ready again within the lease duration + one poll of an undisturbed flip. Generous slack
  // on top: a noisy 2-core machine runs 3 operators, the API server and the simulators.
  const bound = report.baselineFlipMs + SHARD_LEASE.durationMs + POLL_MAX_MS + 30_000;
  for (const ms of report.readyAfterDisruptionMs)
    assert.ok(ms <= bound, `Ready ${String(ms)} ms after a disruption (bound ${String(bound)} ms)`);
}
