import { describe, expect, it } from 'vitest';
import { WINDOW_PRESETS, presetForKey, windowOf, windowRange } from './presets';

describe('window presets', () => {
  it('are the eight a reading room expects, on keys 1 to 8', () => {
    expect(WINDOW_PRESETS.map(p => `${p.key}:${p.id}:${p.width}/${p.center}`)).toEqual([
      '1:brain:80/40',
      '2:subdural:200/75',
      '3:stroke:40/40',
      '4:lung:1500/-600',
      '5:mediastinum:350/50',
      '6:abdomen:400/40',
      '7:liver:150/30',
      '8:bone:2000/500',
    ]);
    expect(presetForKey('4')?.id).toBe('lung');
    expect(presetForKey('9')).toBeUndefined();
  });
  it('turn into the DICOM linear window’s range and back', () => {
    expect(windowRange(80, 40)).toEqual({ lower: 0, upper: 79 });
    expect(windowOf(0, 79)).toEqual({ width: 80, center: 40 });
    const { lower, upper } = windowRange(1500, -600);
    expect(windowOf(lower, upper)).toEqual({ width: 1500, center: -600 });
  });
});
