// A pass-through HTTP proxy in front of a provider simulator that calls `onCreated` when a
// request made the simulator hold one more VM, before the answer goes back: the kill test's
// SIGKILL then lands exactly between the provider's create and the operator's status write.
import { createServer, request, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

const readAll = async (stream: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

export async function startCreateProxy(
  target: string,
  vmCount: () => number,
  onCreated: () => void,
): Promise<{ url: string; close(): Promise<void> }> {
  const to = new URL(target);
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readAll(req);
      const before = vmCount();
      // Headers go unchanged (Host included): some providers sign them.
      const upstream = request({
        host: to.hostname,
        port: to.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      });
      upstream.end(body);
      const answer = await new Promise<IncomingMessage>((resolve, reject) => {
        upstream.once("response", resolve);
        upstream.once("error", reject);
      });
      const payload = await readAll(answer);
      if (vmCount() > before) onCreated();
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      res.end(payload);
    })().catch(() => {
      res.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  // The sim's URL may carry a path (mos: a trailing slash); keep it.
  const url = `http://127.0.0.1:${port}${to.pathname === "/" && !target.endsWith("/") ? "" : to.pathname}`;
  return {
    url,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
