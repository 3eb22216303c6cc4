// Semantics of the Kubernetes API the operator relies on, asserted over HTTP. By default
// against the in-memory server; with KUBE_CONFORMANCE_KUBECONFIG=<path> the same assertions
// run against that cluster (crds/ applied first with kubectl, own namespace, cleaned up).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { KubeClient } from "../../src/kube/client.ts";
import { connect, kubeConfigFromString, loadKubeConfig } from "../../src/kube/connection.ts";
import { ConflictError, InvalidError, isNotFound } from "../../src/kube/errors.ts";
import { CloudInstanceResource, InstanceTemplateResource, SecretResource } from "../../src/kube/resources.ts";
import { createLogger } from "../../src/observability/logger.ts";
import type { CloudInstance } from "../../src/api/index.ts";
import { startKubeApiServer, type KubeApiServer } from "./server.ts";

const realCluster = process.env.KUBE_CONFORMANCE_KUBECONFIG;
const NS = realCluster ? `conformance-${randomUUID().slice(0, 8)}` : "conformance";
const root = join(import.meta.dirname, "../..");
let server: KubeApiServer | undefined;
let kube: KubeClient;

function kubectl(...args: string[]): void {
  execFileSync("kubectl", [`--kubeconfig=${realCluster ?? ""}`, ...args], { stdio: "pipe" });
}

before(async () => {
  if (realCluster) {
    kubectl("apply", "-f", join(root, "crds"));
    kubectl("create", "namespace", NS);
    kube = new KubeClient({
      connection: await connect(loadKubeConfig({ kubeconfig: realCluster, context: undefined })),
      logger: createLogger({ level: "silent" }),
    });
  } else {
    server = await startKubeApiServer();
    kube = new KubeClient({
      connection: await connect(kubeConfigFromString(server.kubeconfigYaml())),
      logger: createLogger({ level: "silent" }),
    });
  }
});
after(async () => {
  if (realCluster) kubectl("delete", "namespace", NS, "--wait=false");
  await kube.close();
  await server?.close();
});

function instance(
  name: string,
  extra: Partial<CloudInstance["spec"]> = {},
  labels: Record<string, string> = {},
): CloudInstance {
  return {
    apiVersion: "compute.instance-operator.dev/v1alpha1",
    kind: "CloudInstance",
    metadata: { name, namespace: NS, labels },
    spec: { provider: { name: "m2s" }, plan: "business", ...extra } as CloudInstance["spec"],
  };
}

describe("Kubernetes API conformance", () => {
  test("create assigns uid, creationTimestamp, resourceVersion, generation 1 and applies CRD defaults", async () => {
    const o = await kube.create(CloudInstanceResource, instance("c1"));
    assert.ok(o.metadata.uid);
    assert.ok(o.metadata.creationTimestamp);
    assert.ok(o.metadata.resourceVersion);
    assert.equal(o.metadata.generation, 1);
    assert.equal(o.spec.powerState, "Running");
    assert.equal(o.spec.deletionPolicy, "Delete");
    await assert.rejects(
      () => kube.create(CloudInstanceResource, instance("c1")),
      (e: unknown) => (e as { code?: string }).code === "ERR_KUBE_ALREADY_EXISTS",
    );
  });

  test("a write with a stale resourceVersion is a 409 Conflict", async () => {
    const o = await kube.create(CloudInstanceResource, instance("c2"));
    await kube.update(CloudInstanceResource, { ...o, spec: { ...o.spec, plan: "starter" } });
    await assert.rejects(
      () => kube.update(CloudInstanceResource, { ...o, spec: { ...o.spec, plan: "enterprise" } }),
      ConflictError,
    );
  });

  test("generation moves on spec changes only; status goes through the status subresource only", async () => {
    await kube.create(CloudInstanceResource, instance("c3"));
    const labelled = await kube.patch(CloudInstanceResource, NS, "c3", { metadata: { labels: { a: "b" } } });
    assert.equal(labelled.metadata.generation, 1);
    const specced = await kube.patch(CloudInstanceResource, NS, "c3", { spec: { plan: "starter" } });
    assert.equal(specced.metadata.generation, 2);
    const ignored = await kube.patch(CloudInstanceResource, NS, "c3", { status: { phase: "Running" } });
    assert.equal(ignored.status?.phase, undefined, "the main resource ignores status");
    assert.equal(ignored.metadata.generation, 2);
    // Kubernetes promises a new resourceVersion for every change, not an unchanged one for a
    // write that changed nothing visible: a real server records that patch's field manager in
    // managedFields and so moves the resourceVersion (the in-memory server keeps no
    // managedFields and does not). Each write therefore starts from what the last one returned.
    const st = await kube.updateStatus(CloudInstanceResource, { ...ignored, status: { phase: "Running" } });
    assert.equal(st.status?.phase, "Running");
    assert.equal(st.metadata.generation, 2, "a status write leaves generation alone");
    assert.notEqual(st.metadata.resourceVersion, ignored.metadata.resourceVersion);
    const again = await kube.patch(CloudInstanceResource, NS, "c3", { spec: { plan: "starter" } });
    assert.equal(again.metadata.resourceVersion, st.metadata.resourceVersion, "a no-op patch stores nothing");
  });

  test("metadata is validated on every write: names are DNS subdomains, label values at most 63 characters", async () => {
    const invalid = (field: RegExp, why: RegExp) => (e: unknown) =>
      e instanceof InvalidError && field.test(e.message) && why.test(e.message);
    await assert.rejects(
      () => kube.create(CloudInstanceResource, instance("long-label", {}, { note: "x".repeat(64) })),
      invalid(/metadata\.labels/, /must be no more than 63 characters/),
    );
    await assert.rejects(
      () => kube.create(CloudInstanceResource, instance("Bad_Name")),
      invalid(/metadata\.name/, /RFC 1123 subdomain/),
    );
    await kube.create(CloudInstanceResource, instance("label-63", {}, { note: "x".repeat(63) }));
    await assert.rejects(
      () =>
        kube.patch(CloudInstanceResource, NS, "label-63", { metadata: { labels: { note: "y".repeat(64) } } }),
      invalid(/metadata\.labels/, /must be no more than 63 characters/),
    );
    await assert.rejects(
      () => kube.patch(CloudInstanceResource, NS, "label-63", { metadata: { labels: { "bad key!": "v" } } }),
      invalid(/metadata\.labels/, /name part must consist of alphanumeric characters/),
    );
  });

  test("json patch with a failing test op is refused; a passing one applies", async () => {
    await kube.create(CloudInstanceResource, instance("c4"));
    await assert.rejects(() =>
      kube.patch(
        CloudInstanceResource,
        NS,
        "c4",
        [
          { op: "test", path: "/spec/plan", value: "nope" },
          { op: "replace", path: "/spec/plan", value: "starter" },
        ],
        "json",
      ),
    );
    const ok = await kube.patch(
      CloudInstanceResource,
      NS,
      "c4",
      [
        { op: "test", path: "/spec/plan", value: "business" },
        { op: "replace", path: "/spec/plan", value: "starter" },
      ],
      "json",
    );
    assert.equal(ok.spec.plan, "starter");
  });

  test("objects that break the CRD schema are rejected with 422 and field causes", async () => {
    await assert.rejects(
      () => kube.create(CloudInstanceResource, instance("bad", { powerState: "Off" as never })),
      (e: unknown) =>
        e instanceof InvalidError &&
        /spec\.powerState/.test(e.message) &&
        /Unsupported value/.test(e.message),
    );
    await assert.rejects(
      () =>
        kube.create(CloudInstanceResource, {
          ...instance("bad2"),
          spec: { provider: { name: "nope" } },
        } as never),
      InvalidError,
    );
  });

  test("finalizers hold a deleted object with deletionTimestamp until they are removed", async () => {
    await kube.create(CloudInstanceResource, {
      ...instance("c5"),
      metadata: { name: "c5", namespace: NS, finalizers: ["example.com/hold"] },
    });
    await kube.delete(CloudInstanceResource, NS, "c5");
    const held = await kube.get(CloudInstanceResource, NS, "c5");
    assert.ok(held.metadata.deletionTimestamp);
    await kube.patch(CloudInstanceResource, NS, "c5", { metadata: { finalizers: null } });
    await assert.rejects(
      () => kube.get(CloudInstanceResource, NS, "c5"),
      (e: unknown) => isNotFound(e),
    );
  });

  test("label selectors and paginated lists", async () => {
    for (let i = 0; i < 5; i++)
      await kube.create(CloudInstanceResource, instance(`sel-${i}`, {}, { tier: i < 3 ? "web" : "db" }));
    assert.equal(
      (await kube.list(CloudInstanceResource, { namespace: NS, labelSelector: "tier=web" })).items.length,
      3,
    );
    assert.equal(
      (await kube.list(CloudInstanceResource, { namespace: NS, labelSelector: "tier in (db)" })).items.length,
      2,
    );
    assert.equal(
      (await kube.list(CloudInstanceResource, { namespace: NS, labelSelector: "tier!=web,tier" })).items
        .length,
      2,
    );
    const page = await kube.list(CloudInstanceResource, { namespace: NS, labelSelector: "tier", limit: 2 });
    assert.equal(page.items.length, 2);
    assert.ok(page.continue);
    const all = await kube.listAll(CloudInstanceResource, { namespace: NS, labelSelector: "tier" });
    assert.equal(all.items.length, 5);
  });

  test("watch from a resourceVersion replays later changes and ends at timeoutSeconds; a BOOKMARK carries only a resourceVersion", async () => {
    const list = await kube.list(CloudInstanceResource, { namespace: NS });
    await kube.create(CloudInstanceResource, instance("w1"));
    // A safety net only: the server itself must end the watch at timeoutSeconds.
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 30_000);
    const seen: string[] = [];
    const bookmarks: CloudInstance["metadata"][] = [];
    const started = Date.now();
    // Kubernetes does not promise BOOKMARKs at any interval, or at all: v1.20 sends one shortly
    // before timeoutSeconds, newer servers about every minute, the in-memory one every second.
    for await (const ev of kube.watch(CloudInstanceResource, {
      namespace: NS,
      resourceVersion: list.resourceVersion,
      allowWatchBookmarks: true,
      signal: ac.signal,
      timeoutSeconds: 5,
    })) {
      if (ev.type === "BOOKMARK") bookmarks.push(ev.object.metadata);
      else seen.push(`${ev.type} ${ev.object.metadata.name ?? ""}`);
    }
    clearTimeout(timer);
    assert.ok(!ac.signal.aborted, "the server ended the watch at timeoutSeconds");
    assert.ok(Date.now() - started < 20_000);
    assert.ok(seen.includes("ADDED w1"), seen.join(", "));
    for (const b of bookmarks) {
      assert.ok(b.resourceVersion, "a BOOKMARK names a resourceVersion");
      assert.equal(b.name ?? b.uid, undefined, "and nothing else of an object");
    }
    const last = bookmarks.at(-1)?.resourceVersion;
    if (last !== undefined) {
      // What a bookmark is for: resuming from it replays nothing already seen.
      const replayed: string[] = [];
      for await (const ev of kube.watch(CloudInstanceResource, {
        namespace: NS,
        resourceVersion: last,
        timeoutSeconds: 1,
      }))
        replayed.push(`${ev.type} ${ev.object.metadata.name ?? ""}`);
      assert.deepEqual(replayed, []);
    }
  });

  test("metadata only (PartialObjectMetadata): lists, watches with a selector and its leaving as DELETED carry metadata without spec", async () => {
    const created = await kube.create(CloudInstanceResource, instance("meta-1", {}, { stage: "new" }));
    const page = await kube.list<CloudInstance>(CloudInstanceResource, {
      namespace: NS,
      labelSelector: "stage=new",
      limit: 10,
      metadataOnly: true,
    });
    assert.equal(page.items.length, 1);
    const item = page.items[0];
    assert.equal(item?.kind, "PartialObjectMetadata");
    assert.equal(item?.apiVersion, "meta.k8s.io/v1");
    assert.equal(item?.metadata.uid, created.metadata.uid);
    assert.equal(item?.metadata.labels?.["stage"], "new");
    assert.equal("spec" in (item ?? {}), false, "no spec");
    assert.ok(page.resourceVersion);

    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 30_000);
    const seen: string[] = [];
    const watch = (async () => {
      for await (const ev of kube.watch<CloudInstance>(CloudInstanceResource, {
        namespace: NS,
        labelSelector: "stage=new",
        resourceVersion: page.resourceVersion,
        metadataOnly: true,
        signal: ac.signal,
        timeoutSeconds: 20,
      })) {
        if (ev.type === "BOOKMARK") continue;
        seen.push(
          `${ev.type} ${ev.object.kind ?? ""} ${ev.object.metadata.name ?? ""} ${"spec" in ev.object}`,
        );
        if (ev.type === "DELETED") break;
      }
    })();
    await kube.create(CloudInstanceResource, instance("meta-2", {}, { stage: "new" }));
    // Leaving the selector: the watch sees it go as DELETED (the labeller's own case).
    await kube.patch(CloudInstanceResource, NS, "meta-1", { metadata: { labels: { stage: "done" } } });
    await watch;
    clearTimeout(timer);
    assert.deepEqual(seen, [
      "ADDED PartialObjectMetadata meta-2 false",
      "DELETED PartialObjectMetadata meta-1 false",
    ]);
  });
  test("the scale subresource reads and writes spec.replicas", async () => {
    await kube.create(InstanceTemplateResource, {
      apiVersion: "compute.instance-operator.dev/v1alpha1",
      kind: "InstanceTemplate",
      metadata: { name: "t1", namespace: NS },
      spec: { provider: { name: "m2s" }, replicas: 1 },
    });
    if (realCluster) kubectl("scale", "-n", NS, "instancetemplate/t1", "--replicas=4");
    else {
      const res = await fetch(
        `${server!.url}/apis/compute.instance-operator.dev/v1alpha1/namespaces/${NS}/instancetemplates/t1/scale`,
        {
          method: "PATCH",
          headers: { "content-type": "application/merge-patch+json" },
          body: JSON.stringify({ spec: { replicas: 4 } }),
        },
      );
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { kind: string }).kind, "Scale");
    }
    assert.equal((await kube.get(InstanceTemplateResource, NS, "t1")).spec.replicas, 4);
  });

  test("Secrets: stringData is stored as base64 data", async () => {
    const s = await kube.create(SecretResource, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s1", namespace: NS },
      stringData: { k: "v" },
    });
    assert.equal((s as { data?: Record<string, string> }).data?.k, Buffer.from("v").toString("base64"));
  });
});
