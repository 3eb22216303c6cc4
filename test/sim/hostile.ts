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

/**
 * A 200 whose JSON body is `bytes` long, written in 64 KiB chunks as fast as the peer reads
 * (backpressure honoured, so the listener itself stays small). `declareLength: false` sends it
 * chunked, so only counting the bytes can stop it. `sent` reports what actually left.
 */
export function hugeAnswer(
  bytes: number,
  opts: { declareLength?: boolean; sent?: (bytes: number) => void } = {},
): HostileBehaviour {
  const chunk = Buffer.alloc(64 * 1024, "a");
  return (_req, _body, res) => {
    res.writeHead(200, {
      "content-type": "application/json",
      ...(opts.declareLength === false ? {} : { "content-length": String(bytes) }),
    });
    let sent = 0;
    res.on("close", () => opts.sent?.(sent));
    const pump = (): void => {
      while (sent < bytes && !res.destroyed) {
        const part = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
        sent += part.length;
        if (!res.write(part)) {
          res.once("drain", pump);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    pump();
  };
}

/**
 * A 200 that sends its headers at once, then `text` one byte every `everyMs`: never idle long
 * enough for an idle timeout, never done within a sane total one.
 */
export function trickle(text: string, everyMs: number): HostileBehaviour {
  return (_req, _body, res) => {
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed || at >= text.length) {
        clearInterval(timer);
        if (!res.destroyed) res.end();
        return;
      }
      res.write(text.slice(at, at + 1));
      at++;
    }, everyMs);
    res.on("close", () => {
      clearInterval(timer);
    });
  };
}
