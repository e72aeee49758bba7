import { describe, expect, it } from 'vitest';
import { linkOffsets, nearestIndex } from './sync';

describe('synchronised scrolling', () => {
  it('finds the slice nearest a level, ignoring images without a position', () => {
    const positions = [0, -5, -10, -15, null];
    expect(nearestIndex(positions, -11)).toBe(2);
    expect(nearestIndex(positions, 40)).toBe(0);
    expect(nearestIndex([null, null], 0)).toBeNull();
  });

  it('keeps the offset the reader linked at, so a prior on another table position stays aligned', () => {
    // Active at -20 mm; the prior's matching slice was at +130 mm when linked.
    const offsets = linkOffsets([-20, 130, null], 0);
    expect(offsets).toEqual([0, 150, null]);
    const prior = [160, 155, 150, 145, 140, 135, 130, 125, 120];
    // The active stack moves to -30 mm: the prior follows to 120 mm.
    expect(nearestIndex(prior, -30 + (offsets[1] ?? 0))).toBe(8);
  });
});
