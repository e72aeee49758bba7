// Scrolling stacks together by anatomy. When the reader links viewports,
// each keeps its offset (mm along the slice normal) from the active one at
// that moment, so a prior on another table position stays aligned to
// the level the reader matched; scrolling the active stack then moves each
// linked stack to its slice nearest the same level.

/** The index of the position nearest `wanted`, or null when no image has a position. */
export function nearestIndex(positions: readonly (number | null)[], wanted: number): number | null {
  let best: number | null = null;
  let distance = Number.POSITIVE_INFINITY;
  positions.forEach((position, index) => {
    if (position === null) return;
    const d = Math.abs(position - wanted);
    if (d < distance) {
      distance = d;
      best = index;
    }
  });
  return best;
}

/** Offsets of each viewport from the active one when linked (null: cannot follow, no positions). */
export function linkOffsets(positionsNow: readonly (number | null)[], active: number): (number | null)[] {
  const reference = positionsNow[active];
  return positionsNow.map(p => (p === null || reference === null || reference === undefined ? null : p - reference));
}
