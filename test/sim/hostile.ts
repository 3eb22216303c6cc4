import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One request as the hostile listener saw it: what an attacker would have collected. */
export interface CapturedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export type HostileBehaviour = (req: IncomingMessage, body: string, res: ServerResponse) => void;

/**
 * A listener that plays a provider gone bad, or an attacker's collector: it records every
 * request (headers and body, so a test can prove no credential arrived) and answers with
 * whatever `behaviour` says — by default a 20,000-character error page.
 */
export async function startHostile(
  opts: { host?: string; behaviour?: HostileBehaviour } = {},
): Promise<{ url: string; requests: CapturedRequest[]; server: Server; close(): Promise<void> }> {
  const requests: CapturedRequest[] = [];
  const behaviour = opts.behaviour ?? hugeError(20_000);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      requests.push({ method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers }, body });
      behaviour(req, body, res);
    });
  });
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${String(port)}`,
    requests,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A 400 whose body is `size` characters of an internal service's error page. */
export function hugeError(size: number): HostileBehaviour {
  return (_req, _body, res) => {
    const text = `{"error":{"code":"bad_request","message":"${"internal-service-detail ".repeat(Math.ceil(size / 24)).slice(0, size)}"}}`;
    res.writeHead(400, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };
}
