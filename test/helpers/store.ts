/** Reading a local store the way a test checks it: straight from disk, without any sidecar. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The directory of a segment in a local store, found by its manifest. */
export function storedSegmentDir(storeDir: string, segmentId: string): string {
  const walk = (dir: string): string | undefined => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        const found = walk(p);
        if (found) return found;
      } else if (e.name === 'manifest.json' && JSON.parse(readFileSync(p, 'utf8')).segmentId === segmentId) return dir;
    }
    return undefined;
  };
  const d = walk(path.join(storeDir, 'segments'));
  if (!d) throw new Error(`${segmentId} is not in ${storeDir}`);
  return d;
}
