// Window presets a radiologist expects on keys 1–8, width/centre in HU.

export interface WindowPreset {
  key: string;
  id: 'brain' | 'subdural' | 'stroke' | 'lung' | 'mediastinum' | 'abdomen' | 'liver' | 'bone';
  width: number;
  center: number;
}

export const WINDOW_PRESETS: readonly WindowPreset[] = [
  { key: '1', id: 'brain', width: 80, center: 40 },
  { key: '2', id: 'subdural', width: 200, center: 75 },
  { key: '3', id: 'stroke', width: 40, center: 40 },
  { key: '4', id: 'lung', width: 1500, center: -600 },
  { key: '5', id: 'mediastinum', width: 350, center: 50 },
  { key: '6', id: 'abdomen', width: 400, center: 40 },
  { key: '7', id: 'liver', width: 150, center: 30 },
  { key: '8', id: 'bone', width: 2000, center: 500 },
];

export function presetForKey(key: string): WindowPreset | undefined {
  return WINDOW_PRESETS.find(p => p.key === key);
}

/**
 * The stored-value range a window shows, the DICOM linear function's ends
 * (PS3.3 C.11.2.1.2.1): centre − 0.5 − (width − 1)/2 to centre − 0.5 + (width − 1)/2.
 */
export function windowRange(width: number, center: number): { lower: number; upper: number } {
  const half = (width - 1) / 2;
  return { lower: center - 0.5 - half, upper: center - 0.5 + half };
}

/** The window (width, centre) a stored-value range shows; the inverse of {@link windowRange}. */
export function windowOf(lower: number, upper: number): { width: number; center: number } {
  return { width: upper - lower + 1, center: (lower + upper) / 2 + 0.5 };
}
