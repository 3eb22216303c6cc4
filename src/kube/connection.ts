import { delimiter } from "node:path";
import type { RequestOptions } from "node:https";
import { KubeConfig } from "@kubernetes/client-node";
import { Agent, type Dispatcher } from "undici";

/**
 * How to reach and authenticate to the API server. client-node's KubeConfig is used only
 * for what it is good at: loading kubeconfig / in-cluster config and producing credentials
 * (bearer tokens, exec and token-file providers, client certificates, CA).
 */
export interface KubeConnection {
  readonly server: URL;
  /** One keep-alive pool for every request and watch of this process. */
  readonly dispatcher: Dispatcher;
  /** Fresh auth headers per request: token files and exec plugins rotate credentials. */
  headers(): Promise<Record<string, string>>;
  close(): Promise<void>;
}

export class KubeConfigError extends Error {
  override readonly name = "KubeConfigError";
  readonly code = "ERR_KUBE_CONFIG";
}

export function loadKubeConfig(opts: {
  kubeconfig?: string | undefined;
  context?: string | undefined;
}): KubeConfig {
  const kc = new KubeConfig();
  try {
    const paths = (opts.kubeconfig ?? "").split(delimiter).filter((p) => p !== "");
    if (paths.length === 0) {
      // ~/.kube/config, then the in-cluster service account.
      kc.loadFromDefault();
    } else {
      // Like kubectl, several KUBECONFIG files merge, the first one winning.
      kc.loadFromFile(paths[0] ?? "");
      for (const p of paths.slice(1)) {
        const more = new KubeConfig();
        more.loadFromFile(p);
        kc.mergeConfig(more, true);
      }
    }
    if (opts.context) kc.setCurrentContext(opts.context);
  } catch (err) {
    throw new KubeConfigError(
      `cannot load Kubernetes config: ${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
      },
    );
  }
  if (!kc.getCurrentCluster()) throw new KubeConfigError("no current cluster in the Kubernetes config");
  return kc;
}

/** Loads a kubeconfig from YAML text (tests and the demo hand their embedded server's config). */
export function kubeConfigFromString(yaml: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(yaml);
  return kc;
}

export async function connect(config: KubeConfig): Promise<KubeConnection> {
  const cluster = config.getCurrentCluster();
  if (!cluster) throw new KubeConfigError("no current cluster in the Kubernetes config");
  const server = new URL(cluster.server);
  const kc = server.protocol === "http:" ? allowPlainHttp(config, cluster.name) : config;
  const probe: RequestOptions = {};
  await kc.applyToHTTPSOptions(probe);
  const connectOpts: Record<string, unknown> = {};
  if (probe.ca !== undefined) connectOpts["ca"] = probe.ca;
  if (probe.cert !== undefined) connectOpts["cert"] = probe.cert;
  if (probe.key !== undefined) connectOpts["key"] = probe.key;
  if (probe.rejectUnauthorized !== undefined) connectOpts["rejectUnauthorized"] = probe.rejectUnauthorized;
  if (probe.servername !== undefined) connectOpts["servername"] = probe.servername;
  const dispatcher = new Agent({
    connect: connectOpts,
    keepAliveTimeout: 30_000,
    // Watches are long-lived: the body timeout must not cut a quiet watch; the server's
    // timeoutSeconds ends it instead.
    bodyTimeout: 0,
    headersTimeout: 60_000,
    connections: 64,
  });
  return {
    server,
    dispatcher,
    async headers() {
      const opts: RequestOptions = {};
      await kc.applyToHTTPSOptions(opts);
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(opts.headers ?? {})) {
        if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : String(v);
      }
      if (opts.auth) out["authorization"] = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
      return out;
    },
    async close() {
      await dispatcher.close();
    },
  };
}

/**
 * client-node refuses http:// servers unless skipTLSVerify is set, although there is no TLS to
 * verify; kubectl accepts them. Marking the plain-http cluster skipTLSVerify changes nothing
 * on the wire and lets client-node produce the auth headers.
 */
function allowPlainHttp(kc: KubeConfig, clusterName: string): KubeConfig {
  const out = new KubeConfig();
  out.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.name === clusterName ? { ...c, skipTLSVerify: true } : c)),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return out;
}
