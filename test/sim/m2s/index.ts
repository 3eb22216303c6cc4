/**
 * m2s simulator, after ../shared/providers/m2s.txt.
 *
 * strict (only what the document shows; a choice wherever it is silent):
 * - paths: `GET|POST /v1/instances`, `GET|PATCH|DELETE /v1/instances/:id`,
 *   `POST /v1/instances/:id/{start,stop,poweroff,reboot,rebuild}`; anything else (path or
 *   method) is 404, as for an unknown instance. Auth: `Authorization: Bearer <key>`, else 401.
 * - list items carry exactly `id, name, status, plan, region, ip_address, created_at,
 *   updated_at` (no tags, no image); `pagination {page, limit, total, total_pages}`; `limit`
 *   defaults to 20 and is capped at 100 (a choice); `status` and `region` filter.
 * - single reads carry exactly the document's fields (`id … tags, created_at`; no
 *   `updated_at`), `metrics` only with `?include=metrics`; `memory`/`vcpu` follow the plan table
 *   and `disk_size` doubles per plan from the example's 50 for business (a choice).
 * - the create answer is 201 with the document's `data {id, name, status: provisioning, plan,
 *   region, image, created_at}` and `message`; `ip_address` is null until the VM runs (a choice).
 * - no error envelope is documented: errors are `{"message": "…"}` in French, the one key the
 *   document's answers use beside `data`. 401 bad key, 404 unknown instance/path, 409 action in
 *   the wrong state, 422 bad field, 429 + `Retry-After: 1` rate limit, 503 injected faults.
 * - PATCH (plan, tags, backup_enabled, monitoring_enabled, reboot) answers 200 `{message}`,
 *   actions 202 `{message}`, DELETE 204 with no body: the document shows no answer for them.
 * - statuses: the documented `provisioning` -> `running` at create (transitionMs). The rest is
 *   chosen in the same words: stop `stopping` -> `stopped`; start `starting` -> `running`;
 *   poweroff `stopped` at once; reboot `rebooting` -> `running`; a plan change on a running VM
 *   reboots it (the document says so) `rebooting` -> `running`, unless `"reboot": false`
 *   (the plan is shown at once, no reboot); rebuild `provisioning` (a reinstall) -> the status
 *   it had; DELETE removes the VM at once (nothing async is documented for it): 404 afterwards.
 *   An action in a state it cannot start from is 409; a repeated DELETE of a gone VM is 404.
 * - plans: the document's four; images and regions: the examples' plus two.
 *
 * default adds (what the driver was first written against and what public REST APIs of this
 * kind do; the driver may use it but must not need it):
 * - list items also carry `tags` and `image` (recorded by the simulator's first author as the
 *   real API's full objects in lists; unverified against a live account);
 * - single reads also carry `updated_at` and `private_network`, and the create answer is the
 *   whole single read (the VM as the API stores it);
 * - errors are `{"error": {"code", "message"}}` (the first envelope the shared README names);
 * - PATCH and actions answer the VM in `data`; DELETE answers 202 `{data, message}` and shows
 *   `deleting` for transitionMs before the VM is gone (a repeated DELETE does not restart it);
 * - transitional statuses `resizing` (plan change with reboot) and `rebuilding` (rebuild), the
 *   usual ones the shared README expects; a wrong method on a known path is 405.
 *
 * Test knobs on either profile (off by default; no real API is known to behave so):
 * - `paging = "endless"`: the list never ends. Every answer claims one more page
 *   (`total_pages: page + 1`), and each page past the real VMs brings one phantom item with a
 *   fresh id (`i-endless<page>`, name `endless-<page>`, never readable: 404).
 * - `paging = "stuck"`: the list ignores `page`: every answer is page 1 (items and `page: 1`),
 *   and `total_pages` is at least 2.
 * - `arrived()` counts requests as they arrive, before `latencyMs` (which `requestCounts`
 *   follows): a request in flight when its caller gave up has arrived, one never sent has not.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  applyConnectionFault,
  countRequest,
  FaultInjector,
  listen,
  type FaultKnobs,
  type SimProfile,
  type Simulator,
} from "../common.ts";
import { M2sCloud, type ListPaging } from "./cloud.ts";
import { M2S_IMAGES, M2S_PLANS, M2S_REGIONS, type VmRecord } from "./views.ts";

export { M2S_IMAGES, M2S_PLANS, M2S_REGIONS, type ListPaging, type VmRecord };

export interface M2sSimulator extends Simulator {
  /** How the list pages (see the header); "documented" unless a test changes it. */
  paging: ListPaging;
  /** Requests received so far, counted on arrival (before the injected latency). */
  arrived(): number;
  /** Change a VM behind the operator's back (drift tests). */
  mutate(id: string, change: Partial<Pick<VmRecord, "status" | "plan" | "image" | "tags" | "name">>): void;
  /** Remove a VM behind the operator's back. */
  destroy(id: string): void;
  /** A VM's whole record, to clone (bench/scale.ts). */
  record(id: string): VmRecord | undefined;
  /** Store settled VMs directly, faster than the API creates them (bench/scale.ts). */
  seed(vms: readonly VmRecord[]): void;
}

export async function startM2sSimulator(
  opts: {
    faults?: Partial<FaultKnobs>;
    profile?: SimProfile;
    apiKey?: string;
    /**
     * More valid keys beside `apiKey`: one account each (the rate limit is per key), all on one
     * server, as many customers of one provider are (the bench's operator-bound scenario).
     */
    moreApiKeys?: readonly string[];
  } = {},
): Promise<M2sSimulator> {
  const profile = opts.profile ?? "default";
  const apiKey = opts.apiKey ?? "m2s-sim-key-0123456789";
  const validAuth = new Set([apiKey, ...(opts.moreApiKeys ?? [])].map((k) => `Bearer ${k}`));
  const injector = new FaultInjector(opts.faults);
  const listing = { paging: "documented" as ListPaging };
  const cloud = new M2sCloud(profile, injector.knobs, listing);
  let arrived = 0;
  const counts = new Map<string, number>();
  const error = cloud.views.error;

  /** Faults, auth and the JSON body, in the API's own words; then the call itself. */
  async function handle(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sim");
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "");
    const operation = `${method} ${path.replace(/\/i-[^/]+/, "/:id")}`;
    countRequest(counts, operation);
    const auth = req.headers.authorization ?? "";
    const decision = injector.decide(auth, operation);
    if (applyConnectionFault(decision, res)) return;
    if (decision.kind === "rateLimited") {
      error(res, 429, "rate_limited", "Trop de requêtes", {
        "retry-after": String(decision.retryAfterSeconds ?? 1),
      });
      return;
    }
    if (decision.kind === "error") {
      error(res, 503, "unavailable", "Service temporairement indisponible");
      return;
    }
    if (!validAuth.has(auth)) {
      error(res, 401, "unauthorized", "Clé API invalide ou manquante");
      return;
    }
    let json: Record<string, unknown> = {};
    if (body.trim() !== "") {
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        error(res, 400, "invalid_json", "Corps JSON invalide");
        return;
      }
    }
    await Promise.resolve();
    cloud.route(method, path, url, json, res);
  }

  // Counted as requests arrive, before the injected latency.
  const server = await listen(handle, injector.knobs, () => {
    arrived++;
  });
  return {
    get paging() {
      return listing.paging;
    },
    set paging(mode: ListPaging) {
      listing.paging = mode;
    },
    arrived: () => arrived,
    provider: "m2s",
    profile,
    url: `${server.url}/v1`,
    credentials: { apiKey },
    faults: injector.knobs,
    requestCounts: counts,
    vms: () => cloud.list(),
    mutate: (id, change) => {
      cloud.mutate(id, change);
    },
    destroy: (id) => {
      cloud.remove(id);
    },
    record: (id) => cloud.record(id),
    seed: (vms) => {
      cloud.seed(vms);
    },
    async close() {
      cloud.close();
      await server.close();
    },
  };
}
