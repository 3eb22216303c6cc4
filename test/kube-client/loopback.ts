// Loopback servers for the connection tests: a TLS "API server" that answers like Kubernetes
// and counts its connections, certificates made with openssl (a CA, the server's, a client's),
// and an HTTP CONNECT proxy that resolves made-up host names to loopback.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { connect as netConnect, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";

export interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

let pki: Pki | undefined;

/** One CA, a server certificate for localhost/127.0.0.1/kube.test, a client certificate (CN=exec-user). */
export function testPki(): Pki {
  if (pki) return pki;
  const dir = mkdtempSync(join(tmpdir(), "cio-pki-"));
  const p = (n: string): string => join(dir, n);
  const ssl = (...args: string[]): void => {
    execFileSync("openssl", args, { stdio: "ignore" });
  };
  ssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=test-ca",
    "-keyout",
    p("ca.key"),
    "-out",
    p("ca.pem"),
  );
  writeFileSync(p("san.ext"), "subjectAltName=DNS:localhost,DNS:kube.test,IP:127.0.0.1\n");
  for (const [name, subject, ext] of [
    ["server", "/CN=localhost", ["-extfile", p("san.ext")]],
    ["client", "/O=system:masters/CN=exec-user", []],
  ] as const) {
    ssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      subject,
      "-keyout",
      p(`${name}.key`),
      "-out",
      p(`${name}.csr`),
    );
    ssl(
      "x509",
      "-req",
      "-in",
      p(`${name}.csr`),
      "-CA",
      p("ca.pem"),
      "-CAkey",
      p("ca.key"),
      "-CAcreateserial",
      "-days",
      "1",
      "-out",
      p(`${name}.pem`),
      ...ext,
    );
  }
  const read = (n: string): string => readFileSync(p(n), "utf8");
  pki = {
    dir,
    ca: read("ca.pem"),
    serverCert: read("server.pem"),
    serverKey: read("server.key"),
    clientCert: read("client.pem"),
    clientKey: read("client.key"),
  };
  return pki;
}

export const b64 = (s: string): string => Buffer.from(s).toString("base64");

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  /** The client certificate's subject CN, when one was presented. */
  clientCN: string | undefined;
}

export interface LoopbackApi {
  url: string;
  port: number;
  seen: SeenRequest[];
  /** Sockets currently open / ever opened. */
  openConnections(): number;
  totalConnections(): number;
  /** Answers the next requests with this status while it returns a number. */
  respond: (req: IncomingMessage) => number;
  close(): Promise<void>;
}

/**
 * A TLS server answering every GET with a Secret named after the path's last segment, and
 * `?watch=true` with a stream that stays open. Optionally requires a client certificate.
 */
export async function startLoopbackApi(opts: { requireClientCert?: boolean } = {}): Promise<LoopbackApi> {
  const { ca, serverCert, serverKey } = testPki();
  const sockets = new Set<Socket>();
  let total = 0;
  const api: LoopbackApi = {
    url: "",
    port: 0,
    seen: [],
    openConnections: () => sockets.size,
    totalConnections: () => total,
    respond: () => 200,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
  const server = createHttpsServer(
    {
      cert: serverCert,
      key: serverKey,
      ca,
      // Asked for always (reported as clientCN), required only when told.
      requestCert: true,
      rejectUnauthorized: opts.requireClientCert === true,
    },
    (req, res) => {
      const peer = (req.socket as unknown as Pick<TLSSocket, "getPeerCertificate">).getPeerCertificate();
      api.seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        clientCN: typeof peer.subject?.CN === "string" ? peer.subject.CN : undefined,
      });
      const status = api.respond(req);
      if (req.url?.includes("watch=true") && status === 200) {
        res.writeHead(200, { "content-type": "application/json" });
        res.write("");
        return;
      }
      const name = (req.url ?? "").split("?")[0]?.split("/").pop() ?? "";
      const body =
        status === 200
          ? { apiVersion: "v1", kind: "Secret", metadata: { name, namespace: "default" } }
          : {
              kind: "Status",
              apiVersion: "v1",
              status: "Failure",
              code: status,
              reason: status === 401 ? "Unauthorized" : "Error",
            };
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    },
  );
  server.keepAliveTimeout = 60_000;
  server.on("secureConnection", (s: Socket) => {
    total++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  api.port = (server.address() as AddressInfo).port;
  api.url = `https://127.0.0.1:${String(api.port)}`;
  return api;
}

export interface ConnectProxy {
  url: string;
  /** The CONNECT targets asked for, e.g. "kube.test:6443". */
  targets: string[];
  close(): Promise<void>;
}

/** An HTTP CONNECT proxy that resolves every host name to 127.0.0.1 (so `kube.test` works only through it). */
export async function startConnectProxy(): Promise<ConnectProxy> {
  const targets: string[] = [];
  const tunnels = new Set<Socket>();
  const server: Server = createHttpServer((_req, res) => {
    res.writeHead(405);
    res.end();
  });
  server.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    const target = req.url ?? "";
    targets.push(target);
    const port = Number(target.slice(target.lastIndexOf(":") + 1));
    const upstream = netConnect(port, "127.0.0.1", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const s of [client, upstream]) {
      tunnels.add(s);
      s.on("close", () => tunnels.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`,
    targets,
    close: () =>
      new Promise((resolve) => {
        for (const s of tunnels) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** A kubeconfig for one cluster and one user, the user given as YAML flow mapping text. */
export function kubeconfig(opts: {
  server: string;
  user?: string;
  cluster?: string;
  contextUser?: string;
}): string {
  const { ca } = testPki();
  return [
    "apiVersion: v1",
    "kind: Config",
    "current-context: c",
    `clusters: [{name: k, cluster: {server: "${opts.server}", certificate-authority-data: ${b64(ca)}${opts.cluster ? `, ${opts.cluster}` : ""}}}]`,
    `contexts: [{name: c, context: {cluster: k, user: ${opts.contextUser ?? "u"}}}]`,
    `users: [{name: u, user: ${opts.user ?? "{}"}}]`,
    "",
  ].join("\n");
}
