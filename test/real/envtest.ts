/**
 * A real etcd + kube-apiserver for the tests, started from the envtest folder named by
 * KUBEBUILDER_ASSETS (controller-runtime's convention: `kube-apiserver` and `etcd` in it; see
 * scripts/envtest/assets.sh). Each server gets free loopback ports, a fresh data dir on tmpfs,
 * certificates made here, RBAC authorization and two static tokens: an admin (system:masters)
 * and the operator's ServiceAccount identity, so RBAC applies to the operator as in a cluster.
 * crds/ is applied and Established before the server is handed out. There is no
 * kube-controller-manager: no garbage collector and no namespace finalization (README).
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnGuarded, type Guarded } from "./processes.ts";

export const ROOT = join(import.meta.dirname, "..", "..");
export const ASSETS = process.env.KUBEBUILDER_ASSETS || undefined;
const HOW =
  "export KUBEBUILDER_ASSETS=$(scripts/envtest/assets.sh) (README: Tests against a real API server)";
/** Why the real-server tests are skipped here, or false when they run. */
export const SKIP: string | false = ASSETS ? false : `KUBEBUILDER_ASSETS is not set: ${HOW}`;

export interface Identity {
  namespace: string;
  serviceAccount: string;
}

export interface Envtest {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly dir: string;
  /** kubeconfig of a system:masters user. */
  readonly adminKubeconfig: string;
  /** kubeconfig of system:serviceaccount:<namespace>:<serviceAccount> (RBAC applies). */
  readonly operatorKubeconfig: string;
  readonly operator: Identity;
  /** kubectl as the admin (or as `kubeconfig`); throws with kubectl's stderr on failure. */
  kubectl(args: readonly string[], opts?: { input?: string; kubeconfig?: string }): Promise<string>;
  /** The API server's own log (for failure messages). */
  logTail(lines?: number): string;
  /** Process ids of etcd and kube-apiserver (the benches read their CPU from /proc). */
  readonly pids: { etcd: number; apiserver: number };
  stop(): Promise<void>;
}

const STALE_PREFIX = "cio-envtest-";

/** Data dirs of test processes that died without cleaning up (tmpfs holds memory). */
function removeStaleDirs(base: string): void {
  for (const entry of readdirSync(base)) {
    if (!entry.startsWith(STALE_PREFIX)) continue;
    const pid = Number(entry.slice(STALE_PREFIX.length).split("-")[0]);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch {
      rmSync(join(base, entry), { recursive: true, force: true });
    }
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr && typeof addr === "object") resolve(addr.port);
        else reject(new Error("no port"));
      });
    });
  });
}

/** A CA, a serving certificate for 127.0.0.1/localhost and a ServiceAccount signing key. */
function makeCertificates(dir: string): void {
  const ossl = (...args: string[]): void => {
    execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ossl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=envtest-ca");
  ossl("req", ...ec, "-keyout", "apiserver.key", "-out", "apiserver.csr", "-subj", "/CN=kube-apiserver");
  writeFileSync(
    join(dir, "san.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  ossl(
    "x509",
    "-req",
    "-in",
    "apiserver.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "apiserver.crt",
    "-days",
    "2",
    "-extfile",
    "san.ext",
  );
  ossl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key");
  ossl("ec", "-in", "sa.key", "-pubout", "-out", "sa.pub");
}

function kubeconfigYaml(url: string, caPem: string, user: string, token: string): string {
  const ca = Buffer.from(caPem).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: envtest`,
    `  cluster: {server: "${url}", certificate-authority-data: ${ca}}`,
    "users:",
    `- name: ${user}`,
    `  user: {token: ${token}}`,
    "contexts:",
    `- name: ${user}`,
    `  context: {cluster: envtest, user: ${user}}`,
    `current-context: ${user}`,
    "",
  ].join("\n");
}

/** GET with a bearer token over TLS pinned to `ca`; node:https keeps this helper client-agnostic. */
function httpsGet(url: string, token: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { ca, headers: { authorization: `Bearer ${token}` }, timeout: 5000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

async function waitReady(url: string, token: string, ca: string, procs: Guarded[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last: string;
    for (const p of procs)
      if (!p.alive()) throw new Error(`${p.name} exited early:\n${p.output().slice(-4000)}`);
    try {
      const res = await httpsGet(`${url}/readyz`, token, ca);
      if (res.status === 200) return;
      last = res.body;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline)
      throw new Error(`kube-apiserver not ready in ${timeoutMs} ms: ${last.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs a command; resolves with stdout, rejects with its stderr. */
export function run(command: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
    child.once("error", reject);
    child.once("close", (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(" ")} (exit ${code}): ${err}${out}`));
    });
    child.stdin.end(input ?? "");
  });
}

export function kubectlBinary(): string {
  return process.env.KUBECTL ?? "kubectl";
}

/**
 * Starts etcd and kube-apiserver, applies crds/ and waits until they are Established.
 * Retried once on a start failure: a free port picked here can be taken before the server binds it.
 */
export async function startEnvtest(opts: { operator?: Identity } = {}): Promise<Envtest> {
  try {
    return await startOnce(opts);
  } catch (err) {
    if (!(err instanceof Error) || !/exited early/.test(err.message)) throw err;
    return startOnce(opts);
  }
}

function etcdArgs(dir: string, clientUrl: string, peerUrl: string): string[] {
  return [
    `--data-dir=${join(dir, "etcd")}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=default=${peerUrl}`,
    "--log-level=warn",
  ];
}

function apiserverArgs(dir: string, etcdUrl: string, port: number): string[] {
  return [
    `--etcd-servers=${etcdUrl}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${port}`,
    "--insecure-port=0",
    `--tls-cert-file=${join(dir, "apiserver.crt")}`,
    `--tls-private-key-file=${join(dir, "apiserver.key")}`,
    `--token-auth-file=${join(dir, "tokens.csv")}`,
    "--authorization-mode=RBAC",
    `--service-account-key-file=${join(dir, "sa.pub")}`,
    `--service-account-signing-key-file=${join(dir, "sa.key")}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    "--service-cluster-ip-range=10.0.0.0/24",
    "--profiling=false",
    "--v=1",
  ];
}

/** The admin (system:masters) and the operator's ServiceAccount identity, as static tokens. */
function writeTokens(dir: string, operator: Identity): { admin: string; operator: string } {
  const tokens = { admin: randomBytes(16).toString("hex"), operator: randomBytes(16).toString("hex") };
  const saUser = `system:serviceaccount:${operator.namespace}:${operator.serviceAccount}`;
  const groups = `system:serviceaccounts,system:serviceaccounts:${operator.namespace}`;
  writeFileSync(
    join(dir, "tokens.csv"),
    `${tokens.admin},envtest-admin,envtest-admin,"system:masters"\n` +
      `${tokens.operator},${saUser},envtest-operator,"${groups}"\n`,
  );
  return tokens;
}

async function startOnce(opts: { operator?: Identity }): Promise<Envtest> {
  // Read now, not at import: a bench may have found the folder since (bench/real-server.ts).
  const assets = process.env.KUBEBUILDER_ASSETS || undefined;
  if (!assets) throw new Error(`KUBEBUILDER_ASSETS is not set: ${HOW}`);
  const apiserverBin = join(assets, "kube-apiserver");
  const etcdBin = join(assets, "etcd");
  for (const bin of [apiserverBin, etcdBin])
    if (!existsSync(bin))
      throw new Error(`${bin} is missing: KUBEBUILDER_ASSETS must hold kube-apiserver and etcd`);
  // tmpfs: etcd fsyncs every write, and a disk shared by several engineers makes that slow.
  const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  removeStaleDirs(base);
  const dir = join(base, `${STALE_PREFIX}${process.pid}-${randomBytes(4).toString("hex")}`);
  mkdirSync(dir, { recursive: true });
  const procs: Guarded[] = [];
  const stop = async (): Promise<void> => {
    for (const p of procs.reverse()) await p.stop(5000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    makeCertificates(dir);
    const operator = opts.operator ?? { namespace: "cio-system", serviceAccount: "cloud-instance-operator" };
    const tokens = writeTokens(dir, operator);
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcdLog = { logFile: join(dir, "etcd.log") };
    const etcd = spawnGuarded(
      "etcd",
      etcdBin,
      etcdArgs(dir, etcdUrl, `http://127.0.0.1:${peerPort}`),
      etcdLog,
    );
    procs.push(etcd);
    const apiserverLog = { logFile: join(dir, "kube-apiserver.log") };
    const apiserver = spawnGuarded(
      "kube-apiserver",
      apiserverBin,
      apiserverArgs(dir, etcdUrl, apiPort),
      apiserverLog,
    );
    procs.push(apiserver);
    const url = `https://127.0.0.1:${apiPort}`;
    const caPem = readFileSync(join(dir, "ca.crt"), "utf8");
    await waitReady(url, tokens.admin, caPem, procs, 90_000);
    const adminKubeconfig = join(dir, "admin.kubeconfig");
    const operatorKubeconfig = join(dir, "operator.kubeconfig");
    writeFileSync(adminKubeconfig, kubeconfigYaml(url, caPem, "envtest-admin", tokens.admin));
    writeFileSync(operatorKubeconfig, kubeconfigYaml(url, caPem, "operator", tokens.operator));
    // A private discovery cache: another server may have had this port, with other CRDs.
    const cache = `--cache-dir=${join(dir, "kubectl-cache")}`;
    const kubectl: Envtest["kubectl"] = (args, o = {}) =>
      run(kubectlBinary(), [`--kubeconfig=${o.kubeconfig ?? adminKubeconfig}`, cache, ...args], o.input);
    await kubectl(["apply", "-f", join(ROOT, "crds")]);
    await kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
    return {
      url,
      dir,
      adminKubeconfig,
      operatorKubeconfig,
      operator,
      kubectl,
      logTail: (lines = 40) => apiserver.output().split("\n").slice(-lines).join("\n"),
      pids: { etcd: etcd.pid, apiserver: apiserver.pid },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
