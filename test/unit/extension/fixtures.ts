/** API answers as a sidecar gives them, for the tree model's tests. */
import type { Job, SegmentInfo, StoredSegment } from '../../../sidecar/api.js';

export const NOW = Date.parse('2024-06-01T12:00:00.000Z');

export function day(i: number): string {
  const start = new Date(Date.UTC(2024, 0, 1) + i * 86_400_000).toISOString();
  const end = new Date(Date.UTC(2024, 0, 1) + (i + 1) * 86_400_000).toISOString();
  return `${start}/${end}`;
}

export function segment(dataSource: string, dayIndex: number, partition = 0, over: Partial<SegmentInfo> = {}): SegmentInfo {
  const interval = day(dayIndex);
  const [start, end] = interval.split('/');
  const version = '2024-05-01T00:00:00.000Z';
  const id = `${dataSource}_${start}_${end}_${version}${partition ? `_${partition}` : ''}`;
  return {
    id,
    dataSource,
    interval,
    version,
    partition,
    size: 262_144,
    files: [
      { name: 'version.bin', size: 4 },
      { name: 'meta.smoosh', size: 140 },
      { name: '00000.smoosh', size: 262_000 },
    ],
    layout: 'nested',
    state: 'complete',
    hasInfoFile: true,
    backup: { state: 'backedUp', target: 'http://127.0.0.1:8485', at: '2024-06-01T11:55:00.000Z', digest: 'ab'.repeat(32) },
    ...over,
  };
}

export function stored(s: SegmentInfo, over: Partial<StoredSegment> = {}): StoredSegment {
  return {
    segmentId: s.id,
    dataSource: s.dataSource,
    interval: s.interval,
    version: s.version,
    partition: s.partition,
    size: s.size,
    fileCount: s.files.length,
    digest: 'cd'.repeat(32),
    sources: ['historical-1:8083'],
    conflicts: [],
    createdAt: '2024-06-01T10:00:00.000Z',
    updatedAt: '2024-06-01T11:00:00.000Z',
    ...over,
  };
}

export function job(id: string, over: Partial<Job> = {}): Job {
  return {
    id,
    type: 'restore',
    state: 'running',
    target: 'http://127.0.0.1:8485',
    request: { dataSource: 'wikipedia' },
    progress: { segmentsTotal: 4, segmentsDone: 1, segmentsSkipped: 1, segmentsFailed: 0, bytesTotal: 1000, bytesDone: 420 },
    errors: [],
    createdAt: '2024-06-01T11:59:00.000Z',
    startedAt: '2024-06-01T11:59:01.000Z',
    ...over,
  };
}
