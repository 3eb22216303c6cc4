import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  decide,
  errorStatus,
  pollDelay,
  type DecideInput,
  type Observation,
} from "../../../src/controller/cloudinstance/decide.ts";
import type { ResolvedSpec } from "../../../src/controller/cloudinstance/resolve.ts";
import type { Capability, ObservedMachine } from "../../../src/providers/driver.ts";
import type { CloudInstanceStatus } from "../../../src/api/index.ts";
import { getCondition } from "../../../src/controller/conditions.ts";
import { decideInput, NOW } from "./input.ts";

const ALL: Capability[] = ["start", "stop", "hardStop", "reboot", "resize", "rebuild", "tags", "findByOwner"];

function spec(over: Partial<ResolvedSpec> = {}): ResolvedSpec {
  return {
    provider: { name: "m2s" },
    region: "fr-par-1",
    plan: "business",
    image: "ubuntu-22.04",
    sshKeys: [],
    tags: ["web"],
    providerOptions: {},
    powerState: "Running",
    deletionPolicy: "Delete",
    updatePolicy: "Safe",
    managementPolicies: ["Observe", "Create", "Update", "Delete"],
    driftPolicy: "Correct",
    templateProviderData: {},
    ...over,
  };
}

function vm(over: Partial<ObservedMachine> = {}): ObservedMachine {
  return {
    id: "vm-1",
    providerStatus: "running",
    phase: "Running",
    transitional: false,
    plan: "business",
    image: "ubuntu-22.04",
    region: "fr-par-1",
    tags: ["web"],
    addresses: { public: ["203.0.113.5"], private: [] },
    ...over,
  };
}

function input(over: Partial<DecideInput> & { observation: Observation }): DecideInput {
  return decideInput({ generation: 2, spec: spec(), capabilities: new Set(ALL), ...over });
}

const cond = (s: CloudInstanceStatus, t: string) => getCondition(s.conditions, t);
const found = (m: Partial<ObservedMachine> = {}): Observation => ({ kind: "found", machine: vm(m) });

describe("decide: a living CloudInstance", () => {
  test("no VM at the provider -> Create, phase Provisioning, poll soon", () => {
    const d = decide(input({ observation: { kind: "absent" } }));
    assert.deepEqual(d.action, { type: "Create" });
    assert.equal(d.status.phase, "Provisioning");
    assert.equal(cond(d.status, "Provisioned")?.status, "False");
    assert.equal(d.status.observedGeneration, 2);
    assert.equal(d.requeueAfterMs, 1000);
  });

  test("a known VM that vanished is reported and recreated", () => {
    const d = decide(
      input({ status: { instanceID: "vm-old", phase: "Running" }, observation: { kind: "absent" } }),
    );
    assert.deepEqual(d.action, { type: "Create" });
    assert.equal(d.status.instanceID, undefined);
    assert.equal(d.events[0]?.reason, "VMDisappeared");
  });

  test("an adopted VM that does not exist is never created", () => {
    const d = decide(
      input({ adopted: true, status: { instanceID: "ext-1" }, observation: { kind: "absent" } }),
    );
    assert.deepEqual(d.action, undefined);
    assert.equal(cond(d.status, "Synced")?.reason, "ExternalVMNotFound");
    assert.equal(d.status.phase, "Failed");
  });

  test("an unverifiable earlier create blocks creating blindly", () => {
    const d = decide(input({ observation: { kind: "unverifiable", since: "2026-01-01T00:00:00Z" } }));
    assert.deepEqual(d.action, undefined);
    assert.equal(cond(d.status, "Synced")?.reason, "CreatePendingUnverifiable");
    assert.match(cond(d.status, "Synced")?.message ?? "", /external-id/);
  });

  test("a VM that matches the spec is Ready, with observed fields, resync later", () => {
    const d = decide(input({ observation: found() }));
    assert.deepEqual(d.action, undefined);
    assert.equal(d.status.phase, "Running");
    assert.equal(d.status.instanceID, "vm-1");
    assert.deepEqual(d.status.addresses, { public: ["203.0.113.5"], private: [] });
    for (const t of ["Provisioned", "Running", "Ready", "Synced"])
      assert.equal(cond(d.status, t)?.status, "True", t);
    assert.equal(d.requeueAfterMs, 300_000);
  });

  test("resync is jittered within ±10%", () => {
    const lo = decide(input({ jitter: 0, observation: found() })).requeueAfterMs;
    const hi = decide(input({ jitter: 1, observation: found() })).requeueAfterMs;
    assert.equal(lo, 270_000);
    assert.equal(hi, 330_000);
  });

  test("a transitional VM is polled, not acted upon", () => {
    const d = decide(
      input({
        observation: found({ phase: "Provisioning", providerStatus: "provisioning", transitional: true }),
      }),
    );
    assert.deepEqual(d.action, undefined);
    assert.equal(d.status.phase, "Provisioning");
    assert.equal(cond(d.status, "Ready")?.status, "False");
    assert.equal(d.requeueAfterMs, 1000);
  });

  test("poll delay grows with the time waited, capped", () => {
    const status = (ago: number): CloudInstanceStatus => ({
      conditions: [
        {
          type: "Ready",
          status: "False",
          reason: "x",
          message: "",
          lastTransitionTime: new Date(NOW - ago).toISOString(),
        },
      ],
    });
    const t = {
      pollInitialMs: 1000,
      pollMaxMs: 30_000,
      resyncMs: 1,
      hardStopAfterMs: 1,
      noProgressLimit: 3,
      unknownStatusAfterMs: 1,
    };
    assert.equal(pollDelay(status(0), NOW, t), 1000);
    assert.equal(pollDelay(status(8000), NOW, t), 4000);
    assert.equal(pollDelay(status(600_000), NOW, t), 30_000);
  });

  test("powerState Stopped on a running VM -> soft Stop", () => {
    const d = decide(input({ spec: spec({ powerState: "Stopped" }), observation: found() }));
    assert.deepEqual(d.action, { type: "Stop", hard: false });
    assert.equal(d.events[0]?.reason, "Stopping");
  });

  test("a graceful stop that hangs is escalated to a hard stop", () => {
    const longAgo = new Date(NOW - 200_000).toISOString();
    const d = decide(
      input({
        spec: spec({ powerState: "Stopped" }),
        status: {
          conditions: [
            {
              type: "Running",
              status: "False",
              reason: "Stopping",
              message: "",
              lastTransitionTime: longAgo,
            },
          ],
        },
        observation: found({ phase: "Stopping", transitional: true, providerStatus: "stopping" }),
        stoppingForMs: 121_000,
      }),
    );
    assert.deepEqual(d.action, { type: "Stop", hard: true });
  });

  test("a power-off is decided from this process's own stopwatch, never from a time another replica wrote", () => {
    // The Running condition says the stop began 10 minutes ago (a replica with a clock 180 s
    // ahead would read it so), but this process has watched the stop for 5 s only.
    const d = decide(
      input({
        spec: spec({ powerState: "Stopped" }),
        status: {
          conditions: [
            {
              type: "Running",
              status: "False",
              reason: "Stopping",
              message: "",
              lastTransitionTime: new Date(NOW - 600_000).toISOString(),
            },
          ],
        },
        observation: found({ phase: "Stopping", transitional: true, providerStatus: "stopping" }),
        stoppingForMs: 5_000,
      }),
    );
    assert.deepEqual(d.action, undefined);
  });

  test("a stopped VM with powerState Running -> Start; stopped outside Kubernetes is reported as drift", () => {
    const d = decide(
      input({
        status: { phase: "Running" },
        observation: found({ phase: "Stopped", providerStatus: "stopped" }),
      }),
    );
    assert.deepEqual(d.action, { type: "Start" });
    assert.ok(d.events.some((e) => e.reason === "DriftDetected"));
  });

  test("a stopped VM matching powerState Stopped is Ready", () => {
    const d = decide(
      input({ spec: spec({ powerState: "Stopped" }), observation: found({ phase: "Stopped" }) }),
    );
    assert.deepEqual(d.action, undefined);
    assert.equal(cond(d.status, "Ready")?.status, "True");
    assert.equal(cond(d.status, "Running")?.status, "False");
  });

  test("plan change -> Resize; plan changed outside Kubernetes -> Resize back with drift event", () => {
    assert.deepEqual(decide(input({ spec: spec({ plan: "performance" }), observation: found() })).action, {
      type: "Resize",
      plan: "performance",
    });
    const d = decide(
      input({ status: { phase: "Running", plan: "business" }, observation: found({ plan: "starter" }) }),
    );
    assert.deepEqual(d.action, { type: "Resize", plan: "business" });
    assert.ok(d.events.some((e) => e.reason === "DriftDetected"));
  });

  test("image change with updatePolicy Safe -> RebuildRequired, no action", () => {
    const d = decide(input({ spec: spec({ image: "debian-12" }), observation: found() }));
    assert.deepEqual(d.action, undefined);
    assert.equal(cond(d.status, "Synced")?.reason, "RebuildRequired");
    assert.equal(cond(d.status, "Ready")?.status, "False");
  });

  test("image change with AllowRebuild -> Rebuild first, before other changes", () => {
    const d = decide(
      input({
        spec: spec({ image: "debian-12", updatePolicy: "AllowRebuild", plan: "performance" }),
        observation: found(),
      }),
    );
    assert.deepEqual(d.action, { type: "Rebuild", image: "debian-12" });
  });

  test("tag difference -> SetTags (order does not matter)", () => {
    assert.deepEqual(
      decide(input({ spec: spec({ tags: ["a", "b"] }), observation: found({ tags: ["b", "a"] }) })).action,
      undefined,
    );
    assert.deepEqual(
      decide(input({ spec: spec({ tags: ["a"] }), observation: found({ tags: [] }) })).action,
      { type: "SetTags", tags: ["a"] },
    );
  });

  test("an action the driver cannot do -> Synced False Unsupported, no action, no tight loop", () => {
    const d = decide(
      input({
        spec: spec({ powerState: "Stopped" }),
        capabilities: new Set<Capability>(["start", "findByOwner"]),
        observation: found(),
      }),
    );
    assert.deepEqual(d.action, undefined);
    assert.equal(cond(d.status, "Synced")?.reason, "Unsupported");
    assert.match(cond(d.status, "Synced")?.message ?? "", /does not support stopping/);
    assert.equal(d.requeueAfterMs, 300_000);
  });

  test("a supported action still runs while another one is unsupported, and Synced says what is not", () => {
    const d = decide(
      input({
        spec: spec({ powerState: "Stopped", tags: ["x"] }),
        capabilities: new Set<Capability>(["tags"]),
        observation: found(),
      }),
    );
    assert.deepEqual(d.action, { type: "SetTags", tags: ["x"] });
    assert.equal(cond(d.status, "Synced")?.reason, "Unsupported");
  });

  test("a failed VM is reported, not recreated", () => {
    const d = decide(
      input({ observation: found({ phase: "Failed", providerStatus: "error", message: "init timed out" }) }),
    );
    assert.deepEqual(d.action, undefined);
    assert.equal(d.status.phase, "Failed");
    assert.equal(cond(d.status, "Synced")?.message, "init timed out");
  });

  test("duplicates carrying the UID are reported as a warning", () => {
    const d = decide(
      input({ observation: { kind: "found", machine: vm(), duplicates: [vm({ id: "vm-2" })] } }),
    );
    assert.ok(
      d.events.some((e) => e.type === "Warning" && e.reason === "DuplicateVMs" && e.message.includes("vm-2")),
    );
  });

  test("lastTransitionTime moves only when a condition's status flips", () => {
    const first = decide(input({ observation: found() }));
    const later = decide(input({ now: NOW + 60_000, status: first.status, observation: found() }));
    assert.equal(
      cond(later.status, "Ready")?.lastTransitionTime,
      cond(first.status, "Ready")?.lastTransitionTime,
    );
    assert.deepEqual(later.status, first.status);
  });
});

describe("decide: a deleting CloudInstance", () => {
  test("existing VM -> Delete", () => {
    const d = decide(input({ deleting: true, status: { instanceID: "vm-1" }, observation: found() }));
    assert.deepEqual(d.action, { type: "Delete" });
    assert.equal(d.status.phase, "Deleting");
  });
  test("first pass with a known id -> Delete at once, no read first; the id is kept", () => {
    const d = decide(input({ deleting: true, observation: { kind: "unobserved", id: "vm-9" } }));
    assert.deepEqual(d.action, { type: "Delete" });
    assert.equal(d.status.phase, "Deleting");
    assert.equal(d.status.instanceID, "vm-9");
    assert.equal(d.events[0]?.reason, "Deleting");
  });
  test("first pass with Orphan -> the VM is left alone even unobserved", () => {
    const d = decide(
      input({
        deleting: true,
        spec: spec({ deletionPolicy: "Orphan" }),
        observation: { kind: "unobserved", id: "vm-9" },
      }),
    );
    assert.deepEqual(d.action, { type: "RemoveFinalizer" });
  });
  test("VM being deleted -> wait", () => {
    const d = decide(
      input({ deleting: true, observation: found({ phase: "Deleting", transitional: true }) }),
    );
    assert.deepEqual(d.action, undefined);
    assert.ok(d.requeueAfterMs !== undefined);
  });
  test("VM gone -> remove the finalizer", () => {
    assert.deepEqual(
      decide(input({ deleting: true, status: { instanceID: "vm-1" }, observation: { kind: "absent" } }))
        .action,
      { type: "RemoveFinalizer" },
    );
  });
  test("Orphan -> remove the finalizer without touching the VM", () => {
    const d = decide(
      input({ deleting: true, spec: spec({ deletionPolicy: "Orphan" }), observation: found() }),
    );
    assert.deepEqual(d.action, { type: "RemoveFinalizer" });
    assert.equal(d.events[0]?.reason, "Orphaned");
  });
  test("an unverifiable create blocks the finalizer removal (the VM could leak)", () => {
    const d = decide(input({ deleting: true, observation: { kind: "unverifiable", since: "t" } }));
    assert.deepEqual(d.action, undefined);
  });
});

describe("errorStatus", () => {
  test("before any VM: Synced, Provisioned and Ready false with the reason", () => {
    const s = errorStatus({}, { reason: "SecretNotFound", message: 'Secret "ns/x" not found' }, NOW, 1);
    assert.equal(s.phase, "Pending");
    for (const t of ["Synced", "Provisioned", "Ready"]) assert.equal(cond(s, t)?.reason, "SecretNotFound");
  });
  test("with a Ready VM, a transient provider error leaves Ready alone", () => {
    const ready = decide(input({ observation: found() })).status;
    const s = errorStatus(ready, { reason: "ProviderUnavailable", message: "503" }, NOW + 1000, 2);
    assert.equal(cond(s, "Ready")?.status, "True");
    assert.equal(cond(s, "Synced")?.status, "False");
  });
});

describe("decide: the no-progress guard", () => {
  const untagged = (): Observation => {
    const { tags: _t, ...rest } = vm();
    return { kind: "found", machine: rest };
  };
  const stopped = found({ phase: "Stopped", providerStatus: "stopped" });
  /** Runs decide `passes` times, `stepMs` apart, feeding each status into the next, on an unchanging VM. */
  function run(passes: number, stepMs: number, over: Partial<DecideInput> = {}) {
    let status: CloudInstanceStatus = { instanceID: "vm-1", phase: "Stopped" };
    const sent: number[] = [];
    let last;
    for (let i = 0; i < passes; i++) {
      last = decide(input({ status, observation: stopped, now: NOW + i * stepMs, ...over }));
      if (last.action !== undefined) sent.push(i);
      status = last.status;
    }
    assert.ok(last);
    return { sent, last, status };
  }

  test("the first send is recorded in status.lastAction", () => {
    const d = decide(input({ status: { instanceID: "vm-1" }, observation: stopped }));
    assert.deepEqual(d.action, { type: "Start" });
    assert.equal(d.status.lastAction?.action, "Start");
    assert.equal(d.status.lastAction?.attempts, 1);
    assert.equal(d.status.lastAction?.generation, 2);
  });

  test("a VM that does not move gets the call 3 times, spaced out, then NoProgress with a Warning", () => {
    const { sent, last } = run(150, 1000);
    assert.deepEqual(sent, [0, 30, 90], "sends at 0 s, then a poll maximum later, then twice that");
    assert.deepEqual(last.action, undefined);
    assert.equal(cond(last.status, "Synced")?.reason, "NoProgress");
    assert.equal(cond(last.status, "Ready")?.reason, "NoProgress");
    assert.match(
      cond(last.status, "Synced")?.message ?? "",
      /starting the VM was sent 3 times.*provider status stopped/,
    );
    assert.ok((last.requeueAfterMs ?? 0) >= 1000 && (last.requeueAfterMs ?? 0) <= 30_000);
  });

  test("the Warning Event is emitted once, when the guard trips", () => {
    let status: CloudInstanceStatus = { instanceID: "vm-1", phase: "Stopped" };
    const warnings: string[] = [];
    for (let i = 0; i < 150; i++) {
      const d = decide(input({ status, observation: stopped, now: NOW + i * 1000 }));
      warnings.push(...d.events.filter((e) => e.reason === "NoProgress").map((e) => e.message));
      assert.ok(
        !d.events.some((e) => e.reason === "Starting" && d.action === undefined),
        "no 'Starting' for a call not sent",
      );
      status = d.status;
    }
    assert.equal(warnings.length, 1);
  });

  test("the limit is a setting", () => {
    const { sent } = run(150, 1000, {
      timing: { ...input({ observation: stopped }).timing, noProgressLimit: 1 },
    });
    assert.deepEqual(sent, [0]);
  });

  test("a changed observation, a new generation or a new reconcile request starts the count again", () => {
    const stuck = run(150, 1000).status;
    const later = NOW + 200_000;
    const moved = decide(
      input({
        status: stuck,
        observation: found({ phase: "Stopped", providerStatus: "stopped", plan: "starter" }),
        now: later,
      }),
    );
    assert.equal(moved.action?.type, "Resize", "the VM changed: act again");
    const edited = decide(input({ status: stuck, observation: stopped, generation: 3, now: later }));
    assert.deepEqual(edited.action, { type: "Start" });
    assert.equal(edited.status.lastAction?.attempts, 1);
    const requested = decide(
      input({ status: stuck, observation: stopped, now: later, reconcileRequestedAt: "please" }),
    );
    assert.deepEqual(requested.action, { type: "Start" });
    const echoed = decide(
      input({
        status: { ...stuck, lastHandledReconcileAt: "please" },
        observation: stopped,
        now: later,
        reconcileRequestedAt: "please",
      }),
    );
    assert.deepEqual(echoed.action, undefined, "an already handled request does not reset it");
  });

  test("a VM that reaches the spec clears the record", () => {
    const { status } = run(3, 1000);
    assert.ok(status.lastAction);
    const d = decide(input({ status, observation: found() }));
    assert.equal(cond(d.status, "Ready")?.status, "True");
    assert.equal(d.status.lastAction, undefined);
  });

  test("a deletion the provider never carries out is stopped too", () => {
    let status: CloudInstanceStatus = { instanceID: "vm-1", phase: "Deleting" };
    const sent: number[] = [];
    let d;
    for (let i = 0; i < 150; i++) {
      d = decide(input({ deleting: true, status, observation: found(), now: NOW + i * 1000 }));
      if (d.action !== undefined) sent.push(i);
      status = d.status;
    }
    assert.deepEqual(sent, [0, 30, 90]);
    assert.equal(cond(status, "Synced")?.reason, "NoProgress");
    assert.equal(status.phase, "Deleting");
  });

  test("a provider without tags: tags in the spec are Unsupported, not silently dropped", () => {
    const caps = new Set(ALL.filter((c) => c !== "tags"));
    const d = decide(input({ capabilities: caps, observation: untagged() }));
    assert.deepEqual(d.action, undefined);
    assert.equal(cond(d.status, "Synced")?.reason, "Unsupported");
    assert.match(cond(d.status, "Synced")?.message ?? "", /does not support setting tags \[web\]/);
    const none = decide(input({ capabilities: caps, spec: spec({ tags: [] }), observation: untagged() }));
    assert.equal(cond(none.status, "Ready")?.status, "True");
  });
});

describe("decide: the adoption guard (external-id)", () => {
  const foreign = (): Observation => ({ kind: "found", machine: vm({ ownerUID: "someone-else" }) });

  test("a VM marked as another object's is not adopted: no action, nothing of it in status", () => {
    const d = decide(input({ adopted: true, status: { instanceID: "vm-1" }, observation: foreign() }));
    assert.deepEqual(d.action, undefined);
    assert.equal(cond(d.status, "Synced")?.reason, "AdoptionRefused");
    assert.match(cond(d.status, "Synced")?.message ?? "", /force-adopt/);
    assert.equal(d.status.phase, "Failed");
    assert.equal(d.status.addresses, undefined);
    assert.equal(d.events[0]?.reason, "AdoptionRefused");
  });

  test("even a spec that differs from the foreign VM sends nothing to it", () => {
    const d = decide(
      input({
        adopted: true,
        spec: spec({ powerState: "Stopped", plan: "enterprise" }),
        observation: foreign(),
      }),
    );
    assert.deepEqual(d.action, undefined);
  });

  test("deleting such an object leaves the VM alone and lets the object go", () => {
    const d = decide(input({ adopted: true, deleting: true, observation: foreign() }));
    assert.deepEqual(d.action, { type: "RemoveFinalizer" });
  });

  test("force-adopt takes it over", () => {
    const d = decide(
      input({
        adopted: true,
        forceAdopt: true,
        spec: spec({ powerState: "Stopped" }),
        observation: foreign(),
      }),
    );
    assert.deepEqual(d.action, { type: "Stop", hard: false });
  });

  test("a VM marked with this object's UID, or not by anyone, is adopted; an unmarked one gets marked", () => {
    const own = decide(input({ adopted: true, observation: found({ ownerUID: "uid-1" }) }));
    assert.equal(cond(own.status, "Ready")?.status, "True");
    const unmarked = decide(input({ adopted: true, observation: found() }));
    assert.deepEqual(unmarked.action, { type: "SetTags", tags: ["web"] }, "the tags call carries the mark");
    const cannotMark = decide(
      input({
        adopted: true,
        capabilities: new Set(ALL.filter((c) => c !== "tags")),
        spec: spec({ tags: [] }),
        observation: found(),
      }),
    );
    assert.equal(
      cond(cannotMark.status, "Ready")?.status,
      "True",
      "adopted unmarked where no mark can be set",
    );
  });
});

describe("decide: a provider status no driver table knows", () => {
  const odd = (): Observation =>
    found({ phase: "Provisioning", transitional: true, providerStatus: "quarantined", unknownStatus: true });
  const waitedSince = (ms: number): CloudInstanceStatus => ({
    instanceID: "vm-1",
    conditions: [
      {
        type: "Ready",
        status: "False",
        reason: "Converging",
        message: "",
        lastTransitionTime: new Date(NOW - ms).toISOString(),
      },
    ],
  });

  test("is waited on like a transition at first, nothing sent", () => {
    const d = decide(input({ status: waitedSince(1000), observation: odd() }));
    assert.deepEqual(d.action, undefined);
    assert.equal(cond(d.status, "Synced")?.reason, "Converging");
  });

  test("is reported after the bounded wait, with the value, once", () => {
    const d = decide(input({ status: waitedSince(700_000), observation: odd() }));
    assert.deepEqual(d.action, undefined);
    assert.equal(cond(d.status, "Synced")?.reason, "UnknownProviderStatus");
    assert.match(cond(d.status, "Synced")?.message ?? "", /"quarantined"/);
    assert.equal(d.events[0]?.reason, "UnknownProviderStatus");
    assert.equal(d.requeueAfterMs, 30_000);
    const again = decide(input({ status: d.status, observation: odd(), now: NOW + 30_000 }));
    assert.equal(again.events.length, 0);
  });

  test("never holds a deletion: delete is sent at once", () => {
    const d = decide(
      input({ deleting: true, status: { instanceID: "vm-1", phase: "Deleting" }, observation: odd() }),
    );
    assert.deepEqual(d.action, { type: "Delete" });
  });
});

describe("decide: drift (changes made outside Kubernetes) and driftPolicy", () => {
  const wasRunning: CloudInstanceStatus = {
    instanceID: "vm-1",
    phase: "Running",
    plan: "business",
    tags: ["web"],
  };
  const stoppedOutside = (): Observation => found({ phase: "Stopped", providerStatus: "stopped" });

  test("Correct: the change is listed in status.drift, announced, and undone", () => {
    const d = decide(input({ status: wasRunning, observation: stoppedOutside() }));
    assert.deepEqual(d.action, { type: "Start" });
    assert.deepEqual(d.status.drift, [
      { field: "powerState", desired: "Running", observed: "Stopped", since: new Date(NOW).toISOString() },
    ]);
    assert.ok(d.events.some((e) => e.reason === "DriftDetected" && /bringing it back/.test(e.message)));
  });

  test("Report: listed and announced once, never undone; Ready says what is left", () => {
    const report = spec({ driftPolicy: "Report" });
    const d = decide(input({ spec: report, status: wasRunning, observation: stoppedOutside() }));
    assert.deepEqual(d.action, undefined);
    assert.equal(d.status.drift?.[0]?.field, "powerState");
    assert.equal(cond(d.status, "Ready")?.status, "True");
    assert.equal(cond(d.status, "Ready")?.reason, "Observed");
    assert.match(cond(d.status, "Ready")?.message ?? "", /powerState.*driftPolicy Report/);
    assert.equal(d.events.filter((e) => e.reason === "DriftDetected").length, 1);
    const later = decide(
      input({ spec: report, status: d.status, observation: stoppedOutside(), now: NOW + 60_000 }),
    );
    assert.deepEqual(later.action, undefined);
    assert.equal(later.events.length, 0, "no second announcement");
    assert.equal(later.status.drift?.[0]?.since, d.status.drift?.[0]?.since, "since stays");
  });

  test("Report still applies the user's own spec changes", () => {
    const d = decide(
      input({
        spec: spec({ driftPolicy: "Report", plan: "performance" }),
        status: wasRunning,
        observation: found(),
      }),
    );
    assert.deepEqual(d.action, { type: "Resize", plan: "performance" });
    assert.equal(d.status.drift, undefined, "a change of the spec is not drift");
  });

  test("a resize done at the provider is drift; the list empties once the VM matches again", () => {
    const d = decide(input({ status: wasRunning, observation: found({ plan: "starter" }) }));
    assert.deepEqual(
      d.status.drift?.map((x) => [x.field, x.desired, x.observed]),
      [["plan", "business", "starter"]],
    );
    const fixed = decide(input({ status: d.status, observation: found() }));
    assert.equal(fixed.status.drift, undefined);
  });
});

describe("decide: managementPolicies", () => {
  const observeOnly = spec({ managementPolicies: ["Observe"] });

  test("without Create no VM is made", () => {
    const d = decide(input({ spec: observeOnly, observation: { kind: "absent" } }));
    assert.deepEqual(d.action, undefined);
    assert.equal(cond(d.status, "Synced")?.reason, "CreateNotAllowed");
    assert.match(cond(d.status, "Synced")?.message ?? "", /external-id/);
  });

  test("[Observe] imports read-only: differences are reported, nothing is sent", () => {
    const d = decide(
      input({
        spec: spec({ managementPolicies: ["Observe"], powerState: "Stopped", plan: "enterprise" }),
        adopted: true,
        status: { instanceID: "vm-1" },
        observation: found(),
      }),
    );
    assert.deepEqual(d.action, undefined);
    assert.equal(cond(d.status, "Ready")?.reason, "Observed");
    assert.match(cond(d.status, "Ready")?.message ?? "", /plan, powerState.*without Update/);
    assert.equal(d.status.instanceID, "vm-1");
  });

  test("without Update: no hard stop either", () => {
    const since = new Date(NOW - 600_000).toISOString();
    const d = decide(
      input({
        spec: spec({ powerState: "Stopped", managementPolicies: ["Observe", "Create", "Delete"] }),
        status: {
          instanceID: "vm-1",
          conditions: [
            { type: "Running", status: "False", reason: "x", message: "", lastTransitionTime: since },
          ],
        },
        observation: found({ phase: "Stopping", providerStatus: "stopping", transitional: true }),
      }),
    );
    assert.deepEqual(d.action, undefined);
  });

  test("without Delete the VM outlives the object", () => {
    const d = decide(
      input({
        deleting: true,
        spec: spec({ managementPolicies: ["Observe", "Create", "Update"] }),
        status: { instanceID: "vm-1" },
        observation: found(),
      }),
    );
    assert.deepEqual(d.action, { type: "RemoveFinalizer" });
    assert.match(d.events[0]?.message ?? "", /without Delete: VM vm-1 left/);
  });
});

describe("decide: restart-requested-at", () => {
  test("a new value restarts a running VM once; the same value again does nothing", () => {
    const d = decide(input({ observation: found(), restartRequestedAt: "t1" }));
    assert.deepEqual(d.action, { type: "Reboot" });
    assert.equal(d.events.find((e) => e.reason === "Restarting")?.type, "Normal");
    const again = decide(
      input({ observation: found(), restartRequestedAt: "t1", status: { lastHandledRestartAt: "t1" } }),
    );
    assert.deepEqual(again.action, undefined);
  });

  test("it waits until the VM is otherwise as specified, and never restarts a stopped VM", () => {
    const d = decide(input({ observation: found({ plan: "starter" }), restartRequestedAt: "t1" }));
    assert.deepEqual(d.action, { type: "Resize", plan: "business" });
    const stopped = decide(
      input({
        spec: spec({ powerState: "Stopped" }),
        observation: found({ phase: "Stopped" }),
        restartRequestedAt: "t1",
      }),
    );
    assert.deepEqual(stopped.action, undefined);
  });

  test("a provider that cannot reboot: Unsupported while the annotation asks for it", () => {
    const d = decide(
      input({
        capabilities: new Set(ALL.filter((c) => c !== "reboot")),
        observation: found(),
        restartRequestedAt: "t1",
      }),
    );
    assert.deepEqual(d.action, undefined);
    assert.equal(cond(d.status, "Synced")?.reason, "Unsupported");
    assert.match(cond(d.status, "Synced")?.message ?? "", /does not support restarting the VM/);
  });

  test("without Update nothing is restarted", () => {
    const d = decide(
      input({
        spec: spec({ managementPolicies: ["Observe"] }),
        observation: found(),
        restartRequestedAt: "t1",
      }),
    );
    assert.deepEqual(d.action, undefined);
  });
});
