/** Longest message the operator writes into a status condition or an Event (1 KiB). */
export const MAX_MESSAGE_BYTES = 1024;

const MARK = " … [cut]";

/**
 * Caps a human message at `max` bytes of UTF-8, marked as cut. A provider's error body may be
 * an HTML page or 20,000 characters of an internal service's answer; status and Events are
 * read by people and stored in etcd next to every other object.
 */
export function capMessage(message: string, max = MAX_MESSAGE_BYTES): string {
  if (Buffer.byteLength(message) <= max) return message;
  const room = max - Buffer.byteLength(MARK);
  let cut = message.slice(0, room);
  while (Buffer.byteLength(cut) > room) cut = cut.slice(0, -1);
  // Never end on half of a surrogate pair.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return cut + MARK;
}
