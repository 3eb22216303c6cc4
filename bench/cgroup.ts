// CPU placement for bench processes, through cgroup v1 (the bench machine's) as Kubernetes
// does it for pods: a CPU limit is a CFS quota on the cpu controller (`resources.limits.cpu`),
// a core of one's own is a cpuset (the static CPU manager policy). With every replica given
// the same quota, the replica count, not how many cores the machine has left, decides a
// scale-out figure; with the operator pinned to one core and the API server to the other, the
// two stop taking turns on the same cores.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const V1 = "/sys/fs/cgroup";
const PERIOD_US = 100_000;

export class CgroupUnavailableError extends Error {
  readonly code = "CGROUP_UNAVAILABLE";
  constructor(controller: string, why: string) {
    super(
      `bench: needs a writable cgroup v1 ${controller} controller at ${join(V1, controller)} (run as root): ${why}`,
    );
    this.name = "CgroupUnavailableError";
  }
}

export interface Cgroup {
  /** Moves a process (all its threads) into the group. */
  add: (pid: number) => void;
  /** Removes the group; its processes must have left or exited. */
  remove: () => void;
}

export interface CpuLimit extends Cgroup {
  /** Periods in which the quota ran out, and the time the processes waited for the next one. */
  throttled: () => { periods: number; throttledPeriods: number; throttledSeconds: number };
}

/** A group `cio-bench-<name>` of `controller`, with `settings` (file -> value) written in order. */
function group(controller: string, name: string, settings: [string, string][]): Cgroup & { dir: string } {
  const probe = settings[0]?.[0] ?? "cgroup.procs";
  if (!existsSync(join(V1, controller, probe)))
    throw new CgroupUnavailableError(controller, `no ${probe} (cgroup v2 only, or not mounted)`);
  const dir = join(V1, controller, `cio-bench-${name}`);
  try {
    mkdirSync(dir, { recursive: true });
    for (const [file, value] of settings) writeFileSync(join(dir, file), value);
  } catch (err) {
    throw new CgroupUnavailableError(controller, (err as Error).message);
  }
  return {
    dir,
    add: (pid) => writeFileSync(join(dir, "cgroup.procs"), String(pid)),
    remove: () => {
      try {
        rmdirSync(dir);
      } catch {
        // a process still inside (a failed stop): the next run reuses the directory
      }
    },
  };
}

/** At most `cores` of CPU time per 100 ms for the group's processes together. */
export function cpuLimit(name: string, cores: number): CpuLimit {
  if (!(cores > 0)) throw new CgroupUnavailableError("cpu", `bad limit ${String(cores)}`);
  const g = group("cpu", name, [
    ["cpu.cfs_period_us", String(PERIOD_US)],
    ["cpu.cfs_quota_us", String(Math.round(cores * PERIOD_US))],
  ]);
  return {
    add: g.add,
    remove: g.remove,
    throttled: () => {
      const stat = new Map(
        readFileSync(join(g.dir, "cpu.stat"), "utf8")
          .trim()
          .split("\n")
          .map((l) => l.split(" ") as [string, string]),
      );
      return {
        periods: Number(stat.get("nr_periods") ?? 0),
        throttledPeriods: Number(stat.get("nr_throttled") ?? 0),
        throttledSeconds: Number(stat.get("throttled_time") ?? 0) / 1e9,
      };
    },
  };
}

/** Only the CPUs `cpus` ("1", "0-1") for the group's processes. */
export function cpuSet(name: string, cpus: string): Cgroup {
  const mems = readFileSync(join(V1, "cpuset", "cpuset.mems"), "utf8").trim();
  const g = group("cpuset", name, [
    ["cpuset.cpus", cpus],
    ["cpuset.mems", mems],
  ]);
  return {
    add: g.add,
    // The bench process itself is moved back to the root before its group goes.
    remove: () => {
      writeFileSync(join(V1, "cpuset", "cgroup.procs"), String(process.pid));
      g.remove();
    },
  };
}
