/**
 * The chaos scenarios, parameterised so `npm run test:chaos` runs them at full size and
 * `npm test` runs a shortened variant of the same code.
 */
import assert from "node:assert/strict";
import { CloudInstanceResource, EventResource } from "../../src/kube/resources.ts";
import { PROVIDER_NAMES, type ProviderName } from "../../src/api/provider-names.ts";
import type { CloudInstance } from "../../src/api/index.ts";
import { persist, sleep, startChaosWorld, type ChaosWorld, type OperatorProcess } from "./world.ts";
import type { SimProfile } from "../sim/common.ts";

const ready = (o: CloudInstance): boolean =>
  o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

export interface KillReport {
  lifecycles: number;
  profile: SimProfile;
  kills: number;
  /** Kills sent in the window between a provider's create and the answer reaching the operator. */
  createWindowKills: number;
  watchDrops: number;
  historyExpiries: number;
  maxVmsPerOwner: number;
  vmsLeft: Record<string, number>;
  seconds: number;
}

/**
 * `lifecycles` CloudInstances across the five providers go create -> Running -> delete while
 * the operator is SIGKILLed every 1–5 s (scaled by `killEveryMs`) and restarted, and also
 * right after a provider has made a VM and before its answer leaves the simulator (the window
 * where the VM exists and the operator has no id for it), for `createWindowKillRate` of the
 * creates; the providers fail 10 % of requests, time out 2 % and drop 1 %, and the API server
 * drops every watch every few seconds and expires its history. At the end no VM is left and
 * no owner ever had two. `profile` picks the simulators' API: the document's minimum or the
 * real providers' extras.
 */
export async function killsAndFaults(opts: {
  lifecycles: number;
  concurrency: number;
  killEveryMs: [number, number];
  createWindowKillRate: number;
  timeoutMs: number;
  profile: SimProfile;
}): Promise<{ report: KillReport; world: ChaosWorld }> {
  const world = await startChaosWorld({
    faults: { errorRate: 0.1, timeoutRate: 0.02, dropRate: 0.01 },
    profile: opts.profile,
  });
  const started = performance.now();
  let operator: OperatorProcess = await world.startOperator();
  let stopping = false;
  const report: KillReport = {
    lifecycles: opts.lifecycles,
    profile: opts.profile,
    kills: 0,
    createWindowKills: 0,
    watchDrops: 0,
    historyExpiries: 0,
    maxVmsPerOwner: 0,
    vmsLeft: {},
    seconds: 0,
  };
  const between = ([a, b]: [number, number]): number => a + Math.random() * (b - a);

  // The simulators call this synchronously, before they answer the create.
  let windowOpen = true;
  for (const sim of world.sims.values())
    sim.faults.onCreated = () => {
      if (stopping || !windowOpen || Math.random() >= opts.createWindowKillRate) return;
      windowOpen = false;
      report.createWindowKills++;
      operator.kill("SIGKILL");
    };
  const killer = (async () => {
    while (!stopping) {
      // The interval counts from when the process is working, not from its spawn.
      await operator.started;
      const timedOut = await Promise.race([
        sleep(between(opts.killEveryMs)).then(() => true),
        operator.exited.then(() => false),
      ]);
      if (stopping) break;
      if (timedOut) operator.kill("SIGKILL");
      await operator.exited;
      report.kills++;
      operator = await world.startOperator();
      windowOpen = true;
    }
  })();
  const watchChaos = (async () => {
    let n = 0;
    while (!stopping) {
      await sleep(between([1500, 4000]));
      world.api.faults.dropWatches();
      report.watchDrops++;
      if (++n % 3 === 0) {
        world.api.faults.expireHistory();
        report.historyExpiries++;
      }
    }
  })();
  // Sampled often: a second VM for one owner would live at least until a reconcile saw it.
  const sampler = (async () => {
    while (!stopping) {
      for (const sim of world.sims.values()) {
        const perOwner = new Map<string, number>();
        for (const v of sim.vms())
          if (v.ownerUID) perOwner.set(v.ownerUID, (perOwner.get(v.ownerUID) ?? 0) + 1);
        for (const c of perOwner.values()) report.maxVmsPerOwner = Math.max(report.maxVmsPerOwner, c);
      }
      await sleep(50);
    }
  })();

  try {
    const todo = Array.from({ length: opts.lifecycles }, (_, i) => ({
      provider: PROVIDER_NAMES[i % PROVIDER_NAMES.length] as ProviderName,
      name: `life-${String(i).padStart(4, "0")}`,
    }));
    const state = new Map<string, "created" | "deleting">();
    let next = 0;
    const deadline = Date.now() + opts.timeoutMs;
    while (next < todo.length || state.size > 0) {
      if (Date.now() > deadline) {
        const stuck = [...state.keys()].slice(0, 5).map((n) => {
          const o = world.instances().find((x) => x.metadata.name === n);
          return `${n}: ${JSON.stringify(o?.status?.conditions?.find((c) => c.type === "Synced"))}`;
        });
        assert.fail(`chaos: ${String(state.size)} lifecycles unfinished, e.g. ${stuck.join("; ")}`);
      }
      while (next < todo.length && state.size < opts.concurrency) {
        const t = todo[next++];
        if (!t) break;
        await persist(() => world.instance(t.provider, t.name));
        state.set(t.name, "created");
      }
      const objects = new Map(world.instances().map((o) => [o.metadata.name ?? "", o]));
      for (const [name, s] of state) {
        const o = objects.get(name);
        if (s === "created" && o && ready(o) && o.status?.phase === "Running") {
          await persist(() => world.kube.delete(CloudInstanceResource, world.namespace, name)).catch(
            (err: unknown) => {
              if ((err as { code?: unknown }).code !== "ERR_KUBE_NOT_FOUND") throw err;
            },
          );
          state.set(name, "deleting");
        } else if (s === "deleting" && !o) {
          state.delete(name);
        }
      }
      await sleep(100);
    }
    // Every object is gone; the providers' own deletions may still be finishing.
    for (let i = 0; i < 100; i++) {
      if ([...world.sims.values()].every((s) => s.vms().length === 0)) break;
      await sleep(100);
    }
    for (const [name, sim] of world.sims) report.vmsLeft[name] = sim.vms().length;
  } catch (err) {
    // The caller never gets the world to close: a failed run must not leave it (and its
    // operator and servers) holding the test file open until its timeout.
    stopping = true;
    await Promise.all([killer, watchChaos, sampler]);
    await operator.stop();
    await world.close();
    throw err;
  } finally {
    stopping = true;
    await Promise.all([killer, watchChaos, sampler]);
    await operator.stop();
    report.seconds = Math.round((performance.now() - started) / 100) / 10;
  }
  return { report, world };
}

/** Fails when any secret value appears in the operator's logs, the Events or any status. */
export async function assertNoSecretLeaked(
  world: ChaosWorld,
  namespaces: readonly string[] = [world.namespace],
  extraSecrets: readonly string[] = [],
): Promise<{ scannedBytes: number; secrets: number }> {
  const events = await Promise.all(namespaces.map((ns) => world.kube.list(EventResource, { namespace: ns })));
  const haystack = [
    world.logs.join(""),
    await world.scrapeMetrics(),
    JSON.stringify(events.flatMap((e) => e.items)),
    JSON.stringify(world.instances().map((o) => o.status)),
  ].join("\n");
  const secrets = [...new Set([...world.secrets(), ...extraSecrets])].filter((s) => s.length >= 6);
  assert.ok(secrets.length >= 4, "the scan knows the providers' secrets");
  for (const s of secrets) {
    assert.ok(!haystack.includes(s), `a secret value (${s.slice(0, 3)}…) appeared in logs, Events or status`);
    assert.ok(!haystack.includes(encodeURIComponent(s)), "a URL-encoded secret appeared");
  }
  return { scannedBytes: haystack.length, secrets: secrets.length };
}
