import { createHmac } from "node:crypto";

export type SignatureMethod = "HmacSHA256" | "HmacSHA1";

/** RFC 3986: only A-Z a-z 0-9 - _ . ~ stay as they are; hex in upper case; space is %20. */
export function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The host as signed: lower case, with the port only when it is not the scheme's default. */
export function signedHost(url: URL): string {
  const host = url.hostname.toLowerCase();
  const defaultPort = url.protocol === "https:" ? "443" : url.protocol === "http:" ? "80" : "";
  return url.port === "" || url.port === defaultPort ? host : `${host}:${url.port}`;
}

/** The canonical query: every parameter but Signature, sorted by name in byte order. */
export function canonicalQuery(params: readonly (readonly [string, string])[]): string {
  return params
    .filter(([k]) => k !== "Signature")
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/** AWS Signature Version 2 string to sign: METHOD \n host \n path \n canonical query. */
export function stringToSign(
  method: string,
  url: URL,
  params: readonly (readonly [string, string])[],
): string {
  const path = url.pathname === "" ? "/" : url.pathname;
  return `${method.toUpperCase()}\n${signedHost(url)}\n${path}\n${canonicalQuery(params)}`;
}

export function signature(secret: string, method: SignatureMethod, text: string): string {
  return createHmac(method === "HmacSHA1" ? "sha1" : "sha256", secret)
    .update(text, "utf8")
    .digest("base64");
}
