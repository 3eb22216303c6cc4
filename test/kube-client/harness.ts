import { startKubeApiServer, type KubeApiServer, type KubeApiServerOptions } from "../kube/server.ts";
import { KubeClient, type KubeRetryPolicy } from "../../src/kube/client.ts";
import { connect, kubeConfigFromString } from "../../src/kube/connection.ts";
import { createLogger } from "../../src/observability/logger.ts";

export const silentLogger = createLogger({
  level: process.env["TEST_LOG_LEVEL"] === "debug" ? "debug" : "silent",
});

/** The in-memory API server plus a client connected to it through its kubeconfig, as in production. */
export async function startApi(
  retry: Partial<KubeRetryPolicy> = { baseDelayMs: 5, maxDelayMs: 50 },
  serverOptions: KubeApiServerOptions = {},
): Promise<{
  server: KubeApiServer;
  client: KubeClient;
  newClient(retry?: Partial<KubeRetryPolicy>): Promise<KubeClient>;
  close(): Promise<void>;
}> {
  const server = await startKubeApiServer(serverOptions);
  const clients: KubeClient[] = [];
  const newClient = async (override?: Partial<KubeRetryPolicy>): Promise<KubeClient> => {
    const c = new KubeClient({
      connection: await connect(kubeConfigFromString(server.kubeconfigYaml())),
      logger: silentLogger,
      retry: { ...retry, ...override },
    });
    clients.push(c);
    return c;
  };
  const client = await newClient();
  return {
    server,
    client,
    newClient,
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await server.close();
    },
  };
}

/** Polls `check` until it returns true (no fixed sleeps in assertions: behaviour, not timing). */
/**
 * Polls `check` until it holds. The deadline is generous on purpose: CI runs two test files
 * at once on two cores next to a real API server, and a deadline is a hang guard, not a
 * performance assertion (those live in the bench).
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for: ${what}`);
}
