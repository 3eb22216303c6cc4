/**
 * Cancellation: every request a driver call sends carries the call's signal, so a cancelled
 * reconcile (leadership lost, shutdown) stops at once and sends nothing more. Requests are
 * counted at the simulator; its latency knob keeps a request in flight while the test aborts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { TransientError, UnsupportedError } from "../../../src/providers/errors.ts";
import type { CallContext, Driver } from "../../../src/providers/driver.ts";
import type { VscaleOptions } from "../../../src/providers/vscale/index.ts";
import { VscaleApi } from "../../../src/providers/vscale/api.ts";
import { VscaleTags, VscaleTasks } from "../../../src/providers/vscale/account.ts";
import { SIM_PROFILES } from "../../sim/common.ts";
import { observeUntil } from "../harness.ts";
import { settled, vscaleWorld, type VscaleWorld } from "./world.ts";

/** Long enough that a request is surely in flight when the test aborts, 50 ms after the call. */
const LATENCY_MS = 400;
/** A cancelled call must give up well before the in-flight request could have been answered. */
const PROMPT_MS = 250;

const snapshot = (w: VscaleWorld): Map<string, number> => new Map(w.sim.requestCounts);
/** Requests answered since `before`, by operation. */
function since(w: VscaleWorld, before: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [op, n] of w.sim.requestCounts)
    if (n !== (before.get(op) ?? 0)) out[op] = n - (before.get(op) ?? 0);
  return out;
}

const cancelledError = (e: unknown) => e instanceof TransientError;

/**
 * Runs `call` against the slowed simulator, aborts it once `ready` holds (default: 50 ms in),
 * checks it rejects promptly, then waits long enough for any request it would still have sent
 * to arrive, and answers what reached the simulator.
 */
async function abortInFlight(
  w: VscaleWorld,
  call: (ctx: CallContext) => Promise<unknown>,
  ready: () => boolean = () => true,
): Promise<Record<string, number>> {
  const before = snapshot(w);
  w.sim.faults.latencyMs = LATENCY_MS;
  try {
    const ac = new AbortController();
    const running = call({ signal: ac.signal });
    running.catch(() => undefined);
    await sleep(50);
    for (let i = 0; i < 200 && !ready(); i++) await sleep(10);
    await sleep(50);
    const at = Date.now();
    ac.abort();
    await assert.rejects(running, cancelledError);
    const took = Date.now() - at;
    assert.ok(took < PROMPT_MS, `rejected ${String(took)} ms after the abort`);
    // A driver that went on would send its next request once the in-flight one is answered.
    await sleep(LATENCY_MS * 2.5);
    return since(w, before);
  } finally {
    w.sim.faults.latencyMs = 0;
  }
}

for (const profile of SIM_PROFILES) {
  describe(`vscale cancellation (${profile} profile)`, () => {
    const w = vscaleWorld(profile);

    async function running(d: Driver<VscaleOptions> = w.d) {
      const desired = w.desired();
      const { id } = await d.create(desired);
      const ref = { id, providerData: {} };
      await observeUntil(d, ref, settled("started"));
      return { ref, desired };
    }

    test("an abort during a resize's first read: it rejects at once and no catalogue read or upgrade follows", async () => {
      const { ref } = await running();
      const fresh = w.driver(); // no catalogue cached: the resize would read it next
      const sent = await abortInFlight(w, (ctx) => fresh.resize!(ref, "large", ctx));
      assert.deepEqual(sent, { "GET /v1/scalets/:id": 1 });
    });

    test("an abort while a read waits for the task and tag lists: it rejects, never a half observation", async () => {
      const { ref } = await running();
      const fresh = w.driver();
      const reads = () => w.sim.requestCounts.get("GET /v1/scalets/:id") ?? 0;
      const first = reads();
      const sent = await abortInFlight(
        w,
        (ctx) => fresh.get(ref, ctx),
        () => reads() > first,
      );
      assert.deepEqual(sent, { "GET /v1/scalets/:id": 1, "GET /v1/scalets/tags": 1, "GET /v1/tasks": 1 });
    });

    test("the task and tag lists never turn a cancellation into 'unknown'", async () => {
      const api = new VscaleApi(
        w.http.client({
          provider: "vscale",
          baseUrl: w.sim.url,
          credentialKey: "cancel",
          secrets: [],
          defaultHeaders: { "x-token": w.sim.credentials.token ?? "" },
        }),
      );
      const ac = new AbortController();
      ac.abort();
      const before = w.calls();
      await assert.rejects(new VscaleTasks(api).latest(12601, ac.signal), cancelledError);
      await assert.rejects(new VscaleTags(api).of(12601, ac.signal), cancelledError);
      assert.equal(w.calls(), before);
    });

    test("an abort during create's key lookup (default) or create (strict): nothing further is sent", async () => {
      const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHcancelledcreate0000000000000000000000000 u@h";
      const desired = w.desired(profile === "default" ? { sshKeys: [key] } : {});
      const sent = await abortInFlight(w, (ctx) => w.d.create(desired, ctx));
      if (profile === "default") {
        assert.deepEqual(sent, { "GET /v1/sshkeys": 1 }, "no key registered, no scalet created");
        assert.equal(w.sim.vms().filter((v) => v.ownerUID === desired.ownerUID).length, 0);
      } else assert.deepEqual(sent, { "POST /v1/scalets": 1 });
    });

    test("an already-aborted signal sends nothing, on every method", async () => {
      const { ref, desired } = await running();
      const fresh = w.driver(); // nothing cached: each call would have to ask the provider
      const ac = new AbortController();
      ac.abort();
      const ctx = { signal: ac.signal };
      const before = w.calls();
      const calls: [string, () => Promise<unknown>][] = [
        ["validate", () => fresh.validate(desired, ctx)],
        ["create", () => fresh.create(w.desired({ sshKeys: ["key"] }), ctx)],
        ["create by id", () => fresh.create(w.desired(), ctx)],
        ["get", () => fresh.get(ref, ctx)],
        ["findByOwner", () => fresh.findByOwner!(desired.ownerUID, desired, ctx)],
        ["listOwned", () => fresh.listOwned?.(ctx) ?? Promise.reject(new Error("no listOwned"))],
        ["start", () => fresh.start!(ref, ctx)],
        ["stop", () => fresh.stop!(ref, ctx)],
        ["reboot", () => fresh.reboot!(ref, ctx)],
        ["resize", () => fresh.resize!(ref, "large", ctx)],
        ["setTags", () => fresh.setTags!(ref, ["web"], desired.ownerUID, ctx)],
        ["delete", () => fresh.delete(ref, ctx)],
      ];
      for (const [what, call] of calls)
        await assert.rejects(call, cancelledError, `${what} with an aborted signal`);
      assert.equal(w.calls(), before, "not one request");
      assert.ok(
        w.sim.vms().some((v) => v.id === ref.id),
        "the scalet is untouched",
      );
    });

    test("a shared catalogue load: the caller that started it is cancelled, the one that joined still gets it", async () => {
      const fresh = w.driver();
      const ops = "GET /v1/rplans"; // answered on default, 404 (the document's catalogue) on strict
      const before = w.sim.requestCounts.get(ops) ?? 0;
      w.sim.faults.latencyMs = LATENCY_MS / 2;
      try {
        const a = new AbortController();
        const first = fresh.validate(w.desired(), { signal: a.signal });
        const joined = fresh.validate(w.desired(), { signal: new AbortController().signal });
        await sleep(50);
        const at = Date.now();
        a.abort();
        await assert.rejects(first, cancelledError);
        assert.ok(Date.now() - at < PROMPT_MS);
        await joined; // loads once more with its own signal instead of failing
        assert.equal((w.sim.requestCounts.get(ops) ?? 0) - before, 2);

        // The other way round: the joiner gives up at once, the load goes on for its starter.
        const fresh2 = w.driver();
        const b = new AbortController();
        const starter = fresh2.validate(w.desired(), { signal: new AbortController().signal });
        const joiner = fresh2.validate(w.desired(), { signal: b.signal });
        await sleep(50);
        b.abort();
        await assert.rejects(joiner, cancelledError);
        await starter;
        assert.equal((w.sim.requestCounts.get(ops) ?? 0) - before, 3, "one load for fresh2");
      } finally {
        w.sim.faults.latencyMs = 0;
      }
    });

    test("a cancelled orphan listing or owner lookup rejects; it never answers an empty account", async () => {
      const { desired } = await running();
      const sent = await abortInFlight(w, (ctx) => w.d.findByOwner!(desired.ownerUID, desired, ctx));
      assert.deepEqual(sent, { "GET /v1/scalets": 1 });
      const listed = await abortInFlight(w, (ctx) => w.d.listOwned?.(ctx) ?? Promise.resolve([]));
      assert.deepEqual(listed, { "GET /v1/scalets": 1 });
      // Not a cancellation: an API that cannot list is Unsupported, never "none".
      const blind = w.driver(w.sim.credentials, `${w.sim.url}/no-such-prefix`);
      await assert.rejects(() => blind.listOwned?.() ?? Promise.resolve([]), UnsupportedError);
    });
  });
}
