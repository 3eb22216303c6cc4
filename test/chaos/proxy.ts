import { connect, createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export type ProxyMode =
  /** Forward both ways. */
  | "pass"
  /** Accept, never answer: a network partition that does not refuse connections. */
  | "blackhole"
  /**
   * Black-holed as long as it lasts, but nothing is lost: what either side sent is delivered
   * when the mode changes back (TCP riding out a partition), unless that side gave up and
   * closed its connection. A watch stream resumes where it stopped instead of silently
   * missing the events sent meanwhile.
   */
  | "partition"
  /** Forward, but hold every chunk from the server for `delayMs`: an API server answering slowly. */
  | "slow";

/**
 * A TCP proxy in front of the API server for one operator process, so a test can partition
 * that process alone (its requests are accepted and never answered) or slow it down, while
 * the other replicas talk to the same API server normally.
 */
export async function startProxy(target: string): Promise<{
  url: string;
  mode: ProxyMode;
  delayMs: number;
  close(): Promise<void>;
}> {
  const upstream = new URL(target);
  const sockets = new Set<Socket>();
  const state = { mode: "pass" as ProxyMode, delayMs: 0 };
  /** Writes held back by a partition, in order. */
  let held: (() => void)[] = [];
  const server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => undefined);
    const server = connect(Number(upstream.port), upstream.hostname);
    sockets.add(server);
    server.on("close", () => {
      sockets.delete(server);
      client.destroy();
    });
    server.on("error", () => client.destroy());
    client.on("close", () => server.destroy());
    client.on("data", (chunk: Buffer) => {
      if (state.mode === "partition") held.push(() => server.destroyed || server.write(chunk));
      else if (state.mode !== "blackhole") server.write(chunk);
    });
    server.on("data", (chunk: Buffer) => {
      if (state.mode === "blackhole") return;
      if (state.mode === "partition") {
        held.push(() => client.destroyed || client.write(chunk));
        return;
      }
      if (state.mode === "slow") setTimeout(() => client.write(chunk), state.delayMs);
      else client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${upstream.protocol}//127.0.0.1:${String(port)}`,
    get mode() {
      return state.mode;
    },
    set mode(m: ProxyMode) {
      state.mode = m;
      if (m === "partition") return;
      const release = held;
      held = [];
      for (const write of release) write();
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
