// Loaded with `node --import` into an operator process: its wall clock runs CLOCK_SKEW_MS ahead
// (Date, Date.now), while performance.now() — the monotonic clock — is untouched, as on a node
// whose NTP is off.
const skew = Number(process.env["CLOCK_SKEW_MS"] ?? "0");
const RealDate = Date;
class SkewedDate extends RealDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(RealDate.now() + skew);
    else super(...(args as [string]));
  }
  static override now(): number {
    return RealDate.now() + skew;
  }
}
globalThis.Date = SkewedDate as DateConstructor;
