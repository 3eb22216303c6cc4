/**
 * A replica whose wall clock runs 180 s ahead (an NTP failure): it neither takes a lease that
 * is still being renewed nor turns another replica's graceful stop into a power-off. Durations
 * are measured on the monotonic clock; times written by other replicas are never compared with
 * this one's wall clock.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { CloudInstanceResource } from "../../src/kube/resources.ts";
import { LEASE, leaderWorld, until } from "./leadership.ts";
import { sleep } from "./world.ts";

const SKEW = ["--import", join(import.meta.dirname, "skew-clock.ts")];
let lw: Awaited<ReturnType<typeof leaderWorld>>;

before(async () => {
  lw = await leaderWorld({ instances: 1 });
});
after(
  async () => {
    await lw.close();
  },
  { timeout: 60_000 },
);

test("a standby 180 s ahead does not take a lease the leader keeps renewing", async () => {
  await lw.start("healthy");
  await until("healthy leads", async () => (await lw.holder()) === "healthy");
  await lw.start("ahead", { CLOCK_SKEW_MS: "180000" }, SKEW);
  const end = Date.now() + 4 * LEASE.durationMs;
  while (Date.now() < end) {
    assert.equal(await lw.holder(), "healthy", "the lease never moved to the skewed replica");
    await sleep(200);
  }
});

test("a leader 180 s ahead does not power off a VM another replica began to stop gracefully", async () => {
  const m2s = lw.world.sims.get("m2s");
  assert.ok(m2s);
  await until(
    "the VM is Ready",
    () =>
      lw.world
        .instances()
        .some((o) => o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")),
    60_000,
  );
  // A graceful stop that takes long: the healthy leader sends it and records when it began.
  m2s.faults.transitionMs = 60_000;
  await lw.world.kube.patch(CloudInstanceResource, "lead", "vm-0", { spec: { powerState: "Stopped" } });
  await until("the soft stop was sent", () =>
    lw.seen.some((r) => r.method === "POST" && r.url.endsWith("/stop")),
  );
  await until("status says Stopping", () => lw.world.instances()[0]?.status?.phase === "Stopping");
  const healthy = lw.replicas.get("healthy");
  assert.ok(healthy);
  healthy.process.kill("SIGKILL");
  await healthy.process.exited;
  await until("the skewed replica leads", async () => (await lw.holder()) === "ahead", 30_000);
  const takeover = Date.now();
  // Its own stopwatch starts now; a wall-clock reading would say the stop began 3 minutes ago.
  while (Date.now() < takeover + 5_000) {
    assert.equal(
      lw.seen.filter((r) => r.url.endsWith("/poweroff")).length,
      0,
      "no power-off: the graceful stop is still within its two minutes",
    );
    await sleep(200);
  }
  m2s.faults.transitionMs = 100;
});
