import type { Dispatcher } from "undici";
import type { AuthSource, HeaderMap } from "../util/transport/transport.ts";
import { KubeCredentials, type TlsMaterial } from "./credentials.ts";
import { resolveKubeConfig, type KubeConfigSource, type LoadedKubeConfig } from "./kubeconfig-loader.ts";
import { chooseProxy, makePool, type ProxyChoice } from "./proxy.ts";

export { KubeConfigError } from "./kubeconfig-errors.ts";
export {
  kubeConfigFromString,
  loadKubeConfig,
  resolveKubeConfig,
  type KubeConfigSource,
} from "./kubeconfig-loader.ts";

/**
 * How to reach and authenticate to the API server. Authentication and TLS material come from
 * @kubernetes/client-node's KubeConfig; requests never go through the library's own
 * transport (with any TLS setting it opens a new connection per call) but through two undici
 * pools of ours: a capped one for ordinary requests, and an uncapped one for watches, which
 * hold a connection for minutes each and must never starve lists, status writes, Events and
 * Lease renewals.
 */
export interface KubeConnection {
  readonly server: URL;
  /** The context's namespace (in a pod: the service account's). */
  readonly namespace: string | undefined;
  /** Where the configuration came from, for messages. */
  readonly source: string;
  /** Ordinary requests: at most `connections` sockets. */
  readonly dispatcher: Dispatcher;
  /** Watches: one socket each, never taken from the ordinary pool. */
  readonly watchDispatcher: Dispatcher;
  /** Fresh auth headers per attempt; forgets cached credentials after a 401. */
  readonly auth: AuthSource;
  headers(): Promise<HeaderMap>;
  invalidate(): void;
  close(): Promise<void>;
  /** Ends every connection at once, requests in flight included. */
  destroy(): Promise<void>;
}

export interface ConnectOptions {
  /** Sockets of the ordinary pool (default 32). */
  connections?: number;
  /** Where HTTPS_PROXY/NO_PROXY are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export async function connect(
  source: KubeConfigSource | LoadedKubeConfig,
  opts: ConnectOptions = {},
): Promise<KubeConnection> {
  const loaded = "kc" in source ? source : await resolveKubeConfig(source);
  const proxy = chooseProxy(loaded.server, loaded.proxyUrl, opts.env ?? process.env);
  const credentials = new KubeCredentials(loaded);
  // The first derivation gives the TLS material the pools start with (and fails early on a
  // credential that cannot work, e.g. a plugin that is not installed).
  const first = await credentials.material();
  const p = new Pools(proxy, first.tls, opts.connections ?? 32);
  credentials.onTls((tls) => {
    p.use(tls);
  });
  return {
    server: loaded.server,
    namespace: loaded.namespace,
    source: loaded.source,
    dispatcher: p.ordinary,
    watchDispatcher: p.watch,
    auth: credentials,
    headers: () => credentials.headers(),
    invalidate: () => {
      credentials.invalidate();
    },
    close: () => p.close(),
    destroy: () => p.destroy(),
  };
}

/**
 * The two pools for the current TLS material. An exec plugin may hand out a new client
 * certificate; new connections must present it, so the pools are rebuilt and the old ones
 * closed once their requests (watches included) have ended.
 */
class Pools {
  readonly ordinary: Dispatcher;
  readonly watch: Dispatcher;
  readonly #proxy: ProxyChoice;
  readonly #connections: number;
  readonly #all: Dispatcher[] = [];
  #key: string;
  #current: { ordinary: Dispatcher; watch: Dispatcher };

  constructor(proxy: ProxyChoice, tls: TlsMaterial, connections: number) {
    this.#proxy = proxy;
    this.#connections = connections;
    this.#key = fingerprint(tls);
    this.#current = this.#build(tls);
    // Stable dispatchers for callers, routing each request to the pool of the moment.
    this.ordinary = this.#current.ordinary.compose(
      (_dispatch) => (o, h) => this.#current.ordinary.dispatch(o, h),
    );
    this.watch = this.#current.watch.compose((_dispatch) => (o, h) => this.#current.watch.dispatch(o, h));
  }

  use(tls: TlsMaterial): void {
    const key = fingerprint(tls);
    if (key === this.#key) return;
    const old = this.#current;
    this.#key = key;
    this.#current = this.#build(tls);
    void Promise.allSettled([old.ordinary.close(), old.watch.close()]);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.#all.map((d) => d.close()));
  }

  /** Ends every connection at once, in-flight requests included (an API server that stopped answering). */
  async destroy(): Promise<void> {
    await Promise.allSettled(this.#all.map((d) => d.destroy()));
  }

  #build(tls: TlsMaterial): { ordinary: Dispatcher; watch: Dispatcher } {
    const built = {
      ordinary: makePool(this.#proxy, tls, this.#connections),
      watch: makePool(this.#proxy, tls, undefined),
    };
    this.#all.push(built.ordinary, built.watch);
    return built;
  }
}

function fingerprint(tls: TlsMaterial): string {
  const s = (v: string | Buffer | undefined): string =>
    v === undefined ? "" : Buffer.from(v).toString("base64");
  return [s(tls.ca), s(tls.cert), s(tls.key), String(tls.rejectUnauthorized), tls.servername ?? ""].join("|");
}
