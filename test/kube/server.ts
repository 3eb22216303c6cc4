import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { applyDefaultsAndPrune, validate, type FieldError, type Schema } from "./schema.ts";
import { parseFieldSelector, parseLabelSelector, SelectorError } from "./selectors.ts";
import { metadataErrors } from "./metadata-validation.ts";

/**
 * An in-memory Kubernetes API server speaking the real REST + watch protocol over HTTP, the
 * stand-in for a cluster in tests, the demo and the benchmarks. It serves the CRDs in crds/
 * (validated and defaulted from their schemas, status and scale subresources) plus core
 * Secrets, Events, Namespaces and coordination.k8s.io Leases.
 *
 * Where it differs from a real kube-apiserver (test/real runs the same checks there; README,
 * "Tests against a real API server"): no managedFields, so a write that changes nothing visible
 * never moves resourceVersion; objects may live in namespaces that do not exist; no RBAC; no
 * server-side apply or OpenAPI; Lease times are not checked for MicroTime's 6 fractional digits
 * (a real server answers 400); BOOKMARKs every `bookmarkIntervalMs` (v1.20 sends one shortly
 * before timeoutSeconds). Names and label values are validated as a real server does.
 */
export interface KubeApiServerOptions {
  crdDir?: string;
  /** Watch events kept for resuming; older resourceVersions get 410 Gone. */
  historyLimit?: number;
  /** How often an idle watch with allowWatchBookmarks gets a BOOKMARK. */
  bookmarkIntervalMs?: number;
  /**
   * Bearer tokens TokenReview knows, with the non-resource URLs SubjectAccessReview lets each
   * user GET (the /metrics reader's RBAC, in short).
   */
  users?: Record<string, { username: string; groups?: string[]; nonResourceURLs?: string[] }>;
  /**
   * Whether GET, list and watch answer `Accept: application/json;as=PartialObjectMetadata…`
   * with metadata only, as every kube-apiserver since 1.15 does (default true). false: as a
   * server (or an aggregated API) that cannot, which answers with the next type the client
   * accepts, or 406 if none.
   */
  partialMetadata?: boolean;
}

export interface KubeApiServer {
  url: string;
  kubeconfigYaml(): string;
  writeKubeconfig(path: string): void;
  faults: {
    dropWatches(): void;
    expireHistory(): void;
    failNext(n: number, status: 500 | 429): void;
    /** The next n status writes (PUT/PATCH …/status) answer 409 Conflict. */
    conflictStatusWrites(n: number): void;
    latencyMs: number;
  };
  requestCounts(): { total: number; byVerb: Record<string, number>; byResource: Record<string, number> };
  /** Objects of a kind, for assertions (not via HTTP). */
  objects(plural: string): KubeObj[];
  /**
   * Stores objects of a kind as they are (status, finalizers and all; no defaulting or
   * validation), stamped with a uid, creationTimestamp and a resourceVersion each, without
   * watch events: as if they existed before anyone watched. For benches that need many objects
   * faster than HTTP creates them (bench/scale.ts).
   */
  seed(plural: string, objects: readonly KubeObj[]): void;
  close(): Promise<void>;
}

interface Meta {
  name?: string | undefined;
  generateName?: string | undefined;
  namespace?: string | undefined;
  uid?: string | undefined;
  resourceVersion?: string | undefined;
  generation?: number | undefined;
  creationTimestamp?: string | undefined;
  deletionTimestamp?: string | undefined;
  labels?: Record<string, string> | undefined;
  finalizers?: string[] | undefined;
  [k: string]: unknown;
}
export interface KubeObj {
  apiVersion?: string;
  kind?: string;
  metadata: Meta;
  [k: string]: unknown;
}

interface Kind {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  schema?: Schema;
  status: boolean;
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
  /** Objects by `namespace/name`. */
  items: Map<string, KubeObj>;
  /** Bumped on every change of `items`: keys the list's sorted order. */
  changes: number;
  /** The items in list order, as of `changes` (not sorted again for every page of a 100,000-object list). */
  sorted?: { changes: number; items: KubeObj[] };
}

interface WatchEvent {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  kind: Kind;
  object: KubeObj;
  /** The version a MODIFIED replaced: a watch whose selector it entered sees ADDED, one it left DELETED. */
  prev?: KubeObj | undefined;
}

/** What a watch with `matches` sees of `ev`, as a real server's watch cache filters it; undefined: nothing. */
function seenAs(ev: WatchEvent, matches: (o: KubeObj) => boolean): WatchEvent["type"] | undefined {
  const now = matches(ev.object);
  if (ev.type !== "MODIFIED" || ev.prev === undefined) return now ? ev.type : undefined;
  const before = matches(ev.prev);
  if (now) return before ? "MODIFIED" : "ADDED";
  return before ? "DELETED" : undefined;
}

/** The form a request asked its objects in (its Accept header). */
type Form = "full" | "metadata";

/** meta.k8s.io/v1 PartialObjectMetadata of `o`: what a metadata-only answer carries of it. */
function partial(o: KubeObj): KubeObj {
  return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata };
}

/**
 * The first entry of `accept` the server can answer, as a real server negotiates: JSON (or
 * any type), or — if `metadata` is allowed — PartialObjectMetadata (`as=…List` for a list);
 * undefined if none (406). Other `as=` forms (Table) are not served here.
 */
function negotiate(accept: string | undefined, list: boolean, metadata: boolean): Form | undefined {
  if (accept === undefined || accept.trim() === "") return "full";
  for (const entry of accept.split(",")) {
    const [type = "", ...params] = entry.split(";").map((p) => p.trim());
    if (!["application/json", "application/*", "*/*"].includes(type)) continue;
    const as = params.find((p) => p.startsWith("as="))?.slice(3);
    if (as === undefined) return "full";
    const g = params.find((p) => p.startsWith("g="))?.slice(2);
    const v = params.find((p) => p.startsWith("v="))?.slice(2);
    const wanted = list ? "PartialObjectMetadataList" : "PartialObjectMetadata";
    if (metadata && as === wanted && g === "meta.k8s.io" && v === "v1") return "metadata";
  }
  return undefined;
}

interface Watcher {
  form: Form;
  kind: Kind;
  namespace: string | undefined;
  matches: (o: KubeObj) => boolean;
  res: ServerResponse;
  bookmarks: boolean;
  timers: NodeJS.Timeout[];
}

const ROOT = join(import.meta.dirname, "../..");

class HttpError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly details: Record<string, unknown> | undefined;
  constructor(status: number, reason: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.details = details;
  }
}

function statusBody(
  status: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code: status,
  };
}

function loadCrdKinds(dir: string): Kind[] {
  const kinds: Kind[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    const crd = parse(readFileSync(join(dir, file), "utf8")) as {
      spec: {
        group: string;
        scope: string;
        names: { kind: string; plural: string; shortNames?: string[]; categories?: string[] };
        versions: {
          name: string;
          schema: { openAPIV3Schema: Schema };
          subresources?: { status?: object; scale?: Kind["scale"] };
        }[];
      };
    };
    for (const v of crd.spec.versions) {
      kinds.push({
        group: crd.spec.group,
        version: v.name,
        kind: crd.spec.names.kind,
        plural: crd.spec.names.plural,
        namespaced: crd.spec.scope === "Namespaced",
        shortNames: crd.spec.names.shortNames ?? [],
        categories: crd.spec.names.categories ?? [],
        schema: v.schema.openAPIV3Schema,
        status: v.subresources?.status !== undefined,
        ...(v.subresources?.scale ? { scale: v.subresources.scale } : {}),
        items: new Map(),
        changes: 0,
      });
    }
  }
  return kinds;
}

function coreKind(group: string, version: string, kind: string, plural: string, namespaced: boolean): Kind {
  return {
    group,
    version,
    kind,
    plural,
    namespaced,
    shortNames: [],
    categories: [],
    status: false,
    items: new Map(),
    changes: 0,
  };
}

function getPath(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const part of path.replace(/^\./, "").split(".")) {
    if (typeof cur !== "object" || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.replace(/^\./, "").split(".");
  let cur = obj;
  for (const part of parts.slice(0, -1)) {
    if (typeof cur[part] !== "object" || cur[part] === null) cur[part] = {};
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1] ?? ""] = value;
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, unknown> =
    typeof target === "object" && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902 JSON patch (add, remove, replace, test, copy, move). */
function jsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new HttpError(400, "BadRequest", "json patch must be an array");
  let root = structuredClone(doc);
  const ptr = (p: string): string[] =>
    p
      .split("/")
      .slice(1)
      .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
  const parent = (path: string[]): { container: Record<string, unknown> | unknown[]; key: string } => {
    let cur: unknown = root;
    for (const part of path.slice(0, -1)) {
      cur = Array.isArray(cur) ? cur[Number(part)] : (cur as Record<string, unknown> | undefined)?.[part];
      if (typeof cur !== "object" || cur === null)
        throw new HttpError(422, "Invalid", `path ${path.join("/")} does not exist`);
    }
    return { container: cur as Record<string, unknown>, key: path[path.length - 1] ?? "" };
  };
  const read = (path: string[]): unknown =>
    path.reduce<unknown>((c, k) => (c as Record<string, unknown> | undefined)?.[k], root);
  for (const op of ops as { op: string; path: string; value?: unknown; from?: string }[]) {
    const path = ptr(op.path);
    if (path.length === 0) {
      if (op.op === "test") {
        if (JSON.stringify(root) !== JSON.stringify(op.value))
          throw new HttpError(422, "Invalid", "test failed");
        continue;
      }
      root = structuredClone(op.value);
      continue;
    }
    const { container, key } = parent(path);
    const value =
      op.op === "copy" || op.op === "move"
        ? structuredClone(read(ptr(op.from ?? "")))
        : structuredClone(op.value);
    if (op.op === "move") {
      const from = parent(ptr(op.from ?? ""));
      if (Array.isArray(from.container)) from.container.splice(Number(from.key), 1);
      else delete from.container[from.key];
    }
    switch (op.op) {
      case "add":
      case "copy":
      case "move":
        if (Array.isArray(container))
          container.splice(key === "-" ? container.length : Number(key), 0, value);
        else container[key] = value;
        break;
      case "replace":
        if (Array.isArray(container)) container[Number(key)] = value;
        else {
          if (!(key in container))
            throw new HttpError(422, "Invalid", `replace: path ${op.path} does not exist`);
          container[key] = value;
        }
        break;
      case "remove":
        if (Array.isArray(container)) container.splice(Number(key), 1);
        else {
          if (!(key in container))
            throw new HttpError(422, "Invalid", `remove: path ${op.path} does not exist`);
          delete container[key];
        }
        break;
      case "test":
        if (
          JSON.stringify(Array.isArray(container) ? container[Number(key)] : container[key]) !==
          JSON.stringify(op.value)
        ) {
          throw new HttpError(422, "Invalid", `test operation failed at ${op.path}`);
        }
        break;
      default:
        throw new HttpError(400, "BadRequest", `unknown json patch op ${op.op}`);
    }
  }
  return root;
}

function withoutMetaStatus(o: KubeObj): string {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = o;
  return JSON.stringify(rest);
}

export async function startKubeApiServer(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const historyLimit = opts.historyLimit ?? 20_000;
  const bookmarkMs = opts.bookmarkIntervalMs ?? 1000;
  const kinds: Kind[] = [
    ...loadCrdKinds(opts.crdDir ?? join(ROOT, "crds")),
    coreKind("", "v1", "Secret", "secrets", true),
    coreKind("", "v1", "Event", "events", true),
    coreKind("", "v1", "Namespace", "namespaces", false),
    coreKind("", "v1", "ConfigMap", "configmaps", true),
    coreKind("coordination.k8s.io", "v1", "Lease", "leases", true),
    coreKind("events.k8s.io", "v1", "Event", "events", true),
  ];
  let rv = 1;
  const history: WatchEvent[] = [];
  /** Versions at or below this are too old to resume from. */
  let compactedRv = 0;
  const watchers = new Set<Watcher>();
  const counts = { total: 0, byVerb: {} as Record<string, number>, byResource: {} as Record<string, number> };
  const faults = { latencyMs: 0, failNextCount: 0, failStatus: 500 as 500 | 429, statusConflicts: 0 };

  const findKind = (group: string, version: string, plural: string): Kind | undefined =>
    kinds.find((k) => k.group === group && k.version === version && k.plural === plural);

  function record(type: WatchEvent["type"], kind: Kind, object: KubeObj, prev?: KubeObj): void {
    const ev: WatchEvent = { rv: Number(object.metadata.resourceVersion), type, kind, object, prev };
    history.push(ev);
    if (history.length > historyLimit) {
      const dropped = history.splice(0, history.length - historyLimit);
      compactedRv = Math.max(compactedRv, dropped[dropped.length - 1]?.rv ?? 0);
    }
    for (const w of watchers) {
      if (w.kind !== kind) continue;
      if (w.namespace !== undefined && object.metadata.namespace !== w.namespace) continue;
      const seen = seenAs(ev, w.matches);
      if (seen === undefined) continue;
      w.res.write(
        `${JSON.stringify({ type: seen, object: w.form === "metadata" ? partial(object) : object })}\n`,
      );
    }
  }

  function stamp(kind: Kind, obj: KubeObj): void {
    obj.apiVersion = kind.group === "" ? kind.version : `${kind.group}/${kind.version}`;
    obj.kind = kind.kind;
    obj.metadata.resourceVersion = String(++rv);
  }

  function prepareCustom(kind: Kind, obj: KubeObj): void {
    if (!kind.schema) {
      if (kind.kind === "Secret") {
        const data = { ...(obj.data as Record<string, string> | undefined) };
        for (const [k, v] of Object.entries((obj.stringData as Record<string, string> | undefined) ?? {}))
          data[k] = Buffer.from(v).toString("base64");
        delete obj.stringData;
        obj.data = data;
        obj.type ??= "Opaque";
      }
      return;
    }
    const { metadata, ...body } = obj;
    const defaulted = applyDefaultsAndPrune(body, kind.schema) as Record<string, unknown>;
    const errors: FieldError[] = [];
    const props = (kind.schema.properties as Record<string, Schema> | undefined) ?? {};
    for (const req of (kind.schema.required as string[] | undefined) ?? []) {
      if (defaulted[req] === undefined)
        errors.push({ field: req, reason: "FieldValueRequired", message: "Required value" });
    }
    for (const [k, v] of Object.entries(defaulted)) {
      if (k !== "metadata" && props[k]) validate(v, props[k], k, errors);
    }
    if (errors.length > 0) {
      const name = metadata.name ?? "";
      throw new HttpError(
        422,
        "Invalid",
        `${kind.kind}.${kind.group} "${name}" is invalid: ${errors.map((e) => `${e.field}: ${e.message}`).join(", ")}`,
        {
          name,
          group: kind.group,
          kind: kind.kind,
          causes: errors.map((e) => ({ reason: e.reason, message: e.message, field: e.field })),
        },
      );
    }
    for (const key of Object.keys(obj)) if (key !== "metadata") delete obj[key];
    Object.assign(obj, defaulted);
  }

  function store(kind: Kind, ns: string | undefined, obj: KubeObj, type: WatchEvent["type"]): KubeObj {
    stamp(kind, obj);
    const key = `${ns ?? ""}/${obj.metadata.name ?? ""}`;
    const prev = kind.items.get(key);
    kind.items.set(key, obj);
    kind.changes++;
    record(type, kind, obj, prev);
    return obj;
  }

  function remove(kind: Kind, ns: string | undefined, obj: KubeObj): KubeObj {
    kind.items.delete(`${ns ?? ""}/${obj.metadata.name ?? ""}`);
    kind.changes++;
    obj.metadata.resourceVersion = String(++rv);
    record("DELETED", kind, obj);
    return obj;
  }

  /** The real server's ValidateObjectMeta: a 422 naming each bad field, before anything is stored. */
  function checkMetadata(kind: Kind, obj: KubeObj): void {
    const errors = metadataErrors(obj.metadata);
    if (errors.length === 0) return;
    const name = obj.metadata.name ?? "";
    throw new HttpError(
      422,
      "Invalid",
      `${kind.kind}${kind.group ? "." + kind.group : ""} "${name}" is invalid: ${errors.map((e) => `${e.field}: ${e.message}`).join(", ")}`,
      { name, group: kind.group, kind: kind.kind, causes: errors },
    );
  }

  /** Writes `next` over `current` (update semantics shared by PUT and PATCH). */
  function write(
    kind: Kind,
    ns: string | undefined,
    current: KubeObj,
    next: KubeObj,
    sub: string | undefined,
  ): KubeObj {
    const expected = next.metadata.resourceVersion;
    if (expected !== undefined && expected !== "" && expected !== current.metadata.resourceVersion) {
      throw new HttpError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${kind.plural}.${kind.group} "${current.metadata.name ?? ""}": the object has been modified; please apply your changes to the latest version and try again`,
        {
          name: current.metadata.name,
          group: kind.group,
          kind: kind.plural,
        },
      );
    }
    let result: KubeObj;
    if (sub === "status") {
      result = { ...structuredClone(current), status: next.status };
      if (kind.schema) {
        const statusSchema = (kind.schema.properties as Record<string, Schema>).status;
        if (statusSchema && result.status !== undefined) {
          result.status = applyDefaultsAndPrune(result.status, statusSchema);
          const errors: FieldError[] = [];
          validate(result.status, statusSchema, "status", errors);
          if (errors.length > 0)
            throw new HttpError(422, "Invalid", errors.map((e) => `${e.field}: ${e.message}`).join(", "), {
              causes: errors,
            });
        }
      }
    } else {
      result = structuredClone(next);
      // Identity and server-owned metadata stay; users own labels, annotations, finalizers, ownerReferences.
      result.metadata = {
        ...result.metadata,
        name: current.metadata.name,
        namespace: current.metadata.namespace,
        uid: current.metadata.uid,
        creationTimestamp: current.metadata.creationTimestamp,
        generation: current.metadata.generation,
        ...(current.metadata.deletionTimestamp
          ? { deletionTimestamp: current.metadata.deletionTimestamp }
          : {}),
      };
      if (kind.status) {
        if (current.status === undefined) delete result.status;
        else result.status = structuredClone(current.status);
      }
      checkMetadata(kind, result);
      prepareCustom(kind, result);
      if (withoutMetaStatus(result) !== withoutMetaStatus(current))
        result.metadata.generation = (current.metadata.generation ?? 1) + 1;
      if (result.metadata.deletionTimestamp && (result.metadata.finalizers?.length ?? 0) === 0) {
        return remove(kind, ns, result);
      }
    }
    if (
      isDeepStrictEqual(
        { ...result, metadata: { ...result.metadata, resourceVersion: "" } },
        { ...current, metadata: { ...current.metadata, resourceVersion: "" } },
      )
    ) {
      return current; // a no-op write does not bump resourceVersion, like the real server
    }
    return store(kind, ns, result, "MODIFIED");
  }

  function scaleOf(kind: Kind, obj: KubeObj): Record<string, unknown> {
    const s = kind.scale!;
    return {
      kind: "Scale",
      apiVersion: "autoscaling/v1",
      metadata: {
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
        creationTimestamp: obj.metadata.creationTimestamp,
      },
      spec: { replicas: getPath(obj, s.specReplicasPath) ?? 0 },
      status: {
        replicas: getPath(obj, s.statusReplicasPath) ?? 0,
        selector: getPath(obj, s.labelSelectorPath) ?? "",
      },
    };
  }

  function discovery(url: URL): unknown {
    const p = url.pathname.replace(/\/$/, "");
    const resourcesOf = (group: string, version: string) =>
      kinds
        .filter((k) => k.group === group && k.version === version)
        .flatMap((k) => [
          {
            name: k.plural,
            singularName: k.kind.toLowerCase(),
            namespaced: k.namespaced,
            kind: k.kind,
            verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
            ...(k.shortNames.length ? { shortNames: k.shortNames } : {}),
            ...(k.categories.length ? { categories: k.categories } : {}),
          },
          ...(k.status
            ? [
                {
                  name: `${k.plural}/status`,
                  singularName: "",
                  namespaced: k.namespaced,
                  kind: k.kind,
                  verbs: ["get", "patch", "update"],
                },
              ]
            : []),
          ...(k.scale
            ? [
                {
                  name: `${k.plural}/scale`,
                  singularName: "",
                  namespaced: k.namespaced,
                  group: "autoscaling",
                  version: "v1",
                  kind: "Scale",
                  verbs: ["get", "patch", "update"],
                },
              ]
            : []),
        ]);
    if (p === "/version")
      return { major: "1", minor: "34", gitVersion: "v1.34.0-inmemory", platform: "linux/amd64" };
    if (p === "/api")
      return {
        kind: "APIVersions",
        versions: ["v1"],
        serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: url.host }],
      };
    if (p === "/api/v1")
      return { kind: "APIResourceList", groupVersion: "v1", resources: resourcesOf("", "v1") };
    if (p === "/apis") {
      const groups = [...new Set(kinds.filter((k) => k.group !== "").map((k) => k.group))];
      return {
        kind: "APIGroupList",
        apiVersion: "v1",
        groups: groups.map((g) => {
          const versions = [...new Set(kinds.filter((k) => k.group === g).map((k) => k.version))].map(
            (v) => ({ groupVersion: `${g}/${v}`, version: v }),
          );
          return { name: g, versions, preferredVersion: versions[0] };
        }),
      };
    }
    const m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(p);
    if (m?.[1] && m[2])
      return {
        kind: "APIResourceList",
        apiVersion: "v1",
        groupVersion: `${m[1]}/${m[2]}`,
        resources: resourcesOf(m[1], m[2]),
      };
    const g = /^\/apis\/([^/]+)$/.exec(p);
    if (g?.[1]) {
      const versions = [...new Set(kinds.filter((k) => k.group === g[1]).map((k) => k.version))].map((v) => ({
        groupVersion: `${g[1]}/${v}`,
        version: v,
      }));
      return { kind: "APIGroup", apiVersion: "v1", name: g[1], versions, preferredVersion: versions[0] };
    }
    return undefined;
  }

  function watch(kind: Kind, ns: string | undefined, url: URL, res: ServerResponse, form: Form): void {
    const labels = parseLabelSelector(url.searchParams.get("labelSelector"));
    const fields = parseFieldSelector(url.searchParams.get("fieldSelector"));
    const matches = (o: KubeObj): boolean => labels(o.metadata.labels) && fields(o);
    const shown = form === "metadata" ? partial : (o: KubeObj): KubeObj => o;
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    const from = url.searchParams.get("resourceVersion");
    const bookmarks = url.searchParams.get("allowWatchBookmarks") === "true";
    if (from && from !== "0" && Number(from) < compactedRv) {
      res.end(
        `${JSON.stringify({ type: "ERROR", object: statusBody(410, "Expired", `too old resource version: ${from} (${compactedRv})`) })}\n`,
      );
      return;
    }
    const w: Watcher = { form, kind, namespace: ns, matches, res, bookmarks, timers: [] };
    if (!from || from === "0") {
      for (const o of kind.items.values())
        if ((ns === undefined || o.metadata.namespace === ns) && matches(o))
          res.write(`${JSON.stringify({ type: "ADDED", object: shown(o) })}\n`);
    } else {
      const since = Number(from);
      for (const ev of history) {
        if (ev.rv <= since || ev.kind !== kind) continue;
        if (ns !== undefined && ev.object.metadata.namespace !== ns) continue;
        const seen = seenAs(ev, matches);
        if (seen !== undefined) res.write(`${JSON.stringify({ type: seen, object: shown(ev.object) })}\n`);
      }
    }
    watchers.add(w);
    const finish = (): void => {
      for (const t of w.timers) clearTimeout(t);
      watchers.delete(w);
    };
    if (bookmarks) {
      const bm = (): void => {
        res.write(
          `${JSON.stringify({ type: "BOOKMARK", object: { kind: kind.kind, apiVersion: kind.group === "" ? kind.version : `${kind.group}/${kind.version}`, metadata: { resourceVersion: String(rv) } } })}\n`,
        );
      };
      w.timers.push(setInterval(bm, bookmarkMs));
    }
    const timeout = Number(url.searchParams.get("timeoutSeconds") ?? 1800);
    w.timers.push(
      setTimeout(() => {
        finish();
        res.end();
      }, timeout * 1000),
    );
    // IncomingMessage "close" fires once the request body is consumed; only the response's
    // "close" means the client went away.
    res.on("close", finish);
  }

  function list(kind: Kind, ns: string | undefined, url: URL, form: Form): Record<string, unknown> {
    const labels = parseLabelSelector(url.searchParams.get("labelSelector"));
    const fields = parseFieldSelector(url.searchParams.get("fieldSelector"));
    if (kind.sorted?.changes !== kind.changes) {
      const all = [...kind.items.values()];
      all.sort((a, b) =>
        `${a.metadata.namespace ?? ""}/${a.metadata.name ?? ""}`.localeCompare(
          `${b.metadata.namespace ?? ""}/${b.metadata.name ?? ""}`,
        ),
      );
      kind.sorted = { changes: kind.changes, items: all };
    }
    let items = kind.sorted.items.filter(
      (o) => (ns === undefined || o.metadata.namespace === ns) && labels(o.metadata.labels) && fields(o),
    );
    const limit = Number(url.searchParams.get("limit") ?? 0);
    const cont = url.searchParams.get("continue");
    let listRv = String(rv);
    let start = 0;
    if (cont) {
      const token = JSON.parse(Buffer.from(cont, "base64").toString("utf8")) as { rv: string; start: number };
      start = token.start;
      listRv = token.rv;
    }
    let next: string | undefined;
    if (limit > 0 && start + limit < items.length)
      next = Buffer.from(JSON.stringify({ rv: listRv, start: start + limit })).toString("base64");
    items = limit > 0 ? items.slice(start, start + limit) : items.slice(start);
    const metadata = { resourceVersion: listRv, ...(next ? { continue: next, remainingItemCount: 0 } : {}) };
    if (form === "metadata")
      return {
        kind: "PartialObjectMetadataList",
        apiVersion: "meta.k8s.io/v1",
        metadata,
        items: items.map(partial),
      };
    return {
      kind: `${kind.kind}List`,
      apiVersion: kind.group === "" ? kind.version : `${kind.group}/${kind.version}`,
      metadata,
      items,
    };
  }

  /** TokenReview and SubjectAccessReview, answered from `opts.users`. */
  function reviews(path: string, body: string, res: ServerResponse): boolean {
    const users = opts.users ?? {};
    if (path === "/apis/authentication.k8s.io/v1/tokenreviews") {
      const review = JSON.parse(body) as { spec?: { token?: string } };
      const user = users[review.spec?.token ?? ""];
      send(res, 201, {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        metadata: {},
        spec: review.spec,
        status: user
          ? {
              authenticated: true,
              user: { username: user.username, uid: user.username, groups: user.groups ?? [] },
            }
          : { authenticated: false, error: "invalid bearer token" },
      });
      return true;
    }
    if (path === "/apis/authorization.k8s.io/v1/subjectaccessreviews") {
      const review = JSON.parse(body) as {
        spec?: { user?: string; nonResourceAttributes?: { path?: string; verb?: string } };
      };
      const spec = review.spec ?? {};
      const user = Object.values(users).find((u) => u.username === spec.user);
      const target = spec.nonResourceAttributes;
      const allowed =
        user !== undefined &&
        target?.verb === "get" &&
        (user.nonResourceURLs ?? []).includes(target.path ?? "");
      send(res, 201, {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        metadata: {},
        spec,
        status: { allowed, ...(allowed ? {} : { reason: "no RBAC rule allows it" }) },
      });
      return true;
    }
    return false;
  }

  async function handle(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    counts.total++;
    if (faults.latencyMs > 0) await new Promise((r) => setTimeout(r, faults.latencyMs));
    if (faults.failNextCount > 0) {
      faults.failNextCount--;
      const s = faults.failStatus;
      const reason = s === 429 ? "TooManyRequests" : "InternalError";
      res.writeHead(s, { "content-type": "application/json", ...(s === 429 ? { "retry-after": "1" } : {}) });
      res.end(
        JSON.stringify(
          statusBody(
            s,
            reason,
            s === 429
              ? "Too many requests, please try again later."
              : "Internal error occurred: injected fault",
          ),
        ),
      );
      return;
    }
    if (method === "POST" && reviews(url.pathname, body, res)) return;
    const disc = method === "GET" ? discovery(url) : undefined;
    if (disc !== undefined) {
      send(res, 200, disc);
      return;
    }
    const m =
      /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?(?:\/(status|scale))?$/.exec(
        url.pathname,
      );
    if (!m) throw new HttpError(404, "NotFound", "the server could not find the requested resource");
    const [, coreVersion, group = "", groupVersion, nsRaw, plural = "", nameRaw, sub] = m;
    const version = coreVersion ?? groupVersion ?? "";
    const kind = findKind(coreVersion ? "" : group, version, plural);
    if (!kind) throw new HttpError(404, "NotFound", "the server could not find the requested resource");
    const ns = nsRaw === undefined ? undefined : decodeURIComponent(nsRaw);
    const name = nameRaw === undefined ? undefined : decodeURIComponent(nameRaw);
    const isWatch = url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1";
    const verb =
      name === undefined
        ? method === "GET"
          ? isWatch
            ? "watch"
            : "list"
          : method === "POST"
            ? "create"
            : "deletecollection"
        : ({ GET: "get", PUT: "update", PATCH: "patch", DELETE: "delete" }[method] ?? method.toLowerCase());
    counts.byVerb[verb] = (counts.byVerb[verb] ?? 0) + 1;
    const rk = `${verb} ${plural}${sub ? `/${sub}` : ""}`;
    counts.byResource[rk] = (counts.byResource[rk] ?? 0) + 1;
    if (sub === "status" && (method === "PUT" || method === "PATCH") && faults.statusConflicts > 0) {
      faults.statusConflicts--;
      throw new HttpError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${plural} "${name ?? ""}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    if (sub === "status" && !kind.status)
      throw new HttpError(404, "NotFound", "the server could not find the requested resource");
    if (sub === "scale" && !kind.scale)
      throw new HttpError(404, "NotFound", "the server could not find the requested resource");

    const form =
      method === "GET"
        ? negotiate(req.headers.accept, name === undefined && !isWatch, opts.partialMetadata ?? true)
        : "full";
    if (form === undefined)
      throw new HttpError(
        406,
        "NotAcceptable",
        `only the following media types are accepted: application/json`,
      );
    if (name === undefined) {
      if (method === "GET") {
        if (isWatch) {
          watch(kind, ns, url, res, form);
          return;
        }
        send(res, 200, list(kind, ns, url, form));
        return;
      }
      if (method === "POST") {
        const obj = parseBody(body) as KubeObj;
        obj.metadata = { ...(obj.metadata ?? {}) };
        if (kind.namespaced) {
          if (ns === undefined)
            throw new HttpError(404, "NotFound", "the server could not find the requested resource");
          if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== ns) {
            throw new HttpError(
              400,
              "BadRequest",
              "the namespace of the provided object does not match the namespace sent on the request",
            );
          }
          obj.metadata.namespace = ns;
        }
        if (!obj.metadata.name && obj.metadata.generateName)
          obj.metadata.name = `${obj.metadata.generateName}${randomUUID().slice(0, 5)}`;
        if (!obj.metadata.name)
          throw new HttpError(
            422,
            "Invalid",
            `${kind.kind} "" is invalid: metadata.name: Required value: name or generateName is required`,
            {
              causes: [
                {
                  reason: "FieldValueRequired",
                  message: "Required value: name or generateName is required",
                  field: "metadata.name",
                },
              ],
            },
          );
        const key = `${ns ?? ""}/${obj.metadata.name}`;
        if (kind.items.has(key))
          throw new HttpError(
            409,
            "AlreadyExists",
            `${kind.plural}${kind.group ? "." + kind.group : ""} "${obj.metadata.name}" already exists`,
            { name: obj.metadata.name, group: kind.group, kind: kind.plural },
          );
        if (kind.status) delete obj.status;
        checkMetadata(kind, obj);
        prepareCustom(kind, obj);
        Object.assign(obj.metadata, {
          uid: randomUUID(),
          creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          generation: 1,
        });
        delete obj.metadata.deletionTimestamp;
        delete obj.metadata.resourceVersion;
        send(res, 201, store(kind, ns, obj, "ADDED"));
        return;
      }
      throw new HttpError(405, "MethodNotAllowed", `${method} is not supported on a collection here`);
    }

    const current = kind.items.get(`${ns ?? ""}/${name}`);
    if (!current) {
      throw new HttpError(
        404,
        "NotFound",
        `${kind.plural}${kind.group ? "." + kind.group : ""} "${name}" not found`,
        { name, group: kind.group, kind: kind.plural },
      );
    }
    if (sub === "scale") {
      if (method === "GET") {
        send(res, 200, scaleOf(kind, current));
        return;
      }
      const scale = method === "PUT" ? parseBody(body) : mergePatch(scaleOf(kind, current), parseBody(body));
      const replicas = (scale as { spec?: { replicas?: unknown } }).spec?.replicas;
      const next = structuredClone(current);
      setPath(next, kind.scale!.specReplicasPath, replicas);
      next.metadata.resourceVersion = "";
      send(res, 200, scaleOf(kind, write(kind, ns, current, next, undefined)));
      return;
    }
    if (method === "GET") {
      send(res, 200, form === "metadata" ? partial(current) : current);
      return;
    }
    if (method === "PUT") {
      const next = parseBody(body) as KubeObj;
      next.metadata = { ...(next.metadata ?? {}) };
      if (next.metadata.name !== undefined && next.metadata.name !== name)
        throw new HttpError(400, "BadRequest", "the name of the object does not match the name on the URL");
      send(res, 200, write(kind, ns, current, next, sub));
      return;
    }
    if (method === "PATCH") {
      const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim();
      let patched: unknown;
      if (type === "application/merge-patch+json") patched = mergePatch(current, parseBody(body));
      else if (type === "application/json-patch+json") patched = jsonPatch(current, parseBody(body));
      else if (type === "application/strategic-merge-patch+json") {
        if (kind.schema)
          throw new HttpError(
            415,
            "UnsupportedMediaType",
            `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
          );
        patched = mergePatch(current, parseBody(body));
      } else throw new HttpError(415, "UnsupportedMediaType", `unsupported patch type ${type ?? ""}`);
      const next = structuredClone(patched) as KubeObj; // merge patch shares untouched subtrees with the stored object
      // A patch carries a precondition only when it sets metadata.resourceVersion itself.
      const patchRv = (parseBody(body) as { metadata?: { resourceVersion?: string } } | undefined)?.metadata
        ?.resourceVersion;
      if (type !== "application/merge-patch+json" || patchRv === undefined)
        next.metadata.resourceVersion = "";
      send(res, 200, write(kind, ns, current, next, sub));
      return;
    }
    if (method === "DELETE") {
      const opts = (body.trim() ? parseBody(body) : {}) as {
        preconditions?: { resourceVersion?: string; uid?: string };
      };
      if (opts.preconditions?.uid && opts.preconditions.uid !== current.metadata.uid)
        throw new HttpError(409, "Conflict", "Precondition failed: UID in precondition does not match");
      if ((current.metadata.finalizers?.length ?? 0) > 0) {
        if (current.metadata.deletionTimestamp) {
          send(res, 200, current);
          return;
        }
        const next = structuredClone(current);
        next.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
        send(res, 200, store(kind, ns, next, "MODIFIED"));
        return;
      }
      remove(kind, ns, current);
      send(res, 200, {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Success",
        details: { name, group: kind.group, kind: kind.plural, uid: current.metadata.uid },
      });
      return;
    }
    throw new HttpError(405, "MethodNotAllowed", `${method} not allowed`);
  }

  function parseBody(body: string): unknown {
    try {
      return JSON.parse(body) as unknown;
    } catch {
      throw new HttpError(400, "BadRequest", "the request body is not valid JSON");
    }
  }

  function send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handle(req, Buffer.concat(chunks).toString("utf8"), res).catch((err: unknown) => {
        if (res.headersSent) {
          res.end();
          return;
        }
        if (err instanceof HttpError)
          return send(res, err.status, statusBody(err.status, err.reason, err.message, err.details));
        if (err instanceof SelectorError) return send(res, 400, statusBody(400, "BadRequest", err.message));
        send(res, 500, statusBody(500, "InternalError", `in-memory API server bug: ${String(err)}`));
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const kubeconfigYaml = (): string =>
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: in-memory",
      "  cluster:",
      `    server: ${url}`,
      "contexts:",
      "- name: in-memory",
      "  context:",
      "    cluster: in-memory",
      "    user: tester",
      "    namespace: default",
      "current-context: in-memory",
      "users:",
      "- name: tester",
      "  user:",
      "    token: in-memory-test-token",
      "",
    ].join("\n");
  return {
    url,
    kubeconfigYaml,
    writeKubeconfig: (path) => {
      writeFileSync(path, kubeconfigYaml());
    },
    faults: {
      dropWatches() {
        for (const w of [...watchers]) {
          watchers.delete(w);
          for (const t of w.timers) clearTimeout(t);
          w.res.socket?.destroy();
        }
      },
      expireHistory() {
        compactedRv = rv + 1;
        history.length = 0;
      },
      failNext(n, status) {
        faults.failNextCount = n;
        faults.failStatus = status;
      },
      conflictStatusWrites(n) {
        faults.statusConflicts = n;
      },
      get latencyMs() {
        return faults.latencyMs;
      },
      set latencyMs(v: number) {
        faults.latencyMs = v;
      },
    },
    requestCounts: () => ({
      total: counts.total,
      byVerb: { ...counts.byVerb },
      byResource: { ...counts.byResource },
    }),
    objects: (plural) => kinds.filter((k) => k.plural === plural).flatMap((k) => [...k.items.values()]),
    seed: (plural, objects) => {
      const kind = kinds.find((k) => k.plural === plural);
      if (!kind) throw new Error(`seed: no kind ${plural}`);
      const now = new Date().toISOString();
      for (const obj of objects) {
        obj.metadata.uid ??= randomUUID();
        obj.metadata.creationTimestamp ??= now;
        obj.metadata.generation ??= 1;
        stamp(kind, obj);
        kind.items.set(`${obj.metadata.namespace ?? ""}/${obj.metadata.name ?? ""}`, obj);
      }
      kind.changes++;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const w of watchers) for (const t of w.timers) clearTimeout(t);
        watchers.clear();
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
