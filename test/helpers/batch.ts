/** Bodies of uploads as a sender makes them, for tests that speak to a store's routes directly. */
import { Readable } from 'node:stream';
import { packSegment } from '../../sidecar/archive/pack.js';
import { encodeBatchHeader } from '../../sidecar/store/http/batch.js';

/** A single PUT's body (`PUT /data/v1/store/segments/{id}`), as the sender packs it. */
export async function packedUpload(id: string, files: Record<string, Buffer>, node = 'n1'): Promise<Buffer> {
  const p = packSegment({
    segmentId: id,
    descriptor: null,
    node,
    files: Object.entries(files).map(([name, body]) => ({ name, size: body.length, open: () => Readable.from([body]) })),
  });
  const parts: Buffer[] = [];
  for await (const c of p.stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A batch's body (`POST /data/v1/store/batch`): its header line, then each segment's PUT body. */
export function batchBody(parts: Array<[string, Buffer]>): Buffer {
  return Buffer.concat([encodeBatchHeader(parts.map(([segmentId, b]) => ({ segmentId, length: b.length }))), ...parts.map(([, b]) => b)]);
}

/** A `version.bin` as Druid writes it (format 9). */
export const VERSION_BIN = Buffer.from([0, 0, 0, 9]);

/** The id of an hour-long segment of `dataSource` on 2015-09-12 starting at `hour`. */
export const hourSegmentId = (dataSource: string, hour: number): string =>
  `${dataSource}_2015-09-12T${String(hour).padStart(2, '0')}:00:00.000Z_2015-09-12T${String(hour + 1).padStart(2, '0')}:00:00.000Z_2024-01-01T00:00:01.234Z`;

/** One segment's outcome in a batch's answer, as a test reads it (any field may be missing). */
export interface AnsweredOutcome {
  segmentId: string;
  outcome: string;
  status?: number;
  error?: { code: string; message: string };
}
