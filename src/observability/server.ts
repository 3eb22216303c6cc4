import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { MetricsAuthorizer } from "./metrics-auth.ts";

export type Probe = () => { ok: boolean; detail: string };

export interface ProbeServerOptions {
  /** "host:port", ":port" (all interfaces) or "0" (disabled). */
  address: string;
  /** Serve /metrics from this registry. */
  registry?: Registry | undefined;
  /** Serve /healthz and /readyz with these checks. */
  probes?: { healthz: Probe; readyz: Probe } | undefined;
  /** Serve HTTPS with this certificate (PEM) instead of plain HTTP. */
  tls?: { cert: string; key: string } | undefined;
  /** Who may read /metrics (TokenReview + SubjectAccessReview); unset: anyone who can connect. */
  authorizer?: MetricsAuthorizer | undefined;
}

export interface RunningServer {
  /** The bound port (useful when the address asked for port 0). */
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export class BindAddressError extends Error {
  override readonly name = "BindAddressError";
  readonly code = "ERR_BIND_ADDRESS";
}

export function parseBindAddress(address: string): { host: string | undefined; port: number } | undefined {
  if (address === "0") return undefined;
  const i = address.lastIndexOf(":");
  if (i < 0) throw new BindAddressError(`invalid bind address "${address}"`);
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  const port = Number(address.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new BindAddressError(`invalid port in "${address}"`);
  return { host: host === "" ? undefined : host, port };
}

/**
 * The operator's HTTP endpoints: /metrics (Prometheus text), /healthz (process alive) and
 * /readyz (caches synced). controller-runtime serves them on two addresses; when both
 * addresses are equal one server carries all three.
 */
export async function startProbeServer(opts: ProbeServerOptions): Promise<RunningServer | undefined> {
  const bind = parseBindAddress(opts.address);
  if (!bind) return undefined;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(opts, req, res).catch(() => {
      // The cause (an API server error, a registry bug) goes to no anonymous caller.
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal error");
    });
  };
  const server: Server = opts.tls ? createTlsServer({ ...opts.tls }, onRequest) : createServer(onRequest);
  // Probes and scrapes are short: do not keep idle sockets that would delay shutdown.
  server.keepAliveTimeout = 1000;
  await listen(server, bind.port, bind.host);
  const port = (server.address() as AddressInfo).port;
  const host =
    bind.host === undefined || bind.host === "0.0.0.0" || bind.host === "::" ? "127.0.0.1" : bind.host;
  return {
    port,
    url: `${opts.tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

async function handle(opts: ProbeServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  if (path === "/metrics" && opts.registry) {
    if (opts.authorizer) {
      const access = await opts.authorizer
        .check(req.headers.authorization, path)
        .catch(() => "error" as const);
      if (access !== "allowed") {
        const status = { unauthenticated: 401, forbidden: 403, error: 503 }[access];
        res.writeHead(status, { "content-type": "text/plain" }).end(
          {
            unauthenticated: "Unauthorized: a bearer token is needed",
            forbidden: "Forbidden: get on /metrics is not allowed for this user",
            error: "authorization check failed, try again",
          }[access],
        );
        return;
      }
    }
    const body = await opts.registry.metrics();
    res.writeHead(200, { "content-type": opts.registry.contentType }).end(body);
    return;
  }
  const probe =
    path === "/healthz" ? opts.probes?.healthz : path === "/readyz" ? opts.probes?.readyz : undefined;
  if (probe) {
    const { ok, detail } = probe();
    res.writeHead(ok ? 200 : 503, { "content-type": "text/plain; charset=utf-8" }).end(ok ? "ok" : detail);
    return;
  }
  res.writeHead(404, { "content-type": "text/plain" }).end("not found");
}
