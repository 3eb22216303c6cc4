// The only place the real-server tests build a KubeClient: from a kubeconfig file path, as the
// operator itself does, so a change of the client's construction touches this file alone.
import { KubeClient } from "../../src/kube/client.ts";
import { connect, loadKubeConfig } from "../../src/kube/connection.ts";
import { createLogger } from "../../src/observability/logger.ts";

export async function kubeClientFor(kubeconfig: string): Promise<KubeClient> {
  return new KubeClient({
    connection: await connect(loadKubeConfig({ kubeconfig, context: undefined })),
    logger: createLogger({ level: "silent" }),
  });
}
