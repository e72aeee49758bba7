// Where each lead goes on the ECG page, in millimetres of paper, for the
// three layouts ECG doctors read: 3×4 with a lead II rhythm strip, 6×2 and
// 12×1. Time runs left to right at the paper speed (25 mm/s by default,
// 12.5 or 50), voltage up at the gain (10 mm/mV by default, 5 or 20), so
// one small square is 1 mm: 40 ms and 0.1 mV at the defaults.

export type EcgLayout = '3x4' | '6x2' | '12x1';
export const SPEEDS = [12.5, 25, 50] as const;
export const GAINS = [5, 10, 20] as const;
export type Speed = (typeof SPEEDS)[number];
export type Gain = (typeof GAINS)[number];

/** One strip of one lead on the page. */
export interface Panel {
  lead: string;
  /** Samples `[start, end)` of the lead drawn in this panel. */
  start: number;
  end: number;
  /** Left edge of the trace and its baseline (0 mV), mm from the page's top left. */
  x: number;
  baseline: number;
  /** Width of the trace, mm. */
  width: number;
  /** Height of the strip the trace is drawn in, mm (the baseline in its middle). */
  height: number;
}

export interface Page {
  width: number;
  height: number;
  panels: Panel[];
  /** Width left at each row's start for the 1 mV calibration pulse, mm. */
  calibration: number;
}

const ROWS_3X4 = [
  ['I', 'aVR', 'V1', 'V4'],
  ['II', 'aVL', 'V2', 'V5'],
  ['III', 'aVF', 'V3', 'V6'],
];
const COLUMNS_6X2 = [
  ['I', 'II', 'III', 'aVR', 'aVL', 'aVF'],
  ['V1', 'V2', 'V3', 'V4', 'V5', 'V6'],
];
const TWELVE = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];
/** The calibration pulse is 5 mm wide at any speed (0.2 s at 25 mm/s), with a margin. */
const CALIBRATION_MM = 8;

/**
 * Lays out `leads` (those present; missing ones are left out) for a
 * recording of `samples` samples at `rate` Hz. Strip heights follow the
 * gain so that ±1.5 mV fits in 3×4 and 6×2 rows and ±1 mV in 12×1 rows.
 */
export function layOut(layout: EcgLayout, leads: readonly string[], samples: number, rate: number, speed: Speed, gain: Gain): Page {
  const has = new Set(leads);
  const seconds = samples / rate;
  const traceWidth = seconds * speed;
  const panels: Panel[] = [];
  const width = CALIBRATION_MM + traceWidth;
  let y = 0;
  const row = (height: number, strips: { lead: string; from: number; to: number }[]) => {
    const baseline = y + height / 2;
    for (const strip of strips) {
      if (!has.has(strip.lead)) continue;
      const start = Math.round((strip.from / traceWidth) * samples);
      const end = Math.round((strip.to / traceWidth) * samples);
      panels.push({ lead: strip.lead, start, end, x: CALIBRATION_MM + strip.from, baseline, width: strip.to - strip.from, height });
    }
    y += height;
  };
  if (layout === '3x4') {
    const height = 3 * gain;
    const column = traceWidth / 4;
    for (const leadsOfRow of ROWS_3X4) row(height, leadsOfRow.map((lead, i) => ({ lead, from: i * column, to: (i + 1) * column })));
    row(height, [{ lead: 'II', from: 0, to: traceWidth }]);
  } else if (layout === '6x2') {
    const height = 3 * gain;
    const column = traceWidth / 2;
    for (let r = 0; r < 6; r++) {
      row(height, COLUMNS_6X2.map((leadsOfColumn, c) => ({ lead: leadsOfColumn[r] ?? '', from: c * column, to: (c + 1) * column })));
    }
  } else {
    const height = 2 * gain;
    for (const lead of TWELVE) row(height, [{ lead, from: 0, to: traceWidth }]);
  }
  return { width, height: y, panels, calibration: CALIBRATION_MM };
}

/** The panel under a point of the page (mm), if any. */
export function panelAt(page: Page, x: number, y: number): Panel | undefined {
  return page.panels.find(p => x >= p.x && x <= p.x + p.width && Math.abs(y - p.baseline) <= p.height / 2);
}

/** The sample of `panel` nearest to page position `x` (mm): calipers land on samples. */
export function sampleAt(panel: Panel, x: number): number {
  const fraction = Math.min(1, Math.max(0, (x - panel.x) / panel.width));
  return Math.min(panel.end - 1, Math.max(panel.start, panel.start + Math.round(fraction * (panel.end - panel.start))));
}

/** Page position (mm) of a sample of `panel`. */
export function xOfSample(panel: Panel, sample: number): number {
  return panel.x + ((sample - panel.start) / (panel.end - panel.start)) * panel.width;
}

/** What two calipers read: interval (ms), amplitude difference (mV), and the rate the interval is (bpm). */
export function caliperReading(first: number, second: number, firstUv: number, secondUv: number, rate: number) {
  const ms = (Math.abs(second - first) * 1000) / rate;
  return { ms, mv: (secondUv - firstUv) / 1000, bpm: ms > 0 ? 60_000 / ms : null };
}
