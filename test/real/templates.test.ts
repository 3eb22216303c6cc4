// InstanceTemplates with replicas and what people do with kubectl, on a real kube-apiserver:
// `kubectl scale` through the scale subresource, `kubectl wait --for=condition=Ready`,
// `kubectl explain` reading the CRDs' field descriptions, and the printer columns.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { LABEL_TEMPLATE } from "../../src/api/index.ts";
import { CloudInstanceResource, InstanceTemplateResource } from "../../src/kube/resources.ts";
import { SIMULATORS } from "../sim/all.ts";
import { SKIP } from "./envtest.ts";
import { forbiddenLines, ready, startRealWorld, until, type RealWorld } from "./world.ts";

let w: RealWorld;
const NS = "tpl";

function template(name: string, replicas: number): Record<string, unknown> {
  const sim = w.sims.get("m2s")!;
  const kit = SIMULATORS.m2s.spec;
  return {
    apiVersion: "compute.instance-operator.dev/v1alpha1",
    kind: "InstanceTemplate",
    metadata: { name, namespace: NS },
    spec: {
      provider: { name: "m2s", credentialsSecretRef: { name: "m2s-creds" }, endpoint: sim.url },
      region: kit.region,
      plan: kit.plan,
      image: kit.image,
      replicas,
    },
  };
}

/** The template's CloudInstances (by its label) and how many of them are Ready. */
async function owned(name: string) {
  const list = await w.kube.list(CloudInstanceResource, {
    namespace: NS,
    labelSelector: `${LABEL_TEMPLATE}=${name}`,
  });
  return {
    names: list.items.map((o) => o.metadata.name ?? "").sort(),
    ready: list.items.filter(ready).length,
  };
}

const vms = () => w.sims.get("m2s")!.vms().length;

describe("real API server: templates, kubectl scale/wait/explain", { skip: SKIP }, () => {
  before(async () => {
    w = await startRealWorld({ namespace: NS, providers: ["m2s"] });
    w.startOperator();
  });
  after(async () => {
    await w?.close();
  });

  test("a template with replicas owns that many Ready CloudInstances; kubectl scale moves it both ways", async () => {
    await w.kube.create(InstanceTemplateResource, template("web", 2) as never);
    await until(
      () => owned("web"),
      (o) => o.names.length === 2 && o.ready === 2,
      "2 Ready replicas",
      90_000,
    );
    await w.env.kubectl(["-n", NS, "wait", "--for=condition=Ready", "--timeout=60s", "instancetemplate/web"]);

    await w.env.kubectl(["-n", NS, "scale", "instancetemplate/web", "--replicas=3"]);
    await until(
      () => owned("web"),
      (o) => o.names.length === 3 && o.ready === 3,
      "3 Ready replicas",
      90_000,
    );
    const t = await until(
      () => w.kube.get(InstanceTemplateResource, NS, "web"),
      (x) => x.status?.readyReplicas === 3 && x.status.replicas === 3,
      "template status counts 3 Ready",
    );
    assert.equal(t.status?.selector, `${LABEL_TEMPLATE}=web`, "the scale subresource's selector");
    const scale = JSON.parse(
      await w.env.kubectl([
        "-n",
        NS,
        "get",
        "--raw",
        `/apis/compute.instance-operator.dev/v1alpha1/namespaces/${NS}/instancetemplates/web/scale`,
      ]),
    ) as {
      kind: string;
      spec: { replicas: number };
      status: { replicas: number; selector: string };
    };
    assert.equal(scale.kind, "Scale");
    assert.deepEqual(
      [scale.spec.replicas, scale.status.replicas, scale.status.selector],
      [3, 3, `${LABEL_TEMPLATE}=web`],
    );
    const columns = await w.env.kubectl(["-n", NS, "get", "instancetemplate", "web"]);
    assert.match(columns, /READY-REPLICAS/);
    assert.match(columns, /^web\s+m2s\s+business\s+3\s+3\s+True\s/m, columns);

    await w.env.kubectl(["-n", NS, "scale", "instancetemplate/web", "--replicas=1"]);
    await until(
      () => owned("web"),
      (o) => o.names.length === 1 && o.ready === 1,
      "1 replica left",
      90_000,
    );
    await until(vms, (n) => n === 1, "the scaled-down replicas' VMs deleted");
  });

  test("kubectl wait --for=condition=Ready on CloudInstances", async () => {
    await w.instance("m2s", "waited");
    await w.env.kubectl(["-n", NS, "wait", "--for=condition=Ready", "--timeout=90s", "cloudinstance/waited"]);
    assert.ok(ready(await w.get("waited")));
    const out = await w.env.kubectl([
      "-n",
      NS,
      "wait",
      "--for=condition=Ready",
      "--timeout=60s",
      "cloudinstance",
      "--all",
    ]);
    assert.match(out, /cloudinstance.*waited condition met/);
  });

  test("kubectl explain shows the CRDs' field descriptions", async () => {
    const plan = await w.env.kubectl(["explain", "cloudinstance.spec.plan"]);
    assert.match(plan, /KIND:\s+CloudInstance/);
    assert.match(plan, /DESCRIPTION:/);
    const replicas = await w.env.kubectl(["explain", "instancetemplate.spec.replicas"]);
    assert.match(replicas, /the operator owns this many CloudInstances/);
    const spec = await w.env.kubectl(["explain", "cloudinstance.spec"]);
    for (const field of ["plan", "powerState", "deletionPolicy", "provider"])
      assert.match(spec, new RegExp(`\\b${field}\\b`));
  });

  test("a template name longer than a label value (63) still owns valid replicas (the label is shortened with a digest)", async () => {
    // The operator labels each replica with its template's name; a real server refuses a label
    // value over 63 characters while a template's name may have 253, so long names are shortened.
    const long = `t${"x".repeat(69)}`;
    await w.kube.create(InstanceTemplateResource, template(long, 1) as never);
    const t = await until(
      () => w.kube.get(InstanceTemplateResource, NS, long),
      (x) => x.status?.replicas === 1,
      "one replica owned by the long-named template",
      90_000,
    );
    assert.ok((t.status?.selector ?? "").length <= 63 + "compute.instance-operator.dev/template=".length);
    // The selector the scale subresource publishes finds the replica on a real server.
    const selected = await w.kube.list(CloudInstanceResource, {
      namespace: NS,
      labelSelector: t.status?.selector ?? "",
    });
    assert.equal(selected.items.length, 1);
    await w.kube.delete(InstanceTemplateResource, NS, long);
    await until(
      () => w.kube.list(InstanceTemplateResource, { namespace: NS }),
      (l) => l.items.every((x) => x.metadata.name !== long),
      "the long-named template deleted",
      90_000,
    );
  });

  test("deleting the template removes its CloudInstances and their VMs (the operator, not a garbage collector)", async () => {
    await w.kube.delete(InstanceTemplateResource, NS, "web");
    await until(
      () => owned("web"),
      (o) => o.names.length === 0,
      "no replica left",
      90_000,
    );
    await w.kube.delete(CloudInstanceResource, NS, "waited");
    await w.gone("waited");
    await until(vms, (n) => n === 0, "every VM deleted");
    assert.deepEqual(forbiddenLines(w.logs()), []);
  });
});
