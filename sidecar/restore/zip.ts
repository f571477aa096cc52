/**
 * Writes a segment as `index.zip` for deep storage, streaming, every file verified as it passes. yazl writes a
 * zip without knowing sizes or CRCs up front (data descriptors); entries are deflated, as Druid's own zip is,
 * because Java's `ZipInputStream`, which Druid's local puller reads index.zip with, accepts data descriptors
 * only on deflated entries.
 */
import { createWriteStream } from 'node:fs';
import { finished, pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import type { Manifest } from '../store/manifest.js';
import type { SegmentReader } from '../store/target.js';
import type { ReceiveOptions } from './receive.js';
import { checkedStream, expectedFiles, fsyncDir } from './receive.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export async function receiveZip(reader: SegmentReader, planned: Manifest, zipFile: string, opts: ReceiveOptions = {}): Promise<void> {
  const zip = new yazl.ZipFile();
  const out = createWriteStream(zipFile, { flags: 'wx', mode: 0o644 });
  const written = pipeline(zip.outputStream, out);
  let failure: unknown;
  const failed = new Promise<never>((_, reject) => {
    zip.on('error', reject);
    written.catch(reject);
  });
  failed.catch((e) => (failure = e));
  try {
    for await (const { file, want } of expectedFiles(reader, planned)) {
      const checked = checkedStream(planned.segmentId, file, want, opts);
      zip.addReadStream(checked, want.name, { size: want.size, compress: true, mode: 0o100644 });
      // yazl reads entries one after another; wait for this one before asking the target for the next.
      await Promise.race([finished(checked), failed]);
      if (failure) throw failure;
    }
    zip.end();
    await Promise.race([written, failed]);
    const fh = await fs.open(zipFile, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsyncDir(path.dirname(zipFile));
  } catch (e) {
    out.destroy();
    throw e;
  }
}
