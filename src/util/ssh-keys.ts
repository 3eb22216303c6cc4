import { generateKeyPairSync, randomBytes } from "node:crypto";

/**
 * An ed25519 key pair in the formats `ssh` reads: the public key as an authorized_keys line,
 * the private key as an OpenSSH private key file (PROTOCOL.key, unencrypted: it lives only in
 * a Kubernetes Secret, whose encryption at rest is the cluster's). Node makes the key; the
 * two small wire formats are written here rather than pulling in an SSH library.
 */
export function ed25519KeyPair(comment: string): { publicKey: string; privateKey: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const pub = Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url");
  const seed = Buffer.from(privateKey.export({ format: "jwk" }).d ?? "", "base64url");
  const keyType = Buffer.from("ssh-ed25519");
  const blob = Buffer.concat([str(keyType), str(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([
    check,
    check,
    str(keyType),
    str(pub),
    str(Buffer.concat([seed, pub])),
    str(Buffer.from(comment)),
  ]);
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const file = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    str(Buffer.from("none")),
    str(Buffer.from("none")),
    str(Buffer.alloc(0)),
    u32(1),
    str(blob),
    str(secret),
  ]);
  const body = file.toString("base64").replace(/(.{70})/g, "$1\n");
  return {
    publicKey: `ssh-ed25519 ${blob.toString("base64")} ${comment}`,
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.trimEnd()}\n-----END OPENSSH PRIVATE KEY-----\n`,
  };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** An SSH wire-format string: its length, then its bytes. */
function str(bytes: Buffer): Buffer {
  return Buffer.concat([u32(bytes.length), bytes]);
}
