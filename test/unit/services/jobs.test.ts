import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import type { SidecarEvent } from '../../../sidecar/api.js';
import { TokenCheck } from '../../../sidecar/server/auth.js';
import { EventBus } from '../../../sidecar/services/events.js';
import { HISTORY, JobRegistry, MAX_ERROR_BYTES, REQUEST_SUMMARY_BYTES, summarizeRequest } from '../../../sidecar/services/jobs.js';
import { paginate } from '../../../sidecar/services/paging.js';

const log = pino({ level: 'silent' });
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'dbk-jobs-'));

test('a job runs, reports progress and errors, publishes events and ends in the right state', async () => {
  const events = new EventBus();
  const seen: SidecarEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const jobs = new JobRegistry({ events, log });
  const ok = jobs.create({
    type: 'backup',
    request: { target: 't' },
    run: async (ctx) => {
      ctx.setTotals(2, 10);
      ctx.addBytes(10);
      ctx.segmentDone('done');
      ctx.segmentDone('skipped');
      return { stored: 1 };
    },
  });
  assert.equal(ok.state, 'queued');
  const done = (await jobs.wait(ok.id))!;
  assert.equal(done.state, 'succeeded');
  assert.deepEqual(done.result, { stored: 1 });
  assert.equal(done.progress.segmentsDone + done.progress.segmentsSkipped, 2);
  const states = seen.filter((e) => e.type === 'job').map((e) => (e.type === 'job' ? e.job.state : ''));
  assert.deepEqual([states[0], states.at(-1)], ['queued', 'succeeded']);

  const failing = jobs.create({ type: 'backup', request: {}, run: async (ctx) => ctx.segmentFailed('s1', 'target said no') });
  assert.equal((await jobs.wait(failing.id))!.state, 'failed');
  const crashing = jobs.create({ type: 'verify', request: {}, run: async () => Promise.reject(new Error('boom')) });
  const crashed = (await jobs.wait(crashing.id))!;
  assert.equal(crashed.state, 'failed');
  assert.deepEqual(crashed.errors, [{ message: 'boom' }]);

  const slow = jobs.create({
    type: 'restore',
    request: {},
    run: (ctx) =>
      new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => resolve(undefined));
      }),
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(jobs.get(slow.id)!.state, 'running');
  jobs.cancel(slow.id);
  assert.equal((await jobs.wait(slow.id))!.state, 'cancelled');
  assert.throws(() => jobs.cancel('backup-x-00000000'), /no job/);
  assert.deepEqual(
    jobs.list({ type: 'backup' }).map((j) => j.id),
    [failing.id, ok.id],
  );
});

test('the history is bounded, saved under stateDir, and a job cut off by a stop reads back as failed', async () => {
  const dir = tmp();
  const jobs = new JobRegistry({ stateDir: dir, events: new EventBus(), log });
  for (let i = 0; i < HISTORY + 20; i++) await jobs.wait(jobs.create({ type: 'backup', request: { i }, run: async () => undefined }).id);
  const hanging = jobs.create({ type: 'backup', request: {}, run: () => new Promise(() => undefined) });
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(jobs.list().length <= HISTORY + 1);
  // Simulate a crash: the file as last saved while the job ran.
  await new Promise((r) => setTimeout(r, 300));
  const again = new JobRegistry({ stateDir: dir, events: new EventBus(), log });
  const back = again.get(hanging.id)!;
  assert.equal(back.state, 'failed');
  assert.match(back.errors.at(-1)!.message, /stopped while this job ran/);
  assert.equal(again.list().length, jobs.list().length);
  writeFileSync(path.join(dir, 'jobs.json'), '{not json');
  assert.equal(new JobRegistry({ stateDir: dir, events: new EventBus(), log }).list().length, 0, 'an unreadable history is dropped, not fatal');
});

test('token check and paging', () => {
  const t = new TokenCheck('a-long-secret-token-value');
  assert.doesNotThrow(() => t.check('Bearer a-long-secret-token-value'));
  assert.doesNotThrow(() => t.check('bearer a-long-secret-token-value'));
  for (const h of [undefined, '', 'Bearer', 'Bearer a-long-secret-token-valuE', 'Basic a-long-secret-token-value', 'Bearer a-long-secret-token-value extra'])
    assert.throws(() => t.check(h), /Authorization|wrong token|Bearer/, String(h));
  const items = Array.from({ length: 25 }, (_, i) => ({ id: `s${String(i).padStart(2, '0')}` })).reverse();
  const p1 = paginate(items, (x) => x.id, 10);
  assert.equal(p1.total, 25);
  assert.equal(p1.items[0]!.id, 's00');
  const p3 = paginate(items, (x) => x.id, 10, paginate(items, (x) => x.id, 10, p1.nextCursor).nextCursor);
  assert.deepEqual(
    p3.items.map((x) => x.id),
    ['s20', 's21', 's22', 's23', 's24'],
  );
  assert.equal(p3.nextCursor, undefined);
  assert.throws(() => paginate(items, (x) => x.id, 10, 'bogus!'), /cursor/);
});

test('a job keeps a summary of its request bounded in bytes, with the length of each list it cut', () => {
  const ids = Array.from({ length: 100_000 }, (_, i) => `wiki_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_v${i}`);
  const summary = summarizeRequest({ segmentIds: ids, dataSource: 'wiki', target: 'http://t:8484', dryRun: false, huge: 'x'.repeat(10_000) });
  const bytes = Buffer.byteLength(JSON.stringify(summary));
  assert.ok(bytes <= REQUEST_SUMMARY_BYTES, `${bytes} bytes`);
  assert.equal(summary.dataSource, 'wiki');
  assert.equal(summary.target, 'http://t:8484');
  assert.equal(summary.dryRun, false);
  assert.ok((summary.segmentIds as string[]).length > 10);
  assert.deepEqual((summary.segmentIds as string[]).slice(0, 2), ids.slice(0, 2));
  assert.equal((summary.truncated as Record<string, number>).segmentIds, 100_000);
  assert.equal((summary.huge as string).length, 1101);
  // A small request is kept as it is.
  assert.deepEqual(summarizeRequest({ segmentIds: ['a', 'b'], dataSource: 'd' }), { segmentIds: ['a', 'b'], dataSource: 'd' });
  // A list of items each too large to keep.
  const big = summarizeRequest({ target: [{ url: 'x'.repeat(5000) }] });
  assert.deepEqual(big, { target: [], truncated: { target: 1 } });
});

test('the registry keeps errors bounded in bytes and saves the history without blocking, coalescing changes', async () => {
  const dir = tmp();
  const jobs = new JobRegistry({ stateDir: dir, events: new EventBus(), log });
  const job = jobs.create({
    type: 'backup',
    request: { segmentIds: Array.from({ length: 50_000 }, (_, i) => `id-${i}`) },
    run: async (ctx) => {
      for (let i = 0; i < 5000; i++) ctx.segmentFailed(`id-${i}`, 'y'.repeat(2000));
    },
  });
  // Nothing is written while the job is created: the history is saved later, off the event loop.
  assert.equal(existsSync(path.join(dir, 'jobs.json')), false);
  const done = (await jobs.wait(job.id))!;
  assert.equal(done.progress.segmentsFailed, 5000);
  const errorBytes = done.errors.reduce((n, e) => n + (e.segmentId?.length ?? 0) + e.message.length, 0);
  assert.ok(errorBytes <= MAX_ERROR_BYTES, `${errorBytes} bytes of errors`);
  assert.ok(done.errors.length > 10);
  await jobs.close();
  const saved = readFileSync(path.join(dir, 'jobs.json'), 'utf8');
  assert.ok(saved.length < REQUEST_SUMMARY_BYTES + MAX_ERROR_BYTES * 2, `${saved.length} bytes saved`);
  const back = new JobRegistry({ stateDir: dir, events: new EventBus(), log }).get(job.id)!;
  assert.equal(back.state, 'failed');
  assert.equal((back.request.truncated as Record<string, number>).segmentIds, 50_000);
});
