import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import type { SidecarEvent } from '../../../sidecar/api.js';
import { TokenCheck } from '../../../sidecar/server/auth.js';
import { EventBus } from '../../../sidecar/server/events.js';
import { HISTORY, JobRegistry } from '../../../sidecar/server/jobs.js';
import { paginate } from '../../../sidecar/server/paging.js';

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
