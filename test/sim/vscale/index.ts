import type { IncomingMessage, ServerResponse } from "node:http";
import {
  applyConnectionFault,
  countRequest,
  FaultInjector,
  listen,
  type FaultKnobs,
  type SimProfile,
  type Simulator,
  type SimVm,
} from "../common.ts";
import { handleExtras } from "./extras.ts";
import { handleScalets } from "./scalets.ts";
import { VscaleAccount, type Scalet, type SshKey } from "./state.ts";

export { VSCALE_DOCUMENTED_KEYS, VSCALE_IMAGES, VSCALE_LOCATIONS, VSCALE_RPLANS } from "./state.ts";

/**
 * Vscale simulator, after ../shared/providers/vscale.txt (a Russian how-to of the REST API).
 *
 * strict — only what the document shows; where it is silent, the choice made:
 * - Paths: `POST /scalets`, `DELETE /scalets/:ctid`, `PATCH /scalets/:ctid/{restart,stop,start}`
 *   (body `{"id"}`), `POST /scalets/:ctid/upgrade {rplan}`, `GET /tasks`. Also `GET /scalets`
 *   and `GET /scalets/:ctid`: the document shows no read, but it says the API works through
 *   standard HTTP requests on these resources and answers the object model; without a read
 *   nothing it describes (statuses that change later) could be seen (choice). Both answer the
 *   document's scalet model, exactly the fields of its create answer, and nothing else.
 * - Anything else is 404 `Not found` (so `/scalets/tags`, `/sshkeys`, `/rplans`, `/images`,
 *   `/locations`, `/scalets/:ctid/rebuild` are 404); a known path with another method is 405.
 * - Errors: the status code and the `Vscale-Error-Message` header, with an EMPTY body (the
 *   document: "её код и краткое описание … в заголовке Vscale-Error-Message"). The codes are
 *   choices: 400 bad input, 401 unknown token, 403 a read-only token on anything but GET (the
 *   document: read-only tokens may only GET), 404 unknown scalet or path, 409 an action while
 *   the scalet is locked or one of its tasks runs, 429 the rate-limit knob, 503 injected faults.
 * - Catalogue: rplans small < medium < large < huge < monster (the document, ascending), the
 *   three images it names, the one location `spb0` (its example). Every image on every rplan.
 * - SSH keys: the account holds ids 92 and 72 (the document's examples, named "key"); another
 *   id in `keys` is 400. Keys cannot be registered (no `/sshkeys`).
 * - Create: `status: defined`, `locked: true`, `active: false` (the document's answer). When
 *   its task ends: `started` (do_start) or `stopped`, with `active` true or false — the
 *   document names no status for a running or stopped scalet; these are the values public
 *   clients show, and `active` follows the power state (its create answer has `active: false`,
 *   its running upgraded scalet `active: true`). Stop, start, restart: locked while their task
 *   runs, then `stopped`/`started`.
 * - Upgrade: the document's answer — `status: updated`, `locked: false`, the OLD rplan. A
 *   `scalet_upgrade` task runs; when it ends the rplan is the new one and the status stays
 *   `updated` (the document never shows it change back). The same or a smaller rplan is 400
 *   (the document: no downgrade).
 * - Tasks: `GET /tasks` lists tasks with the document's fields; a task stays listed until a
 *   minute after it ends (the document's `done`/`d_end` fields say ended tasks can be listed;
 *   how long is a choice). No `Vscale-Task-Id` header.
 * - Delete: answers the scalet (the document) with `deleted` set and locked; it answers 404
 *   once its task ends. Every long operation takes `transitionMs`; one that fails (the test
 *   hook failNextTask; the document's task has an `error` field) changes nothing, and a failed
 *   delete leaves the scalet as it was.
 *
 * default adds — what the real Vscale API does beyond the document, after its API reference
 * and the public clients (selectel-vds/go-vscale, the ansible vscale modules):
 * - a JSON body `{"error", "field"}` on 400 answers (go-vscale decodes it);
 * - a `Vscale-Task-Id` header on long operations (go-vscale reads it);
 * - `GET /rplans`, `/images`, `/locations` (API reference), a second location `msk0`, and
 *   CentOS not offered on `small` (a choice, so a cross-field refusal exists to test);
 * - `GET/POST /sshkeys`, `DELETE /sshkeys/:id` (API reference);
 * - the tags API `/scalets/tags` (`{id, name, scalets: [ctid]}`; public clients);
 * - `PATCH /scalets/:ctid/rebuild`, reinstalling the scalet's own image (API reference);
 * - status `billing` (blocked for non-payment, seen in real answers; set with `mutate`):
 *   starting such a scalet is 402.
 */
export interface VscaleSimulator extends Simulator {
  /** A token that may only GET. */
  readonly readOnlyToken: string;
  /** Change a scalet behind the operator's back (drift, billing block, a stuck lock). */
  mutate(ctid: string, change: Partial<Pick<Scalet, "status" | "rplan" | "locked" | "active">>): void;
  /** Make the next long operation on this scalet end with a failed task. */
  failNextTask(ctid: string): void;
  /** The registered SSH keys. */
  sshKeys(): SshKey[];
}

/** The ownership mark the driver writes into the scalet name, before the UID. */
export const VSCALE_OWNER_SEPARATOR = "--cio-";

/** The owner UID in a scalet name: `…--cio-<uid>` or `…--cio-<uid>--<cluster>`. */
export function vscaleOwnerOf(name: string): string | undefined {
  const at = name.lastIndexOf(VSCALE_OWNER_SEPARATOR);
  return at < 0 ? undefined : name.slice(at + VSCALE_OWNER_SEPARATOR.length).split("--")[0];
}

export async function startVscaleSimulator(
  opts: { faults?: Partial<FaultKnobs>; profile?: SimProfile; token?: string } = {},
): Promise<VscaleSimulator> {
  const token = opts.token ?? "vscale-sim-token-5c22a088f3b37c93";
  const readOnlyToken = "vscale-sim-readonly-0e74803";
  const profile = opts.profile ?? "default";
  const injector = new FaultInjector(opts.faults);
  const acc = new VscaleAccount(profile, injector);
  const counts = new Map<string, number>();

  async function handle(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    await Promise.resolve();
    const url = new URL(req.url ?? "/", "http://sim");
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "");
    const operation = `${method} ${path.replace(/\/\d+(?=\/|$)/g, "/:id")}`;
    countRequest(counts, operation);
    const given = req.headers["x-token"];
    const decision = injector.decide(typeof given === "string" ? given : "", operation);
    if (applyConnectionFault(decision, res)) return;
    if (decision.kind === "rateLimited") {
      res.setHeader("Retry-After", String(decision.retryAfterSeconds ?? 1));
      acc.fail(res, 429, "Too many requests");
      return;
    }
    if (decision.kind === "error") {
      acc.fail(res, 503, "Service temporarily unavailable");
      return;
    }
    if (given !== token && given !== readOnlyToken) {
      acc.fail(res, 401, "Invalid token");
      return;
    }
    if (given === readOnlyToken && method !== "GET") {
      acc.fail(res, 403, "Forbidden: read-only token may only use GET requests");
      return;
    }
    let json: Record<string, unknown> = {};
    if (body.trim() !== "") {
      try {
        const parsed = JSON.parse(body) as unknown;
        if (typeof parsed === "object" && parsed !== null) json = parsed as Record<string, unknown>;
      } catch {
        acc.fail(res, 400, "Invalid JSON");
        return;
      }
    }
    const [prefix, ...parts] = path.split("/").filter(Boolean);
    const ask = { method, parts, json, res };
    if (prefix === "v1" && handleScalets(acc, ask)) return;
    if (prefix === "v1" && !acc.strict && handleExtras(acc, ask)) return;
    acc.fail(res, 404, "Not found");
  }

  const server = await listen(handle, injector.knobs);
  return {
    provider: "vscale",
    profile,
    url: `${server.url}/v1`,
    credentials: { token },
    readOnlyToken,
    faults: injector.knobs,
    requestCounts: counts,
    vms(): SimVm[] {
      return [...acc.scalets.values()].map((s) => {
        return {
          id: String(s.ctid),
          ownerUID: vscaleOwnerOf(s.name),
          status: s.deleted === null ? s.status : "deleted",
          plan: s.rplan,
          image: s.made_from,
          region: s.location,
        };
      });
    },
    mutate(ctid, change) {
      const s = acc.scalets.get(Number(ctid));
      if (!s) return;
      Object.assign(s, change);
      if (change.active === undefined && (change.status === "started" || change.status === "stopped"))
        s.active = change.status === "started";
    },
    failNextTask(ctid) {
      acc.failTaskFor.add(Number(ctid));
    },
    sshKeys: () => [...acc.keys.values()],
    async close() {
      acc.close();
      await server.close();
    },
  };
}
