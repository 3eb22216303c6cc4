// A CPU limit for one bench process, the way a pod's `resources.limits.cpu` is enforced: a CFS
// quota on a cgroup of its own (cgroup v1 cpu controller, as on the bench machine). With every
// replica given the same quota, the replica count, not how many cores the machine has left,
// decides a scale-out figure: three replicas at 0.3 of a core plus the API server fit in two.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const V1_CPU = "/sys/fs/cgroup/cpu";
const PERIOD_US = 100_000;

export class CgroupUnavailableError extends Error {
  readonly code = "CGROUP_UNAVAILABLE";
  constructor(why: string) {
    super(`bench: --cpu-limit needs a writable cgroup v1 cpu controller at ${V1_CPU} (run as root): ${why}`);
    this.name = "CgroupUnavailableError";
  }
}

export interface CpuLimit {
  /** Moves a process (all its threads) under the limit. */
  add(pid: number): void;
  /** Periods in which the quota ran out, and the time the processes waited for the next one. */
  throttled(): { periods: number; throttledPeriods: number; throttledSeconds: number };
  /** Removes the cgroup; its processes must have exited. */
  remove(): void;
}

export function cpuLimit(name: string, cores: number): CpuLimit {
  if (!(cores > 0)) throw new CgroupUnavailableError(`bad limit ${String(cores)}`);
  if (!existsSync(join(V1_CPU, "cpu.cfs_quota_us")))
    throw new CgroupUnavailableError("no cpu.cfs_quota_us (cgroup v2 only, or not mounted)");
  const dir = join(V1_CPU, `cio-bench-${name}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "cpu.cfs_period_us"), String(PERIOD_US));
    writeFileSync(join(dir, "cpu.cfs_quota_us"), String(Math.round(cores * PERIOD_US)));
  } catch (err) {
    throw new CgroupUnavailableError((err as Error).message);
  }
  return {
    add: (pid) => writeFileSync(join(dir, "cgroup.procs"), String(pid)),
    throttled: () => {
      const stat = new Map(
        readFileSync(join(dir, "cpu.stat"), "utf8")
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
    remove: () => {
      try {
        rmdirSync(dir);
      } catch {
        // a process still inside (a failed stop): the next run reuses the directory
      }
    },
  };
}
