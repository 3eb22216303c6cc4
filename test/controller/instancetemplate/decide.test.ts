import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  decideTemplate,
  nextNames,
  newestFirst,
  type TemplateDecideInput,
} from "../../../src/controller/instancetemplate/decide.ts";
import type { CloudInstance, InstanceTemplate } from "../../../src/api/index.ts";
import { API_VERSION } from "../../../src/api/index.ts";

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
      powerState: "Running",
      deletionPolicy: "Delete",
      updatePolicy: "Safe",
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

  test("replicas 0 -> 3 creates <template>-0..2", () => {
    const d = decideTemplate(input({ template: template({ replicas: 3 }) }));
    assert.deepEqual(d.actions, [
      { type: "CreateInstance", name: "web-0" },
      { type: "CreateInstance", name: "web-1" },
      { type: "CreateInstance", name: "web-2" },
    ]);
    assert.equal(d.status.selector, "compute.instance-operator.dev/template=web");
  });

  test("replicas 3 -> 1 deletes the newest first", () => {
    const owned = [
      instance("web-0", "2026-01-01T00:00:00Z"),
      instance("web-1", "2026-01-01T00:00:05Z"),
      instance("web-2", "2026-01-01T00:00:05Z"),
    ];
    const d = decideTemplate(input({ template: template({ replicas: 1 }), owned, referencing: owned }));
    assert.deepEqual(d.actions, [
      { type: "DeleteInstance", name: "web-2" },
      { type: "DeleteInstance", name: "web-1" },
    ]);
    assert.equal(d.status.replicas, 3);
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
