/**
 * The `file` kind: a local store directory opened in this process (`file:///dir`), which only the CLI's tools name:
 * opening one makes a store there and empties its .tmp, so nothing a request or the configuration names can be one.
 */
import { fileURLToPath } from 'node:url';
import type { TargetKind, TargetUrl, UrlProblem } from '../kind.js';
import { shownUrl } from '../kind.js';
import { LocalStore } from './store.js';

function parse(raw: string, _scheme: string, bad: UrlProblem): TargetUrl {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return bad(`${shownUrl(raw)} is not a URL (expected file:///dir)`);
  }
  if (u.host && u.host !== 'localhost') bad(`${shownUrl(raw)}: a file:// URL names a local directory (file:///path)`);
  if (u.search || u.hash) bad(`${shownUrl(raw)}: a file:// URL takes no query or fragment`);
  const dir = fileURLToPath(u);
  const path = u.pathname.replace(/\/+$/, '');
  return { url: `file://${path || '/'}`, scheme: 'file', host: '', port: 0, path, dir };
}

export const localKind: TargetKind = {
  name: 'file',
  schemes: ['file'],
  example: 'file:///dir',
  role: 'a store directory on this machine',
  answeredByNode: false,
  cliOnly: true,
  parse,
  open: (t, opts) => LocalStore.open(t.dir!, { log: opts.log }),
};
