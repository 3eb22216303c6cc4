/**
 * Child processes of the real-server tests (etcd, kube-apiserver, the operator) that never
 * outlive the test process: each runs under `setpriv --pdeathsig KILL`, so the kernel kills it
 * when the test process dies for any reason (a test-runner timeout, SIGKILL), and in a process
 * group of its own, so stop() reaches everything it started.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";

export interface Guarded {
  readonly name: string;
  readonly pid: number;
  /** Resolves with the exit code, or the signal's name when killed by one. */
  readonly exited: Promise<number | string>;
  /** Everything the process wrote, newest last (bounded to the last ~2 MB). */
  output(): string;
  /** The process is still running. */
  alive(): boolean;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<number | string>;
}

const KEEP_BYTES = 2 * 1024 * 1024;

export function spawnGuarded(
  name: string,
  command: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; logFile?: string; cwd?: string } = {},
): Guarded {
  const child: ChildProcess = spawn("setpriv", ["--pdeathsig", "KILL", "--", command, ...args], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: opts.env ?? process.env,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const pid = child.pid;
  let kept: string[] = [];
  let keptBytes = 0;
  const file: WriteStream | undefined = opts.logFile ? createWriteStream(opts.logFile) : undefined;
  const collect = (b: Buffer): void => {
    file?.write(b);
    const s = b.toString();
    kept.push(s);
    keptBytes += s.length;
    if (keptBytes > 2 * KEEP_BYTES) {
      const joined = kept.join("").slice(-KEEP_BYTES);
      kept = [joined];
      keptBytes = joined.length;
    }
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      running = false;
      file?.end();
      resolve(code ?? signal ?? "unknown");
    });
  });
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch {
      // the group is gone already
    }
  };
  return {
    name,
    pid,
    exited,
    output: () => kept.join(""),
    alive: () => running,
    kill: signalGroup,
    async stop(graceMs = 10_000) {
      if (!running) return exited;
      signalGroup("SIGTERM");
      const timer = setTimeout(() => signalGroup("SIGKILL"), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
        // Anything the process left in its group goes too.
        signalGroup("SIGKILL");
      }
    },
  };
}
