/**
 * The m2s driver under a cancelled reconcile and against lists that do not end, on both
 * simulator profiles: an aborted signal sends nothing, an abort in flight ends the call at once
 * and nothing more of it reaches the provider (helpers' requests included: the endpoint check,
 * candidate reads, later pages, the read before a tag update), and a list stops at the page cap.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { HttpClientFactory } from "../../../src/providers/http/client.ts";
import { definition, type M2sOptions } from "../../../src/providers/m2s/index.ts";
import { DEFAULT_MAX_PAGES, type CallContext, type Driver } from "../../../src/providers/driver.ts";
import { ProviderError, ProviderLimitError, TransientError } from "../../../src/providers/errors.ts";
import { captureLogs, desiredMachine, observeUntil } from "../harness.ts";
import { startM2sSimulator, type M2sSimulator } from "../../sim/m2s/index.ts";
import { SIM_PROFILES, type SimProfile } from "../../sim/common.ts";
import { SIMULATORS } from "../../sim/all.ts";

/** Injected per request while a call is measured: an answer in flight stays so this long. */
const LATENCY_MS = 250;

const desired = (ownerUID: string) =>
  desiredMachine<M2sOptions>(SIMULATORS.m2s.spec, { resizeReboot: true }, { ownerUID, name: ownerUID });

for (const profile of SIM_PROFILES) describeOn(profile);

function describeOn(profile: SimProfile): void {
  let sim: M2sSimulator;
  let http: HttpClientFactory;
  const { logger } = captureLogs();
  const driver = (maxPages?: number): Driver<M2sOptions> =>
    definition.create({
      credentials: sim.credentials,
      secretName: "ns/m2s",
      endpoint: sim.url,
      http,
      logger,
      ...(maxPages === undefined ? {} : { maxPages }),
    });
  const lists = (): number => sim.requestCounts.get("GET /v1/instances") ?? 0;

  /**
   * Runs `call` with latency on, aborts it the moment its `nth` request reaches the simulator
   * (in flight for LATENCY_MS more), and reports how the call ended, how long after the abort,
   * and how many requests of it ever arrived (counted once any in flight would have landed).
   */
  async function abortAt(
    nth: number,
    call: (ctx: CallContext) => Promise<unknown>,
  ): Promise<{ outcome: unknown; ms: number; sent: number }> {
    const ac = new AbortController();
    const base = sim.arrived();
    sim.faults.latencyMs = LATENCY_MS;
    try {
      let settled = false;
      const running = call({ signal: ac.signal }).then(
        () => "resolved",
        (e: unknown) => e,
      );
      void running.finally(() => (settled = true));
      while (sim.arrived() - base < nth && !settled) await sleep(2);
      const t0 = performance.now();
      ac.abort();
      const outcome = await running;
      const ms = performance.now() - t0;
      await sleep(LATENCY_MS + 100);
      return { outcome, ms, sent: sim.arrived() - base };
    } finally {
      sim.faults.latencyMs = 0;
    }
  }

  describe(`m2s driver: cancellation and bounded lists (${profile} profile)`, () => {
    let running: { id: string; providerData: Record<string, string> };

    before(async () => {
      sim = await startM2sSimulator({ profile, faults: { transitionMs: 20 } });
      // The default rate limit (20/s) would stretch a 100-page list to 3 s; the cap is the point here.
      http = new HttpClientFactory({
        logger,
        retry: { baseDelayMs: 5, maxDelayMs: 20 },
        defaultLimits: { qps: 1000, burst: 1000 },
      });
      const d = driver();
      running = { id: (await d.create(desired("uid-running"))).id, providerData: {} };
      await observeUntil(d, running, (m) => m?.providerStatus === "running");
    });
    after(async () => {
      sim.paging = "documented";
      await http.close();
      await sim.close();
    });

    test("an already-aborted signal sends nothing, whatever the call", async () => {
      const d = driver();
      const ctx = { signal: AbortSignal.abort() };
      const gone = { id: "i-gone00", providerData: {} };
      const calls: Record<string, () => Promise<unknown>> = {
        create: () => d.create(desired("uid-never"), ctx),
        get: () => d.get(running, ctx),
        getGone: () => d.get(gone, ctx),
        findByOwner: () => d.findByOwner!("uid-running", desired("uid-running"), ctx),
        listOwned: () => d.listOwned!(ctx),
        start: () => d.start!(running, ctx),
        stop: () => d.hardStop!(running, ctx),
        reboot: () => d.reboot!(running, ctx),
        resize: () => d.resize!(running, "enterprise", ctx),
        rebuild: () => d.rebuild!(running, "debian-12", desired("uid-running"), ctx),
        setTags: () => d.setTags!(running, ["x"], "uid-running", ctx),
        delete: () => d.delete(running, ctx),
      };
      const before = sim.arrived();
      for (const [name, call] of Object.entries(calls))
        await assert.rejects(call, (e: unknown) => e instanceof ProviderError, name);
      await sleep(50);
      assert.equal(sim.arrived(), before, "no request reached the provider");
      assert.equal((await d.get(running))?.providerStatus, "running", "the VM was not touched");
    });

    const inFlight: [string, number, (d: Driver<M2sOptions>, ctx: CallContext) => Promise<unknown>][] = [
      ["create", 1, (d, ctx) => d.create(desired("uid-flight"), ctx)],
      ["get", 1, (d, ctx) => d.get(running, ctx)],
      [
        "get of a gone VM: the endpoint check's list",
        2,
        (d, ctx) => d.get({ id: "i-gone00", providerData: {} }, ctx),
      ],
      [
        "delete of a gone VM: the endpoint check's list",
        2,
        (d, ctx) => d.delete({ id: "i-gone00", providerData: {} }, ctx),
      ],
      ["setTags: the read of the marks", 1, (d, ctx) => d.setTags!(running, ["t"], "uid-running", ctx)],
      ["setTags: the PATCH", 2, (d, ctx) => d.setTags!(running, ["t"], "uid-running", ctx)],
      ["reboot", 1, (d, ctx) => d.reboot!(running, ctx)],
      ["resize", 1, (d, ctx) => d.resize!(running, "performance", ctx)],
      // Tagged list items (default profile) settle it without the candidate read.
      [
        "findByOwner: the candidate read (strict), the list (default)",
        profile === "strict" ? 2 : 1,
        (d, ctx) => d.findByOwner!("uid-running", desired("uid-running"), ctx),
      ],
      [
        "listOwned: a mark read (strict), the list (default)",
        profile === "strict" ? 2 : 1,
        (d, ctx) => d.listOwned!(ctx),
      ],
    ];
    for (const [what, nth, call] of inFlight) {
      test(`abort in flight, ${what}: rejects at once, request ${String(nth)} is the last`, async () => {
        const d = driver();
        const { outcome, ms, sent } = await abortAt(nth, (ctx) => call(d, ctx));
        assert.ok(outcome instanceof ProviderError, `rejected with a provider error: ${String(outcome)}`);
        assert.ok(ms < LATENCY_MS / 2, `rejected ${ms.toFixed(0)} ms after the abort, not at the answer`);
        assert.equal(sent, nth, "nothing after the request in flight");
      });
    }

    test("abort in flight on page 3 of an endless list: nothing after it", async () => {
      sim.paging = "endless";
      try {
        for (const call of [
          (ctx: CallContext) => driver().findByOwner!("uid-x", desired("uid-x"), ctx),
          (ctx: CallContext) => driver().listOwned!(ctx),
        ]) {
          const lists0 = lists();
          const { outcome, ms, sent } = await abortAt(3, call);
          assert.ok(outcome instanceof ProviderError, String(outcome));
          assert.ok(ms < LATENCY_MS / 2, `${ms.toFixed(0)} ms`);
          assert.equal(sent, 3);
          assert.equal(lists() - lists0, 3, "three pages asked, the third answered to no one");
        }
      } finally {
        sim.paging = "documented";
      }
    });

    test("an endless list stops at the page cap (context's, else DEFAULT_MAX_PAGES) with TooManyPages", async () => {
      sim.paging = "endless";
      try {
        const tooMany = (e: unknown) => e instanceof ProviderLimitError && e.reason === "TooManyPages";
        for (const [cap, call] of [
          [5, () => driver(5).findByOwner!("uid-x", desired("uid-x"))],
          [7, () => driver(7).listOwned!()],
          [DEFAULT_MAX_PAGES, () => driver().findByOwner!("uid-x", desired("uid-x"))],
        ] as const) {
          const lists0 = lists();
          await assert.rejects(call, tooMany);
          assert.equal(lists() - lists0, cap, `exactly ${String(cap)} pages asked`);
        }
      } finally {
        sim.paging = "documented";
      }
    });

    test("a list whose pages repeat fails on the first repeat, never loops, never answers from page 1 alone", async () => {
      sim.paging = "stuck";
      try {
        for (const call of [
          () => driver().findByOwner!("uid-running", desired("uid-running")),
          () => driver().listOwned!(),
        ]) {
          const lists0 = lists();
          await assert.rejects(
            call,
            (e: unknown) => e instanceof TransientError && /total_pages/.test(e.message),
          );
          assert.equal(lists() - lists0, 2);
        }
      } finally {
        sim.paging = "documented";
      }
    });

    test("a list as long as the cap is whole, not refused", async () => {
      const lists0 = lists();
      const found = await driver(1).findByOwner!("uid-running", desired("uid-running"));
      assert.deepEqual(
        found.map((m) => m.id),
        [running.id],
      );
      assert.ok((await driver(1).listOwned!()).some((o) => o.id === running.id));
      assert.equal(lists() - lists0, 2, "one page each");
    });
  });
}
