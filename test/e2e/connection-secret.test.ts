/**
 * spec.writeConnectionSecretToRef and sshKeyGeneration, end to end on every provider: the
 * key pair exists before the VM, the Secret says how to reach the VM and follows its
 * addresses, it is deleted with the object, and a Secret that is not the object's is never
 * overwritten.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startWorld, eventually, CloudInstanceResource, cond, ready } from "./harness.ts";
import { SecretResource } from "../../src/kube/resources.ts";
import { PROVIDER_NAMES } from "../../src/api/provider-names.ts";
import { decodeSecret } from "../../src/controller/secrets.ts";
import { isNotFound } from "../../src/kube/errors.ts";

let w: Awaited<ReturnType<typeof startWorld>>;

before(async () => {
  w = await startWorld({ providers: PROVIDER_NAMES.filter((p) => p !== "m2s") });
  await w.startOperator();
});
after(async () => {
  await w.close();
});

async function secretData(name: string): Promise<Record<string, string> | undefined> {
  try {
    return decodeSecret(await w.kube.get(SecretResource, "e2e", name));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

describe("connection Secret", () => {
  for (const provider of PROVIDER_NAMES) {
    test(`${provider}: instanceID and addresses, a generated key pair, deleted with the object`, async () => {
      const name = `${provider}-conn`;
      const secret = `${name}-connection`;
      await w.instanceOn(provider, name, {
        writeConnectionSecretToRef: { name: secret },
        sshKeyGeneration: { type: "ed25519" },
      });
      const o = await w.waitFor(name, (x) => ready(x) || cond(x, "Synced")?.status === "False", "settled");
      const data = await secretData(secret);
      assert.ok(data, "the Secret exists");
      assert.match(data["ssh-privatekey"] ?? "", /^-----BEGIN OPENSSH PRIVATE KEY-----/);
      assert.match(data["ssh-publickey"] ?? "", /^ssh-ed25519 /);
      if (ready(o)) {
        await eventually(
          async () => (await secretData(secret))?.instanceID === o.status?.instanceID,
          "instanceID",
        );
        const filled = await secretData(secret);
        assert.equal(filled?.publicIP, o.status?.addresses?.public?.[0] ?? "");
        assert.equal(filled?.["ssh-publickey"], data["ssh-publickey"], "the key pair is kept");
      } else {
        // A provider that cannot install a public key says so; the key pair stays for a retry.
        assert.match(cond(o, "Synced")?.reason ?? "", /Unsupported|InvalidRequest|InvalidSpec/);
      }
      await w.kube.delete(CloudInstanceResource, "e2e", name);
      await w.gone(name);
      assert.equal(await secretData(secret), undefined, "deleted with the object");
    });
  }

  test("a Secret that is not the object's is never overwritten", async () => {
    await w.kube.create(SecretResource, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "app-config", namespace: "e2e" },
      stringData: { password: "keep-me" },
    });
    await w.instance("conn-clash", { writeConnectionSecretToRef: { name: "app-config" } });
    const o = await w.waitFor(
      "conn-clash",
      (x) => cond(x, "Synced")?.reason === "ConnectionSecretConflict",
      "ConnectionSecretConflict",
    );
    assert.match(cond(o, "Synced")?.message ?? "", /not this object's/);
    assert.equal((await secretData("app-config"))?.password, "keep-me");
    await w.kube.delete(CloudInstanceResource, "e2e", "conn-clash");
    await w.gone("conn-clash");
    assert.equal((await secretData("app-config"))?.password, "keep-me", "not deleted with the object");
  });

  test("sshKeyGeneration without a Secret to keep the key is refused", async () => {
    await w.instance("conn-nowhere", { sshKeyGeneration: { type: "ed25519" } });
    const o = await w.waitFor(
      "conn-nowhere",
      (x) => cond(x, "Synced")?.reason === "InvalidSpec",
      "InvalidSpec",
    );
    assert.match(cond(o, "Synced")?.message ?? "", /writeConnectionSecretToRef/);
    assert.equal(o.status?.instanceID, undefined);
    await w.kube.delete(CloudInstanceResource, "e2e", "conn-nowhere");
    await w.gone("conn-nowhere");
  });
});
