import assert from 'node:assert/strict';
import { test } from 'node:test';
import { transferGroups } from '../../../sidecar/backup/passive.js';
import { SMALL_GROUP, SMALL_SEGMENT_BYTES } from '../../../sidecar/backup/sender.js';

const MiB = 1024 * 1024;

test('small segments go in groups of at most SMALL_GROUP (a batch: 64) and 8 MiB, a large one alone, each segment once', () => {
  assert.equal(SMALL_GROUP, 64);
  const sizes = [
    ...Array.from({ length: 150 }, () => 1024),
    5 * MiB,
    ...Array.from({ length: 3 }, () => 1024),
    ...Array.from({ length: 12 }, () => SMALL_SEGMENT_BYTES - 1),
    SMALL_SEGMENT_BYTES,
  ];
  const segs = sizes.map((size, i) => ({ i, size }));
  const groups = transferGroups(segs);
  assert.deepEqual(
    groups
      .flat()
      .map((s) => s.i)
      .sort((a, b) => a - b),
    segs.map((s) => s.i),
  );
  for (const g of groups) {
    assert.ok(g.length >= 1);
    if (g.some((s) => s.size >= SMALL_SEGMENT_BYTES)) assert.equal(g.length, 1, 'a large segment travels alone');
    else {
      assert.ok(g.length <= SMALL_GROUP, `group of ${g.length}`);
      assert.ok(
        g.reduce((n, s) => n + s.size, 0) <= 8 * MiB,
        'group within 8 MiB',
      );
    }
  }
  // 150 tiny ones: 64 + 64 + 22 left open; the 5 MiB one goes alone, the small ones after it join the open group
  // (22 + 3 + 7 of the near-1 MiB ones, up to 8 MiB), the other 5 of those make a group, the last one goes alone.
  assert.deepEqual(
    groups.map((g) => g.length),
    [64, 64, 1, 32, 1, 5],
  );
  assert.deepEqual(transferGroups([]), []);
});
