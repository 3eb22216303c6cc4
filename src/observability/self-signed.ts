import { generateKeyPairSync, randomBytes, sign } from "node:crypto";

/**
 * A self-signed certificate for the metrics endpoint, made in memory at start, as
 * controller-runtime's secure metrics server does when no certificate is mounted: the
 * traffic is encrypted, and who may read it is decided by TokenReview/SubjectAccessReview,
 * not by the certificate. Node can sign but not issue X.509, so the few DER structures a
 * certificate needs are written here (RFC 5280 §4.1) rather than pulling in a PKI library.
 */
export function selfSignedCertificate(opts: {
  commonName: string;
  dnsNames: readonly string[];
  days?: number;
}): {
  cert: string;
  key: string;
} {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const ecdsaWithSha256 = seq(oid("1.2.840.10045.4.3.2"));
  const name = seq(set(seq(oid("2.5.4.3"), utf8(opts.commonName))));
  const now = Date.now();
  const validity = seq(
    time(new Date(now - 3_600_000)),
    time(new Date(now + (opts.days ?? 365) * 86_400_000)),
  );
  const san = seq(...opts.dnsNames.map((n) => tlv(0x82, Buffer.from(n, "ascii"))));
  const extensions = tlv(
    0xa3,
    seq(
      seq(oid("2.5.29.17"), octets(san)),
      // keyUsage digitalSignature, extKeyUsage serverAuth: a server certificate and nothing else.
      seq(oid("2.5.29.15"), tlv(0x01, Buffer.from([0xff])), octets(tlv(0x03, Buffer.from([0x07, 0x80])))),
      seq(oid("2.5.29.37"), octets(seq(oid("1.3.6.1.5.5.7.3.1")))),
    ),
  );
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f; // a positive INTEGER
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // v3
    tlv(0x02, serial),
    ecdsaWithSha256,
    name,
    validity,
    name,
    publicKey.export({ type: "spki", format: "der" }),
    extensions,
  );
  const signature = sign("sha256", tbs, privateKey);
  const der = seq(tbs, ecdsaWithSha256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  return {
    cert: pem("CERTIFICATE", der),
    key: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
  };
}

function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const len =
    n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const octets = (body: Buffer): Buffer => tlv(0x04, body);
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, "utf8"));

function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split(".").map(Number);
  const bytes = [a * 40 + b];
  for (const v of rest) {
    const chunk = [v & 0x7f];
    for (let x = v >> 7; x > 0; x >>= 7) chunk.unshift((x & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime up to 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`, "ascii"))
    : tlv(0x18, Buffer.from(`${iso}Z`, "ascii"));
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString("base64").replace(/(.{64})/g, "$1\n");
  return `-----BEGIN ${label}-----\n${b64.trimEnd()}\n-----END ${label}-----\n`;
}
