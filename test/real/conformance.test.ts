// The Kubernetes API conformance suite (test/kube/conformance.test.ts) against the real
// kube-apiserver: the same assertions that hold for the in-memory server must hold here.
import { after, describe } from "node:test";
import { SKIP, startEnvtest } from "./envtest.ts";

if (SKIP) describe("real API server: Kubernetes API conformance", { skip: SKIP }, () => undefined);
else {
  const env = await startEnvtest();
  // The suite reads its target when it is loaded; its own after() cleans its namespace first.
  process.env.KUBE_CONFORMANCE_KUBECONFIG = env.adminKubeconfig;
  try {
    await import("../kube/conformance.test.ts");
  } finally {
    after(() => env.stop());
  }
}
