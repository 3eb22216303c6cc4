import { test } from "node:test";
import assert from "node:assert/strict";
import { apiUrl, type Query } from "../../src/kube/request.ts";

/** What apiUrl gave when every call went through the URL parser: the yardstick of the string join. */
function parsed(server: URL, path: string, query: Query | undefined): { origin: string; path: string } {
  const url = new URL(server.pathname.replace(/\/$/, "") + path, server);
  for (const [k, v] of Object.entries(query ?? {}))
    if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
  return { origin: url.origin, path: url.pathname + url.search };
}

const SERVERS = [
  "https://10.0.0.1:6443",
  "https://kube.example:443/",
  "http://127.0.0.1:8001/api-prefix/",
  "https://[fd00::1]:6443/proxy/k8s",
];

const PATHS = [
  "/api/v1/namespaces/default/secrets/creds",
  "/apis/compute.instance-operator.dev/v1alpha1/namespaces/team-a/cloudinstances/vm-1.web",
  `/api/v1/namespaces/${encodeURIComponent("odd ns")}/secrets/${encodeURIComponent("a/b?c#d%e")}`,
  "/apis/coordination.k8s.io/v1/namespaces/ns/leases/cio-shard-3",
  // Not what the client builds from names, but apiUrl must still match the parser on them.
  "/api/v1/namespaces/ns/secrets/..",
  "/api/v1/namespaces/ns/secrets/.",
  "/api/v1/namespaces/ns/secrets/%2e%2E",
  "/api/v1/namespaces/ns/secrets/a b",
  "/api/v1/namespaces/ns/secrets/a\\b",
  "/api/v1/namespaces/ns/secrets/x?y=1",
  "/api/v1/namespaces/ns/secrets/ü",
  "/api/v1/../v1/namespaces",
];

const QUERIES: (Query | undefined)[] = [
  undefined,
  {},
  { labelSelector: "a=b,c in (d, e)", limit: 500, continue: undefined, resourceVersion: "" },
  { watch: true, allowWatchBookmarks: true, timeoutSeconds: 317, resourceVersion: "12&3" },
];

test("apiUrl joins plain paths as the URL parser would, and leaves the others to it", () => {
  for (const s of SERVERS)
    for (const p of PATHS)
      for (const q of QUERIES) {
        const server = new URL(s);
        assert.deepEqual(apiUrl(server, p, q), parsed(server, p, q), `${s} ${p} ${JSON.stringify(q)}`);
      }
});
