/**
 * Issue 17's first bullet end to end: the real operator against the m2s simulator's strict
 * profile (list items without tags), and the provider's create answer lost after the VM exists
 * — the window a SIGKILL between the provider's create and the status write leaves open.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startWorld, CloudInstanceResource, type Operator } from "../../e2e/harness.ts";
import { ready } from "../../e2e/harness.ts";
import type { CloudInstance } from "../../../src/api/index.ts";

type World = Awaited<ReturnType<typeof startWorld>>;
let w: World;
let op: Operator;
const vmsOf = (o: CloudInstance) => w.m2s.vms().filter((v) => v.ownerUID === o.metadata.uid);

before(async () => {
  w = await startWorld({ profile: "strict" });
  op = await w.startOperator();
});
after(async () => {
  await w.close();
});

describe("m2s, strict profile: the create answer is lost after the VM exists", () => {
  test("the operator finds the VM instead of creating a second one", async () => {
    let born: string | undefined;
    w.m2s.faults.onCreated = (id) => {
      w.m2s.faults.onCreated = () => undefined;
      born = id;
      throw new Error("the answer never reaches the operator");
    };
    const o = await w.instance("lost-answer");
    const r = await w.waitFor("lost-answer", (x) => ready(x) && x.status?.instanceID !== undefined, "Ready");
    assert.ok(born);
    assert.equal(r.status?.instanceID, born);
    assert.deepEqual(
      vmsOf(o).map((v) => v.id),
      [born],
    );
    assert.equal(w.m2s.requestCounts.get("POST /v1/instances"), 1, "one create in all");
  });

  test("killed in that window, then deleted while down: the restarted operator deletes the VM", async () => {
    let born: string | undefined;
    w.m2s.faults.onCreated = (id) => {
      w.m2s.faults.onCreated = () => undefined;
      born = id;
      void op.stop();
      throw new Error("the operator is gone");
    };
    const o = await w.instance("killed");
    while (born === undefined) await new Promise((r) => setTimeout(r, 10));
    await op.stop();
    const before = await w.get("killed");
    assert.equal(before.status?.instanceID, undefined, "the id never reached status");
    await w.kube.delete(CloudInstanceResource, "e2e", "killed");
    op = await w.startOperator();
    await w.gone("killed");
    assert.deepEqual(vmsOf(o), [], "no VM left behind");
  });
});
