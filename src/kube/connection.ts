import { Agent, type Dispatcher } from "undici";
import { Credentials, type KubeConfig } from "./kubeconfig.ts";

export { KubeConfigError, kubeConfigFromString, loadKubeConfig, type KubeConfig } from "./kubeconfig.ts";

/**
 * How to reach and authenticate to the API server: one undici pool with the cluster's TLS
 * settings, and fresh auth headers per request (token files and exec plugins rotate).
 */
export interface KubeConnection {
  readonly server: URL;
  /** One keep-alive pool for every request and watch of this process. */
  readonly dispatcher: Dispatcher;
  /** Fresh auth headers per request: token files and exec plugins rotate credentials. */
  headers(): Promise<Record<string, string>>;
  /** Forgets cached credentials (after a 401), so the next request fetches fresh ones. */
  invalidate?(): void;
  close(): Promise<void>;
}

export function connect(config: KubeConfig): Promise<KubeConnection> {
  const connectOpts: Record<string, unknown> = {};
  if (config.ca !== undefined) connectOpts["ca"] = config.ca;
  if (config.cert !== undefined) connectOpts["cert"] = config.cert;
  if (config.key !== undefined) connectOpts["key"] = config.key;
  if (config.skipTLSVerify) connectOpts["rejectUnauthorized"] = false;
  if (config.servername !== undefined) connectOpts["servername"] = config.servername;
  const dispatcher = new Agent({
    connect: connectOpts,
    keepAliveTimeout: 30_000,
    // Watches are long-lived: the body timeout must not cut a quiet watch; the server's
    // timeoutSeconds ends it instead.
    bodyTimeout: 0,
    headersTimeout: 60_000,
    connections: 64,
  });
  const credentials = new Credentials(config.auth);
  return Promise.resolve({
    server: config.server,
    dispatcher,
    async headers() {
      const authorization = await credentials.authorization();
      return authorization === undefined ? {} : { authorization };
    },
    invalidate() {
      credentials.invalidate();
    },
    async close() {
      await dispatcher.close();
    },
  });
}
