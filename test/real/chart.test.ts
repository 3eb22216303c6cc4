// The Helm chart on a real kube-apiserver: rendered with helm, applied with
// `kubectl apply --server-side` (the API server validates every object, CRDs included), then the
// operator runs as the chart's ServiceAccount with the chart's own arguments: its RBAC must let
// it do everything a lifecycle needs, so no 403 may appear in its logs.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { CHART_DIR, helm } from "../../scripts/helm.ts";
import { instanceManifest, SIMULATORS, credentialsSecret, SIMULATOR_ENDPOINTS } from "../sim/all.ts";
import type { Simulator } from "../sim/common.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { CloudInstanceResource, EventResource, SecretResource } from "../../src/kube/resources.ts";
import { isNotFound } from "../../src/kube/errors.ts";
import { kubeClientFor } from "./client.ts";
import { ROOT, SKIP, startEnvtest, type Envtest } from "./envtest.ts";
import { spawnGuarded, type Guarded } from "./processes.ts";
import { forbiddenLines, ready, until } from "./world.ts";

const RELEASE = "cio";
const RELEASE_NS = "cio-system";
const APP_NS = "apps";

interface Obj {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: { template?: { spec?: { containers?: { args?: string[] }[] } } };
}

let env: Envtest | undefined;
let kube: KubeClient | undefined;
let sim: Simulator | undefined;
let operator: Guarded | undefined;
let rendered = "";
let objects: Obj[] = [];

const POD = `${RELEASE}-0`;
const LEASE = "cloud-instance-operator-leader";

/** src/main.ts with the chart Deployment's arguments (those `keep` accepts) as the chart's ServiceAccount. */
function startChartOperator(keep: (arg: string) => boolean): Guarded {
  const deployment = objects.find((o) => o.kind === "Deployment");
  const args = deployment?.spec?.template?.spec?.containers?.[0]?.args;
  assert.ok(args, "the Deployment's container has args");
  assert.ok(args.includes("--leader-elect"), "the chart elects a leader");
  // Ports of a pod of its own in a cluster; here beside other tests on one loopback.
  const local = args
    .filter(keep)
    .map((a) =>
      a
        .replace(/^(--metrics-bind-address)=.*$/, "$1=127.0.0.1:0")
        .replace(/^(--health-probe-bind-address)=.*$/, "$1=0"),
    );
  return spawnGuarded(
    "operator",
    process.execPath,
    [
      join(ROOT, "src", "main.ts"),
      `--kubeconfig=${env!.operatorKubeconfig}`,
      ...local,
      "--log-level=debug",
      "--poll-initial=200ms",
      "--poll-max=1s",
      // The simulator listens on loopback, which no chart default allows.
      `--allowed-endpoints=${SIMULATOR_ENDPOINTS}`,
    ],
    { cwd: ROOT, env: { ...process.env, POD_NAME: POD, POD_NAMESPACE: RELEASE_NS } },
  );
}

/** Create -> Running and Ready with one VM, Events recorded -> delete -> no VM, no 403 logged. */
async function lifecycle(name: string): Promise<void> {
  const op = operator!;
  const withLog = (err: unknown): never => {
    throw new Error(`${String(err)}\noperator log:\n${op.output().slice(-6000)}`, { cause: err });
  };
  await kube!.create(
    CloudInstanceResource,
    instanceManifest("m2s", { name, namespace: APP_NS, endpoint: sim!.url }) as never,
  );
  const o = await until(
    () => kube!.get(CloudInstanceResource, APP_NS, name),
    (x) => ready(x) && x.status?.phase === "Running",
    `${name} Running and Ready`,
    90_000,
  ).catch(withLog);
  assert.equal(sim!.vms().filter((v) => v.ownerUID === o.metadata.uid).length, 1);
  const events = await kube!.list(EventResource, { namespace: APP_NS });
  assert.ok(
    events.items.some((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === name),
    "the operator recorded Events",
  );
  await kube!.delete(CloudInstanceResource, APP_NS, name);
  await until(
    () =>
      kube!.get(CloudInstanceResource, APP_NS, name).then(
        () => false,
        (e: unknown) => isNotFound(e),
      ),
    Boolean,
    `${name} deleted`,
  ).catch(withLog);
  await until(
    () => sim!.vms().length,
    (n) => n === 0,
    "the VM deleted",
  );
  assert.ok(op.alive(), `the operator is still running:\n${op.output().slice(-3000)}`);
  assert.deepEqual(forbiddenLines(op.output()), []);
}

describe(
  "real API server: the Helm chart, applied server-side, and the operator as its ServiceAccount",
  { skip: SKIP },
  () => {
    before(async () => {
      rendered = helm(["template", RELEASE, CHART_DIR, "--namespace", RELEASE_NS, "--include-crds"]);
      objects = parseAllDocuments(rendered)
        .map((d) => d.toJS() as Obj | null)
        .filter((o): o is Obj => o !== null);
      const sa = objects.find((o) => o.kind === "ServiceAccount");
      assert.ok(sa, "the chart renders a ServiceAccount");
      env = await startEnvtest({ operator: { namespace: RELEASE_NS, serviceAccount: sa.metadata.name } });
      kube = await kubeClientFor(env.adminKubeconfig);
      sim = await SIMULATORS.m2s.start({ transitionMs: 150 });
    });
    after(async () => {
      await operator?.stop(10_000);
      await kube?.close();
      await sim?.close();
      await env?.stop();
    });

    test("helm template | kubectl apply --server-side creates every object", async () => {
      await env!.kubectl(["create", "namespace", RELEASE_NS]);
      const out = await env!.kubectl(["apply", "--server-side", "--field-manager=helm-test", "-f", "-"], {
        input: rendered,
      });
      for (const o of objects)
        assert.match(
          out,
          new RegExp(`/${o.metadata.name} serverside-applied`),
          `${o.kind} ${o.metadata.name}`,
        );
      // A second apply must not conflict: nothing in the chart fights the API server's defaulting.
      await env!.kubectl(["apply", "--server-side", "--field-manager=helm-test", "-f", "-"], {
        input: rendered,
      });
      const listed = await env!.kubectl([
        "get",
        "-n",
        RELEASE_NS,
        "deployment,serviceaccount,role,rolebinding,service",
        "-o",
        "name",
      ]);
      for (const o of objects.filter((x) => x.metadata.namespace === RELEASE_NS))
        assert.match(listed, new RegExp(`/${o.metadata.name}$`, "m"), `${o.kind} ${o.metadata.name} stored`);
    });

    test("the operator with the chart's ServiceAccount identity and arguments runs a lifecycle without a 403 (leader election off)", async () => {
      await env!.kubectl(["create", "namespace", APP_NS]);
      await kube!.create(
        SecretResource,
        credentialsSecret({ name: "m2s-creds", namespace: APP_NS }, sim!.credentials) as never,
      );
      // Leader election has its own test below; here the chart's other arguments.
      operator = startChartOperator((a) => a !== "--leader-elect");
      await lifecycle("charted");
    });

    test("with the chart's leader election the operator takes the chart's Lease and reconciles", async () => {
      await operator?.stop(10_000);
      operator = startChartOperator(() => true);
      const lease = await until(
        async () =>
          (
            JSON.parse(
              await env!.kubectl(["get", "lease", "-n", RELEASE_NS, "-o", "json", LEASE]).catch(() => "{}"),
            ) as {
              spec?: { holderIdentity?: string };
            }
          ).spec?.holderIdentity,
        (holder) => holder === POD,
        "the operator holds the chart's Lease",
        30_000,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}\noperator log:\n${operator!.output().slice(-3000)}`, {
          cause: err,
        });
      });
      assert.equal(lease, POD);
      // The chart's Role lets the leader list Leases (the check for replicas of another --shards).
      assert.doesNotMatch(operator.output(), /cannot list Leases/);
      await lifecycle("elected");
    });
  },
);
