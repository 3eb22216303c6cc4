import { BlockList, isIP } from "node:net";
import { Agent, EnvHttpProxyAgent, ProxyAgent, type Dispatcher } from "undici";
import type { TlsMaterial } from "./credentials.ts";

/** How the operator reaches the API server: directly, through the cluster's proxy-url, or the environment's. */
export type ProxyChoice =
  | { kind: "direct" }
  | { kind: "url"; uri: string }
  | {
      kind: "env";
      httpProxy: string | undefined;
      httpsProxy: string | undefined;
      noProxy: string | undefined;
    };

/**
 * client-go's order: the cluster's `proxy-url`, else HTTPS_PROXY/HTTP_PROXY unless NO_PROXY
 * names the server. Go never proxies loopback and reads CIDR ranges in NO_PROXY; undici's
 * EnvHttpProxyAgent matches host names only, so those two are settled here first.
 */
export function chooseProxy(server: URL, proxyUrl: string | undefined, env: NodeJS.ProcessEnv): ProxyChoice {
  if (proxyUrl) return { kind: "url", uri: proxyUrl };
  const httpProxy = env.HTTP_PROXY ?? env.http_proxy;
  const httpsProxy = env.HTTPS_PROXY ?? env.https_proxy;
  const relevant = server.protocol === "https:" ? (httpsProxy ?? httpProxy) : httpProxy;
  if (!relevant) return { kind: "direct" };
  const noProxy = env.NO_PROXY ?? env.no_proxy;
  const host = server.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "localhost" || isLoopback(host) || inCidr(host, noProxy)) return { kind: "direct" };
  return { kind: "env", httpProxy, httpsProxy, noProxy };
}

function isLoopback(host: string): boolean {
  const family = isIP(host);
  if (family === 4) return host.startsWith("127.");
  return family === 6 && (host === "::1" || host === "0:0:0:0:0:0:0:1");
}

function inCidr(host: string, noProxy: string | undefined): boolean {
  const family = isIP(host);
  if (family === 0 || !noProxy) return false;
  const list = new BlockList();
  for (const entry of noProxy.split(",").map((e) => e.trim())) {
    const [net, bits] = entry.split("/");
    if (bits === undefined || net === undefined || isIP(net) === 0) continue;
    list.addSubnet(net, Number(bits), isIP(net) === 6 ? "ipv6" : "ipv4");
  }
  return list.check(host, family === 6 ? "ipv6" : "ipv4");
}

/**
 * A keep-alive pool towards the API server with the cluster's TLS material. `connections`
 * caps the sockets per origin (undefined: no cap, for watches).
 */
export function makePool(proxy: ProxyChoice, tls: TlsMaterial, connections: number | undefined): Dispatcher {
  const common = {
    keepAliveTimeout: 30_000,
    // A watch is quiet for minutes: the server's timeoutSeconds ends it, not an idle timer.
    bodyTimeout: 0,
    headersTimeout: 60_000,
    ...(connections === undefined ? {} : { connections }),
  };
  const connect = { ...tls, timeout: 10_000 };
  switch (proxy.kind) {
    case "direct":
      return new Agent({ ...common, connect });
    case "url":
      return new ProxyAgent({ ...common, uri: proxy.uri, requestTls: connect });
    case "env":
      return new EnvHttpProxyAgent({
        ...common,
        connect,
        requestTls: connect,
        ...(proxy.httpProxy ? { httpProxy: proxy.httpProxy } : {}),
        ...(proxy.httpsProxy ? { httpsProxy: proxy.httpsProxy } : {}),
        ...(proxy.noProxy ? { noProxy: proxy.noProxy } : {}),
      });
  }
}
