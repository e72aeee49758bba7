// Draws an ECG page on a canvas the way paper shows it: a 1 mm grid with
// 5 mm squares in bold, a 1 mV calibration pulse at each row's start, the
// leads as laid out, their names, and the calipers.

import type { Page, Panel } from './layout';

export interface Trace {
  /** Microvolts per lead label. */
  leads: ReadonlyMap<string, Int32Array | number[]>;
  gain: number;
}

export interface Caliper {
  panel: Panel;
  sample: number;
}

const PAPER = '#fffaf7';
const FINE = 'rgba(240, 128, 128, 0.35)';
const BOLD = 'rgba(220, 70, 70, 0.6)';
const INK = '#111';
const CALIPER = '#1f6feb';

/** `scale` is CSS pixels per millimetre; the canvas is sized here for the device's pixel ratio. */
export function drawPage(canvas: HTMLCanvasElement, page: Page, trace: Trace, scale: number, calipers: readonly Caliper[]): void {
  const ratio = window.devicePixelRatio || 1;
  const cssWidth = Math.ceil(page.width * scale);
  const cssHeight = Math.ceil(page.height * scale);
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  canvas.width = Math.ceil(cssWidth * ratio);
  canvas.height = Math.ceil(cssHeight * ratio);
  const context = canvas.getContext('2d');
  if (!context) return;
  const px = scale * ratio; // device pixels per mm
  context.fillStyle = PAPER;
  context.fillRect(0, 0, canvas.width, canvas.height);

  // The grid: every millimetre, every fifth bold.
  for (const [step, colour, lineWidth] of [
    [1, FINE, Math.max(1, ratio * 0.5)],
    [5, BOLD, Math.max(1, ratio)],
  ] as const) {
    context.strokeStyle = colour;
    context.lineWidth = lineWidth;
    context.beginPath();
    for (let x = 0; x <= page.width + 1e-9; x += step) {
      const at = Math.round(x * px) + 0.5;
      context.moveTo(at, 0);
      context.lineTo(at, canvas.height);
    }
    for (let y = 0; y <= page.height + 1e-9; y += step) {
      const at = Math.round(y * px) + 0.5;
      context.moveTo(0, at);
      context.lineTo(canvas.width, at);
    }
    context.stroke();
  }

  context.strokeStyle = INK;
  context.lineWidth = Math.max(1, 1.2 * ratio);
  context.lineJoin = 'round';
  // A calibration pulse (1 mV high, 5 mm wide) at the start of every row.
  const baselines = [...new Set(page.panels.map(p => p.baseline))];
  context.beginPath();
  for (const baseline of baselines) {
    const y0 = baseline * px;
    const y1 = (baseline - trace.gain) * px;
    context.moveTo(1 * px, y0);
    context.lineTo(2 * px, y0);
    context.lineTo(2 * px, y1);
    context.lineTo(7 * px, y1);
    context.lineTo(7 * px, y0);
    context.lineTo(8 * px, y0);
  }
  context.stroke();

  // The traces: microvolts to millimetres at the gain (10 mm/mV: 1 µV is 0.01 mm).
  for (const panel of page.panels) {
    const samples = trace.leads.get(panel.lead);
    if (!samples) continue;
    const perSample = panel.width / (panel.end - panel.start);
    const mmPerUv = trace.gain / 1000;
    context.save();
    context.beginPath();
    context.rect(panel.x * px, (panel.baseline - panel.height / 2) * px, panel.width * px, panel.height * px);
    context.clip();
    context.beginPath();
    for (let i = panel.start; i < panel.end; i++) {
      const x = (panel.x + (i - panel.start) * perSample) * px;
      const y = (panel.baseline - (samples[i] ?? 0) * mmPerUv) * px;
      if (i === panel.start) context.moveTo(x, y);
      else context.lineTo(x, y);
    }
    context.stroke();
    context.restore();
    context.fillStyle = INK;
    context.font = `${Math.round(3.2 * px)}px system-ui, sans-serif`;
    context.fillText(panel.lead, (panel.x + 1) * px, (panel.baseline - panel.height / 2 + 4) * px);
    if (panel.start > 0) {
      // A lead change within the row is marked as carts mark it.
      context.beginPath();
      context.moveTo(panel.x * px, (panel.baseline - 2) * px);
      context.lineTo(panel.x * px, (panel.baseline + 2) * px);
      context.stroke();
    }
  }

  // Calipers: a vertical line through the strip at each snapped sample.
  context.strokeStyle = CALIPER;
  context.lineWidth = Math.max(1, 1.5 * ratio);
  context.setLineDash([4 * ratio, 3 * ratio]);
  for (const caliper of calipers) {
    const { panel } = caliper;
    const x = (panel.x + ((caliper.sample - panel.start) / (panel.end - panel.start)) * panel.width) * px;
    context.beginPath();
    context.moveTo(x, (panel.baseline - panel.height / 2) * px);
    context.lineTo(x, (panel.baseline + panel.height / 2) * px);
    context.stroke();
  }
  context.setLineDash([]);
}
