/**
 * A target kind: everything the sidecar knows of one way of keeping backups (a target sidecar, a bucket, a local
 * directory, ...), in one object the registry (kinds.ts) lists. The kind's own folder (store/http/, store/s3/,
 * store/local/) exports it as `kind.ts`; nothing outside that folder and the registry names the kind's classes.
 *
 * A kind says:
 * - its URL schemes and how a URL of it is checked and written the one way (`parse`, called by the one URL
 *   parser, targets/url.ts, after the checks every target URL gets);
 * - its `druid.backup.<name>.*` configuration keys (listed in the generated table of the README) and how the values
 *   read become the settings its targets open with;
 * - how a target of it opens;
 * - what the API and the extension may rely on (`answeredByNode`, `cliOnly`); what each target can do beyond the
 *   core calls is declared by the `Target` contract's capabilities (target.ts).
 */
import type { Logger } from 'pino';
import type { KeySpec } from '../config.js';
import type { ClientOptions } from './http/client.js';
import type { Target } from './target.js';

export interface TargetUrl {
  /** The one spelling used everywhere: lower-case scheme and host, no default port, no trailing slash. */
  url: string;
  scheme: string;
  /** The host name or address as `new URL` canonicalises it (`[::1]`, `127.0.0.1`); the bucket or container of an object store. */
  host: string;
  /** The port, default ports made explicit (80, 443); 0 for kinds that have none. */
  port: number;
  /** The path without a trailing slash: `''` for the root, else `/a/b` (the prefix of a bucket). */
  path: string;
  /** The local directory of a file:// URL. */
  dir?: string;
}

/** Says, after where the URL came from, what is wrong with it (a `bad_request`). */
export type UrlProblem = (msg: string) => never;

/** A URL's text in an error message: cut, and quoted as JSON so that control characters show as escapes. */
export function shownUrl(raw: string): string {
  return JSON.stringify(raw.length > 200 ? `${raw.slice(0, 200)}…` : raw);
}

/** What opening a target may use: the node's HTTP client settings, its name, its log and each kind's settings. */
export interface KindOpenOptions extends ClientOptions {
  log: Logger;
  /** This sidecar's node name (an object store aborts this node's stale multipart uploads). */
  node?: string;
  /** The settings each kind read from its configuration keys, by kind name (SidecarConfig.kindSettings). */
  settings?: Readonly<Record<string, unknown>>;
}

export interface TargetKind {
  /** What the API reports as a target's `kind` (`GET /data/v1/targets`, node info), and its keys' infix. */
  readonly name: string;
  /** The URL schemes of this kind, lower-case, without `:`. */
  readonly schemes: readonly string[];
  /** How a URL of it is written, for messages: `s3://bucket/prefix`. */
  readonly example: string;
  /** What a target of it is, for messages: `a bucket`. */
  readonly role: string;
  /**
   * The target has no sidecar of its own (a bucket): the node that backs up to it answers for it (its catalog,
   * manifests, stats and verify, with `?target=`), and the extension asks that node.
   */
  readonly answeredByNode: boolean;
  /** Only the CLI's own tools may name it (a directory on this machine); never a request or the configuration. */
  readonly cliOnly?: boolean;
  /** Checks a URL of one of `schemes` as written and gives its one spelling; `bad` throws. */
  parse(raw: string, scheme: string, bad: UrlProblem): TargetUrl;
  /** Where its credentials come from, for the message refusing them in a URL: `they come from ...`. */
  readonly credentialsFrom?: string;
  /** Its `druid.backup.<name>.*` keys, in the order of the README's table. */
  readonly keys?: readonly KeySpec[];
  /** The settings its targets open with, from the typed values of its keys. */
  settings?(value: (key: string) => unknown): unknown;
  /** Opens a target of this kind (cheap: no call goes out before the target is used). */
  open(t: TargetUrl, opts: KindOpenOptions): Target;
}
