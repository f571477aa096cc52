/**
 * The holdings report is streamed end to end (issue 21): a node's report goes to a target sidecar as a JSON array
 * written as its ids come, and the target checks each id as it arrives and streams it into a file that replaces
 * the previous report only once whole. A report refused part-way (not an array, a bad id, an element too long, a
 * body cut short, a bad node or time) gets a 4xx, and the report already stored stays as it was. A body of valid ids
 * just over the 256 MiB limit gets a 413, sent from a generator so that neither side holds it.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { MAX_HOLDINGS_BYTES } from '../../sidecar/snapshot/records.js';
import { HttpTarget } from '../../sidecar/store/http/target.js';
import { LocalStore } from '../../sidecar/store/local/store.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';

const log = pino({ level: 'silent' });
const N = 200_000;

function id(i: number): string {
  const start = new Date(Date.UTC(2020, 0, 1) + i * 3600_000).toISOString();
  const end = new Date(Date.UTC(2020, 0, 1) + (i + 1) * 3600_000).toISOString();
  return `demo_${start}_${end}_v1`;
}

function* ids(n: number): Generator<string> {
  for (let i = 0; i < n; i++) yield id(i);
}

function hwmMiB(p: SidecarProcess): number {
  return Math.round(Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${p.proc.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
}

describe('holdings reports are streamed, checked as they arrive, and never harm the stored one', () => {
  let sc: SidecarProcess;
  let dir: string;
  let target: HttpTarget;
  const stored = async () => (await LocalStore.open(dir, { log }).snapshots.listHoldings()).find((h) => h.node === 'h1');
  const send = (body: string | ReadableStream, q = `at=${encodeURIComponent(new Date().toISOString())}`, node = 'h1', type = 'application/json') =>
    fetch(`${sc.url}/data/v1/store/holdings/${node}?${q}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${sc.token}`, 'content-type': type },
      body,
      ...(typeof body === 'string' ? {} : { duplex: 'half' }),
    } as RequestInit);

  before(async () => {
    dir = tmpDir('dbk-holdings-stream-');
    sc = await startSidecar(['--store', dir]);
    target = new HttpTarget(sc.url, { token: sc.token });
  });
  after(async () => {
    target.close();
    await sc.stop();
  });

  test(`a report of ${N.toLocaleString('en')} ids, sent from a generator, is stored whole and in order`, async () => {
    const before = hwmMiB(sc);
    const t0 = performance.now();
    await target.snapshots.putHoldings({ node: 'h1', at: new Date().toISOString(), segmentIds: ids(N) });
    const ms = performance.now() - t0;
    const h = await stored();
    assert.equal(h?.segmentIds.length, N);
    assert.equal(h.segmentIds[0], id(0));
    assert.equal(h.segmentIds[N - 1], id(N - 1));
    console.log(JSON.stringify({ holdingsReport: { ids: N, ms: Math.round(ms), targetPeakRssMiB: { before, after: hwmMiB(sc) } } }));
  });

  test('the next good report replaces the stored one', async () => {
    await target.snapshots.putHoldings({ node: 'h1', at: new Date().toISOString(), segmentIds: [id(7), id(8)] });
    assert.deepEqual((await stored())?.segmentIds, [id(7), id(8)]);
  });

  test('a report of valid ids just over the 256 MiB limit: 413, the stored report untouched, no partial file left', { timeout: 600_000 }, async () => {
    await target.snapshots.putHoldings({ node: 'h1', at: new Date().toISOString(), segmentIds: [id(7), id(8)] });
    const prev = await stored();
    // Ids are made as the body is read, in chunks of about 64 KiB, until it is 64 KiB over the limit: a well-formed
    // array of good ids, refused for its size alone.
    const over = MAX_HOLDINGS_BYTES + 65_536;
    let sent = 0;
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= over) {
          c.enqueue(new TextEncoder().encode(']'));
          c.close();
          return;
        }
        let chunk = sent ? '' : '[';
        while (chunk.length < 65_536) chunk += `${i ? ',' : ''}${JSON.stringify(id(i++))}`;
        const b = new TextEncoder().encode(chunk);
        sent += b.length;
        c.enqueue(b);
      },
    });
    const r = await send(body).catch((e: unknown) => new Response(String(e), { status: 499 }));
    const text = await r.text();
    assert.equal(r.status, 413, text);
    assert.match(text, /larger than 268435456 bytes/);
    assert.ok(sent > MAX_HOLDINGS_BYTES, `${sent} bytes sent`);
    for (let k = 0; k < 50 && readdirSync(path.join(dir, 'holdings')).some((n) => n.endsWith('.tmp')); k++) await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(await stored(), prev);
    assert.deepEqual(
      readdirSync(path.join(dir, 'holdings')).filter((n) => n.endsWith('.tmp')),
      [],
    );
    console.log(JSON.stringify({ holdingsOverLimit: { ids: i, bytesSent: sent, targetPeakRssMiB: hwmMiB(sc) } }));
  });

  const hostile: Array<[string, () => Promise<Response>, number, RegExp]> = [
    ['not an array', () => send('{"segmentIds": []}'), 400, /not a JSON array/],
    ['a bad id among good ones', () => send(JSON.stringify([id(1), id(2), '../../etc/passwd', id(3)])), 400, /holdings report/],
    ['an element that is not a string', () => send(JSON.stringify([id(1), { id: id(2) }])), 400, /array of segment ids/],
    ['an element too long', () => send(JSON.stringify([id(1), `demo_${'x'.repeat(5000)}`])), 400, /larger than/],
    ['a body cut short', () => send(`[${JSON.stringify(id(1))},`), 400, /ends before its array does/],
    ['text after the array', () => send(`[${JSON.stringify(id(1))}] []`), 400, /text after its array/],
    ['a node name with a space', () => send('[]', undefined, 'h%201'), 400, /node name/],
    ['a time that is not an instant', () => send('[]', 'at=yesterday'), 400, /not an instant/],
    ['no time', () => send('[]', ''), 400, /at/],
    ['another content type', () => send('[]', undefined, 'h1', 'text/plain'), 415, /./],
    [
      'a body that fails mid-stream',
      () =>
        send(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode(`[${JSON.stringify(id(1))},`));
              c.error(new Error('the node went away'));
            },
          }),
        ).catch((e: unknown) => new Response(String(e), { status: 499 })),
      0,
      /./,
    ],
  ];
  for (const [what, go, status, msg] of hostile)
    test(`refused: ${what}; the stored report is untouched and no partial file is left`, async () => {
      const prev = await stored();
      const r = await go();
      const text = await r.text();
      if (status) assert.equal(r.status, status, text);
      else assert.ok(r.status >= 400, `${r.status} ${text}`);
      if (status) assert.match(text, msg);
      // The sidecar has finished with the request (its temporary file removed) once it answers; a body that failed
      // on the sender's side may be seen as failed a moment later.
      for (let i = 0; i < 50 && readdirSync(path.join(dir, 'holdings')).some((n) => n.endsWith('.tmp')); i++) await new Promise((res) => setTimeout(res, 20));
      assert.deepEqual(await stored(), prev);
      assert.deepEqual(
        readdirSync(path.join(dir, 'holdings')).filter((n) => n.endsWith('.tmp')),
        [],
      );
    });
});
