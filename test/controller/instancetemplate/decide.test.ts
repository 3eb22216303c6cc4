import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  decideTemplate,
  nextNames,
  newestFirst,
  ownedName,
  templateLabelValue,
  type TemplateDecideInput,
} from "../../../src/controller/instancetemplate/decide.ts";
import type { CloudInstance, InstanceTemplate } from "../../../src/api/index.ts";
import { API_VERSION, SPEC_DEFAULTS } from "../../../src/api/index.ts";

const NOW = Date.parse("2026-01-01T00:00:00Z");

function template(
  over: Partial<InstanceTemplate["spec"]> = {},
  meta: Partial<InstanceTemplate["metadata"]> = {},
): InstanceTemplate {
  return {
    apiVersion: API_VERSION,
    kind: "InstanceTemplate",
    metadata: { name: "web", namespace: "ns", uid: "t-uid", generation: 1, ...meta },
    spec: { provider: { name: "m2s" }, plan: "business", ...over },
  };
}

function instance(name: string, created: string, ready = true): CloudInstance {
  return {
    apiVersion: API_VERSION,
    kind: "CloudInstance",
    metadata: { name, namespace: "ns", creationTimestamp: created },
    spec: {
      templateRef: { name: "web" },
      ...SPEC_DEFAULTS,
    },
    status: {
      conditions: [
        {
          type: "Ready",
          status: ready ? "True" : "False",
          reason: "x",
          message: "",
          lastTransitionTime: created,
        },
      ],
    },
  };
}

function input(over: Partial<TemplateDecideInput>): TemplateDecideInput {
  return {
    template: template(),
    owned: [],
    referencing: [],
    invalid: undefined,
    remote: false,
    remoteExists: undefined,
    maxReplicas: 100,
    now: NOW,
    ...over,
  };
}

describe("decideTemplate", () => {
  test("without replicas: validates and is Ready, owns nothing", () => {
    const d = decideTemplate(input({}));
    assert.deepEqual(d.actions, []);
    assert.equal(d.status.conditions?.find((c) => c.type === "Ready")?.status, "True");
  });

  test("replicas 0 -> 3 starts with one create, <template>-0", () => {
    const d = decideTemplate(input({ template: template({ replicas: 3 }) }));
    assert.deepEqual(d.actions, [{ type: "CreateInstance", name: "web-0" }]);
    assert.deepEqual(d.status.scaling, { direction: "Up", batch: 1 });
    assert.equal(d.status.selector, "compute.instance-operator.dev/template=web");
  });

  test("replicas 3 -> 1 deletes the newest first", () => {
    const owned = [
      instance("web-0", "2026-01-01T00:00:00Z"),
      instance("web-1", "2026-01-01T00:00:05Z"),
      instance("web-2", "2026-01-01T00:00:05Z"),
    ];
    const d = decideTemplate(input({ template: template({ replicas: 1 }), owned, referencing: owned }));
    assert.deepEqual(d.actions, [{ type: "DeleteInstance", name: "web-2" }], "a batch of one first");
    assert.equal(d.status.replicas, 3);
    const next = decideTemplate(
      input({
        template: { ...template({ replicas: 1 }), status: { scaling: { direction: "Down", batch: 1 } } },
        owned: owned.slice(0, 2),
        referencing: owned.slice(0, 2),
      }),
    );
    assert.deepEqual(next.actions, [{ type: "DeleteInstance", name: "web-1" }], "then the rest");
  });

  test("readyReplicas counts Ready owned instances; Ready only when all are", () => {
    const owned = [instance("web-0", "t1"), instance("web-1", "t2", false)];
    const d = decideTemplate(input({ template: template({ replicas: 2 }), owned }));
    assert.equal(d.status.readyReplicas, 1);
    assert.equal(d.status.conditions?.find((c) => c.type === "Ready")?.status, "False");
  });

  test("lowest free names fill gaps", () => {
    assert.deepEqual(nextNames("web", ["web-0", "web-2"], 2), ["web-1", "web-3"]);
    assert.deepEqual(
      newestFirst([instance("a-1", "t1"), instance("a-10", "t1")]).map((i) => i.metadata.name),
      ["a-10", "a-1"],
    );
  });

  test("an invalid template is reported and owns nothing new", () => {
    const d = decideTemplate(
      input({ template: template({ replicas: 2 }), invalid: "providerOptions.backup: expected boolean" }),
    );
    assert.deepEqual(d.actions, []);
    assert.equal(d.status.conditions?.find((c) => c.type === "Synced")?.reason, "InvalidSpec");
  });

  test("deletion is held while instances reference the template; owned ones are deleted", () => {
    const mine = instance("web-0", "t1");
    const foreign = instance("other", "t1");
    const d = decideTemplate(
      input({
        template: template({ replicas: 1 }, { deletionTimestamp: "t", finalizers: ["f"] }),
        owned: [mine],
        referencing: [mine, foreign],
      }),
    );
    assert.deepEqual(d.actions, [{ type: "DeleteInstance", name: "web-0" }]);
    assert.ok(d.events.some((e) => e.reason === "TemplateInUse"));
  });

  test("deletion with no references removes the remote twin, then the finalizer", () => {
    const t = template({}, { deletionTimestamp: "t" });
    t.status = { providerData: { templateId: "42" } };
    assert.deepEqual(decideTemplate(input({ template: t, remote: true })).actions, [
      { type: "DeleteRemoteTemplate" },
      { type: "RemoveFinalizer" },
    ]);
  });

  test("a remote template is created, re-synced on spec change and recreated when it vanished", () => {
    assert.deepEqual(decideTemplate(input({ remote: true })).actions, [{ type: "SyncRemoteTemplate" }]);
    const t = template();
    t.status = { providerData: { templateId: "42" }, observedGeneration: 1 };
    assert.deepEqual(decideTemplate(input({ template: t, remote: true, remoteExists: true })).actions, []);
    const d = decideTemplate(input({ template: t, remote: true, remoteExists: false }));
    assert.deepEqual(d.actions, [{ type: "SyncRemoteTemplate" }]);
    assert.ok(d.events.some((e) => e.reason === "RemoteTemplateMissing"));
  });
});

describe("decideTemplate: scaling in batches (slow start), bounded", () => {
  const provisioned = (name: string): CloudInstance => ({
    ...instance(name, "2026-01-01T00:00:00Z"),
    status: { instanceID: `vm-${name}`, conditions: [] },
  });
  const pending = (name: string): CloudInstance => ({
    ...instance(name, "2026-01-01T00:00:00Z"),
    status: {},
  });
  const refused = (name: string): CloudInstance => ({
    ...instance(name, "2026-01-01T00:00:00Z"),
    status: {
      conditions: [
        {
          type: "Synced",
          status: "False",
          reason: "QuotaOrBilling",
          message: "no money",
          lastTransitionTime: "t",
        },
      ],
    },
  });

  /** Scales 0 -> n, each batch landing before the next pass; returns the batch sizes. */
  function rampUp(n: number): number[] {
    const owned: CloudInstance[] = [];
    let status: InstanceTemplate["status"] = {};
    const batches: number[] = [];
    for (let pass = 0; pass < 50 && owned.length < n; pass++) {
      const d = decideTemplate(input({ template: { ...template({ replicas: n }), status }, owned }));
      const creates = d.actions.filter((a) => a.type === "CreateInstance");
      batches.push(creates.length);
      for (const c of creates) owned.push(provisioned(c.name));
      status = d.status;
    }
    return batches;
  }

  test("batches of 1, 2, 4, 8 … until the gap is filled", () => {
    assert.deepEqual(rampUp(20), [1, 2, 4, 8, 5]);
    assert.deepEqual(rampUp(1), [1]);
  });

  test("a batch still in flight (no VM id yet) is waited for", () => {
    const d = decideTemplate(
      input({
        template: { ...template({ replicas: 10 }), status: { scaling: { direction: "Up", batch: 2 } } },
        owned: [provisioned("web-0"), pending("web-1"), pending("web-2")],
      }),
    );
    assert.deepEqual(d.actions, []);
  });

  test("a failure stops the scale-up and says why", () => {
    const d = decideTemplate(
      input({
        template: { ...template({ replicas: 10 }), status: { scaling: { direction: "Up", batch: 1 } } },
        owned: [refused("web-0")],
      }),
    );
    assert.deepEqual(d.actions, []);
    const synced = d.status.conditions?.find((c) => c.type === "Synced");
    assert.equal(synced?.reason, "ScaleUpBlocked");
    assert.match(synced?.message ?? "", /web-0.*QuotaOrBilling/);
    assert.equal(d.events[0]?.reason, "ScaleUpBlocked");
    assert.equal(d.status.scaling, undefined, "the next attempt starts again at one");
  });

  test("replicas beyond --max-replicas: TooManyReplicas, never more than the maximum", () => {
    const owned = ["web-0", "web-1", "web-2"].map(provisioned);
    const d = decideTemplate(input({ template: template({ replicas: 500 }), owned, maxReplicas: 3 }));
    assert.deepEqual(d.actions, []);
    assert.equal(d.status.conditions?.find((c) => c.type === "Synced")?.reason, "TooManyReplicas");
  });

  test("long template names still give valid labels and names", () => {
    const long = `a${"b".repeat(250)}.c`;
    assert.ok(templateLabelValue(long).length <= 63);
    assert.match(templateLabelValue(long), /^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/);
    assert.notEqual(templateLabelValue(long), templateLabelValue(`${long}x`), "distinct names stay distinct");
    assert.equal(templateLabelValue("web"), "web");
    assert.ok(ownedName(long, 999).length <= 253);
    assert.match(ownedName(long, 999), /-999$/);
    assert.equal(ownedName("web", 3), "web-3");
  });
});
