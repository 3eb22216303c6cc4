import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ed25519KeyPair } from "../../src/util/ssh-keys.ts";

/** Reads the OpenSSH private key file back (PROTOCOL.key) into its seed and public key. */
function parsePrivate(pem: string): { seed: Buffer; pub: Buffer; comment: string } {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const buf = Buffer.from(b64, "base64");
  let at = 0;
  const magic = buf.subarray(0, 15).toString();
  assert.equal(magic, "openssh-key-v1\0");
  at = 15;
  const read = (): Buffer => {
    const n = buf.readUInt32BE(at);
    const out = buf.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return out;
  };
  assert.equal(read().toString(), "none");
  assert.equal(read().toString(), "none");
  assert.equal(read().length, 0);
  assert.equal(buf.readUInt32BE(at), 1);
  at += 4;
  read();
  const secret = read();
  assert.equal(secret.length % 8, 0, "padded to the block size");
  assert.ok(secret.readUInt32BE(0) === secret.readUInt32BE(4), "the two check integers agree");
  let s = 8;
  const rd = (): Buffer => {
    const n = secret.readUInt32BE(s);
    const out = secret.subarray(s + 4, s + 4 + n);
    s += 4 + n;
    return out;
  };
  assert.equal(rd().toString(), "ssh-ed25519");
  const pub = rd();
  const both = rd();
  const comment = rd().toString();
  assert.deepEqual(both.subarray(32), pub);
  return { seed: both.subarray(0, 32), pub, comment };
}

test("an ed25519 pair: the private file holds the key of the public line, and it signs", () => {
  const pair = ed25519KeyPair("default/web-1");
  assert.match(pair.publicKey, /^ssh-ed25519 [A-Za-z0-9+/=]+ default\/web-1$/);
  const { seed, pub, comment } = parsePrivate(pair.privateKey);
  assert.equal(comment, "default/web-1");
  const blob = Buffer.from(pair.publicKey.split(" ")[1] ?? "", "base64");
  assert.deepEqual(blob.subarray(blob.length - 32), pub);
  const jwk = { kty: "OKP", crv: "Ed25519", d: seed.toString("base64url"), x: pub.toString("base64url") };
  const key = createPrivateKey({ key: jwk, format: "jwk" });
  const signature = sign(null, Buffer.from("hello"), key);
  assert.ok(verify(null, Buffer.from("hello"), createPublicKey(key), signature));
  assert.notEqual(ed25519KeyPair("x").publicKey, ed25519KeyPair("x").publicKey, "fresh keys every time");
});

test(
  "ssh-keygen reads the private key back to the same public key",
  { skip: spawnSync("ssh-keygen", ["-?"]).error ? "no ssh-keygen" : false },
  () => {
    const pair = ed25519KeyPair("c");
    const dir = mkdtempSync(join(tmpdir(), "cio-ssh-"));
    try {
      const file = join(dir, "id");
      writeFileSync(file, pair.privateKey, { mode: 0o600 });
      const derived = execFileSync("ssh-keygen", ["-y", "-f", file]).toString().trim();
      assert.equal(derived.split(" ").slice(0, 2).join(" "), pair.publicKey.split(" ").slice(0, 2).join(" "));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
