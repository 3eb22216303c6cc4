// client-node's KubeConfig is loaded without the package's generated API (every Kubernetes
// model and API class), which the operator never uses and which costs tens of MB resident.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const root = join(import.meta.dirname, "../..");

test("loading KubeConfig resolves no module of client-node's generated API beyond its small rxjs stub", () => {
  const script = `
    import { registerHooks } from "node:module";
    const gen = [];
    registerHooks({ resolve(specifier, context, next) {
      const r = next(specifier, context);
      if (r.url.includes("/@kubernetes/client-node/dist/gen/")) gen.push(r.url.slice(r.url.indexOf("/dist/gen/")));
      return r;
    } });
    const { clientNode } = await import(${JSON.stringify(join(root, "src/kube/client-node.ts"))});
    const { KubeConfig } = await clientNode();
    const kc = new KubeConfig();
    kc.loadFromString("current-context: c\\nclusters: [{name: k, cluster: {server: 'https://x'}}]\\ncontexts: [{name: c, context: {cluster: k}}]");
    let stub = "";
    try { kc.makeApiClient(class {}); } catch (e) { stub = e.message; }
    console.log(JSON.stringify({ gen, server: kc.getCurrentCluster()?.server, stub }));
  `;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: root }).toString();
  const result = JSON.parse(out.trim().split("\n").pop() ?? "{}") as {
    gen: string[];
    server: string;
    stub: string;
  };
  assert.equal(result.server, "https://x", "the library's own parser ran");
  assert.deepEqual(result.gen, ["/dist/gen/rxjsStub.js"]);
  assert.match(result.stub, /makeApiClient is not available/);
});
