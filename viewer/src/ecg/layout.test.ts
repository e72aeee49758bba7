import { describe, expect, it } from 'vitest';
import { caliperReading, layOut, panelAt, sampleAt, xOfSample } from './layout';

const TWELVE = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];

describe('layOut', () => {
  it('puts 3×4 leads in 2.5 s columns at 25 mm/s with a 10 s lead II rhythm strip', () => {
    const page = layOut('3x4', TWELVE, 5000, 500, 25, 10);
    expect(page.panels).toHaveLength(13);
    const v4 = page.panels.find(p => p.lead === 'V4');
    expect(v4).toMatchObject({ start: 3750, end: 5000, width: 62.5, x: 8 + 187.5 });
    const rhythm = page.panels.at(-1);
    expect(rhythm).toMatchObject({ lead: 'II', start: 0, end: 5000, width: 250 });
    expect(page.width).toBe(258);
    expect(page.height).toBe(4 * 30);
  });

  it('scales time with the paper speed and strips with the gain', () => {
    const fast = layOut('12x1', TWELVE, 5000, 500, 50, 20);
    expect(fast.panels).toHaveLength(12);
    expect(fast.panels[0]?.width).toBe(500);
    expect(fast.panels[0]?.height).toBe(40);
    const slow = layOut('6x2', TWELVE, 5000, 500, 12.5, 5);
    expect(slow.panels.find(p => p.lead === 'V1')).toMatchObject({ x: 8 + 62.5, start: 2500, end: 5000 });
  });

  it('leaves out leads the record does not have', () => {
    expect(layOut('3x4', ['I', 'II'], 1000, 500, 25, 10).panels.map(p => p.lead)).toEqual(['I', 'II', 'II']);
  });
});

describe('calipers', () => {
  const page = layOut('3x4', TWELVE, 5000, 500, 25, 10);
  const rhythm = page.panels.at(-1)!;

  it('find the panel under the pointer and snap to its nearest sample', () => {
    expect(panelAt(page, 8 + 10, rhythm.baseline + 3)).toBe(rhythm);
    expect(panelAt(page, 2, rhythm.baseline)).toBeUndefined();
    // 25 mm/s at 500 Hz: a sample every 0.05 mm.
    expect(sampleAt(rhythm, 8 + 20.01)).toBe(400);
    expect(sampleAt(rhythm, 8 + 20.03)).toBe(401);
    expect(xOfSample(rhythm, 400)).toBeCloseTo(28, 9);
    expect(sampleAt(rhythm, 1000)).toBe(4999);
  });

  it('read milliseconds, millivolts and the rate', () => {
    expect(caliperReading(400, 800, 100, 1100, 500)).toEqual({ ms: 800, mv: 1, bpm: 75 });
    expect(caliperReading(800, 400, 0, 0, 500).ms).toBe(800);
    expect(caliperReading(5, 5, 0, 0, 500).bpm).toBeNull();
  });
});
