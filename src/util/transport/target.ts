/** Where a request goes, as undici takes it: the origin and the path with its query. */
export interface Target {
  origin: string;
  path: string;
}

/**
 * A dot segment ("." or "..", plain or percent-encoded): the URL parser folds these, a string
 * join would keep them, so a path with one goes through the parser.
 */
export const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;
