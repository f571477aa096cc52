import assert from 'node:assert/strict';
import { test } from 'node:test';
import { transferGroups } from '../../../sidecar/backup/passive.js';
import { SMALL_SEGMENT_BYTES } from '../../../sidecar/backup/sender.js';

const MiB = 1024 * 1024;

test('small segments go in groups of at most 16 and 8 MiB, a large one alone, each segment once', () => {
  const sizes = [
    ...Array.from({ length: 40 }, () => 1024),
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
      assert.ok(g.length <= 16, `group of ${g.length}`);
      assert.ok(
        g.reduce((n, s) => n + s.size, 0) <= 8 * MiB,
        'group within 8 MiB',
      );
    }
  }
  // 40 tiny ones: 16 + 16 + 8 left open; the 5 MiB one goes alone, the small ones after it join the open group
  // (8 + 3 + 5 of the near-1 MiB ones), the other 7 of those make a group of about 7 MiB, the last one goes alone.
  assert.deepEqual(
    groups.map((g) => g.length),
    [16, 16, 1, 16, 1, 7],
  );
  assert.deepEqual(transferGroups([]), []);
});
