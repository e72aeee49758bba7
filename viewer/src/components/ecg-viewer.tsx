// The ECG doctor's view of a resting ECG: the 12-lead tracing drawn here
// from the samples on a millimetre grid (layout, paper speed and gain
// switchable), calipers that snap to samples and read ms, mV and bpm, the
// measurements (Telediag's beside the cart's), the cart's statements, and
// what to be wary of (low sampling rate, lead off, noise).

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, api } from '../api';
import { useApp } from '../context';
import type { MessageKey } from '../i18n';
import { type Caliper, drawPage } from '../ecg/draw';
import { type EcgLayout, GAINS, type Gain, SPEEDS, type Speed, caliperReading, layOut, panelAt, sampleAt } from '../ecg/layout';

interface EcgSamples {
  sampling_rate_hz: number;
  samples_per_lead: number;
  acquired: string | null;
  format: string;
  /** The cart's format, when the stored ECG is the centre's DICOM conversion of it. */
  received_as?: string | null;
  leads: { label: string; derived: boolean; microvolts: number[] }[];
  warnings: string[];
}

type Numbers = Record<string, number | null | undefined>;
interface EcgAnalysis {
  measurements: Numbers;
  device: Numbers;
  device_statements: string[];
  warnings: string[];
  qrs_samples: number[];
  rhythm?: { regular?: boolean | null };
}

/** CSS pixels in a millimetre (CSS fixes 96 px to the inch). */
const TRUE_MM = 96 / 25.4;

/** Rows of the measurements table: label, Telediag's key, the cart's key, unit. */
const ROWS: [MessageKey, string, string, string][] = [
  ['ecg.m.hr', 'hr_bpm', 'hr_bpm', 'bpm'],
  ['ecg.m.rr', 'rr_ms', 'rr_ms', 'ms'],
  ['ecg.m.pr', 'pr_ms', 'pr_ms', 'ms'],
  ['ecg.m.p', 'p_ms', 'p_ms', 'ms'],
  ['ecg.m.qrs', 'qrs_ms', 'qrs_ms', 'ms'],
  ['ecg.m.qt', 'qt_ms', 'qt_ms', 'ms'],
  ['ecg.m.qtc', 'qtc_bazett_ms', 'qtc_ms', 'ms'],
  ['ecg.m.pAxis', 'p_axis_deg', 'p_axis_deg', '°'],
  ['ecg.m.qrsAxis', 'qrs_axis_deg', 'qrs_axis_deg', '°'],
  ['ecg.m.tAxis', 't_axis_deg', 't_axis_deg', '°'],
];

export function EcgViewer(props: { sop: string }) {
  const { t } = useApp();
  const [samples, setSamples] = useState<EcgSamples | null>(null);
  const [analysis, setAnalysis] = useState<EcgAnalysis | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [layout, setLayout] = useState<EcgLayout>('3x4');
  const [speed, setSpeed] = useState<Speed>(25);
  const [gain, setGain] = useState<Gain>(10);
  const [fit, setFit] = useState(true);
  const [calipers, setCalipers] = useState<Caliper[]>([]);
  const [width, setWidth] = useState(0);
  const canvas = useRef<HTMLCanvasElement>(null);
  const scroller = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const sop = encodeURIComponent(props.sop);
    void api<EcgSamples>('GET', `/api/instances/${sop}/ecg-samples`)
      .then(setSamples)
      .catch(e => setError(e instanceof ApiError ? e.reason : String(e)));
    void api<EcgAnalysis>('GET', `/api/instances/${sop}/ecg-measurements`)
      .then(setAnalysis)
      .catch(() => setAnalysis(null));
  }, [props.sop]);

  useEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const observer = new ResizeObserver(() => setWidth(element.clientWidth));
    observer.observe(element);
    return () => observer.disconnect();
  }, [samples]);

  const leads = useMemo(() => new Map((samples?.leads ?? []).map(l => [l.label, l.microvolts])), [samples]);
  const page = useMemo(
    () => (samples ? layOut(layout, [...leads.keys()], samples.samples_per_lead, samples.sampling_rate_hz, speed, gain) : null),
    [samples, leads, layout, speed, gain],
  );
  // Fit the page to the width available, or 1:1 millimetres (scrolling).
  const scale = page && fit && width > 0 ? Math.max(1, (width - 2) / page.width) : TRUE_MM;

  useEffect(() => setCalipers([]), [layout, speed, gain]);
  useEffect(() => {
    if (canvas.current && page) drawPage(canvas.current, page, { leads, gain }, scale, calipers);
  }, [page, leads, gain, scale, calipers]);

  const place = (event: MouseEvent) => {
    if (!page || !canvas.current) return;
    const box = canvas.current.getBoundingClientRect();
    const x = (event.clientX - box.left) / scale;
    const y = (event.clientY - box.top) / scale;
    const panel = panelAt(page, x, y);
    if (!panel) return;
    const caliper = { panel, sample: sampleAt(panel, x) };
    setCalipers(current => (current.length === 1 && current[0]?.panel === panel ? [current[0], caliper] : [caliper]));
  };

  // Esc clears the calipers; ← → move the last one a sample (with Shift, ten).
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement || event.target instanceof HTMLSelectElement) return;
      if (event.key === 'Escape') setCalipers([]);
      else if (event.key === 'ArrowLeft' || event.key === 'ArrowRight') {
        const step = (event.key === 'ArrowLeft' ? -1 : 1) * (event.shiftKey ? 10 : 1);
        setCalipers(current => {
          const last = current.at(-1);
          if (!last) return current;
          const sample = Math.min(last.panel.end - 1, Math.max(last.panel.start, last.sample + step));
          return [...current.slice(0, -1), { panel: last.panel, sample }];
        });
        event.preventDefault();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  if (error) {
    return (
      <div class="ecg-viewer">
        <p class="error" role="alert">
          {t('error.generic', { reason: error })}
        </p>
      </div>
    );
  }
  if (!samples || !page) return <div class="ecg-viewer muted">{t('viewer.loading')}</div>;

  const [first, second] = calipers;
  const reading =
    first && second
      ? caliperReading(first.sample, second.sample, leads.get(first.panel.lead)?.[first.sample] ?? 0, leads.get(second.panel.lead)?.[second.sample] ?? 0, samples.sampling_rate_hz)
      : null;
  const warnings = [...new Set([...(samples.warnings ?? []), ...(analysis?.warnings ?? [])])];
  const layoutForTests = page.panels.map(p => ({ lead: p.lead, start: p.start, end: p.end, x: p.x * scale, baseline: p.baseline * scale, width: p.width * scale }));

  return (
    <div class="ecg-viewer" data-sop={props.sop}>
      <div class="ecg-controls" role="toolbar" aria-label={t('viewer.tools')}>
        <Choice label={t('ecg.layout')} value={layout} options={[['3x4', t('ecg.layout.3x4')], ['6x2', '6×2'], ['12x1', '12×1']]} onChange={v => setLayout(v as EcgLayout)} />
        <Choice label={t('ecg.speed')} value={String(speed)} options={SPEEDS.map(s => [String(s), `${s} mm/s`])} onChange={v => setSpeed(Number(v) as Speed)} />
        <Choice label={t('ecg.gain')} value={String(gain)} options={GAINS.map(g => [String(g), `${g} mm/mV`])} onChange={v => setGain(Number(v) as Gain)} />
        <button type="button" class="small" aria-pressed={!fit} onClick={() => setFit(!fit)}>
          {fit ? t('ecg.trueSize') : t('ecg.fitWidth')}
        </button>
        <span
          class="caliper-reading"
          role="status"
          data-ms={reading ? reading.ms.toFixed(1) : ''}
          data-bpm={reading?.bpm ? reading.bpm.toFixed(1) : ''}
          data-mv={reading ? reading.mv.toFixed(3) : ''}
          data-samples={calipers.map(c => c.sample).join(',')}
        >
          {reading
            ? `${t('ecg.caliper')} ${reading.ms.toFixed(0)} ms · ${reading.bpm ? `${reading.bpm.toFixed(0)} bpm · ` : ''}Δ ${reading.mv.toFixed(2)} mV`
            : first
              ? t('ecg.caliperSecond')
              : t('ecg.caliperHint')}
        </span>
      </div>
      <div class="ecg-paper" ref={scroller}>
        <canvas
          ref={canvas}
          data-testid="ecg-canvas"
          data-scale={scale}
          data-rate={samples.sampling_rate_hz}
          data-layout={JSON.stringify(layoutForTests)}
          onClick={place}
          aria-label={t('ecg.tracing', { layout: t(layout === '3x4' ? 'ecg.layout.3x4' : 'ecg.layout.other'), speed, gain })}
          role="img"
        />
      </div>
      <div class="ecg-facts">
        <table class="ecg-measurements">
          <thead>
            <tr>
              <th />
              <th>Telediag</th>
              <th>{t('ecg.cart')}</th>
            </tr>
          </thead>
          <tbody>
            {ROWS.map(([label, ours, cart, unit]) => (
              <tr key={label} data-measure={ours}>
                <th>{t(label)}</th>
                <td>{show(analysis?.measurements[ours], unit)}</td>
                <td>{show(analysis?.device[cart], unit)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <div class="ecg-notes">
          <h3>{t('ecg.statements')}</h3>
          {analysis && analysis.device_statements.length > 0 ? (
            <ul class="ecg-statements">
              {analysis.device_statements.map(s => (
                <li>{s}</li>
              ))}
            </ul>
          ) : (
            <p class="muted small">{t('ecg.noStatements')}</p>
          )}
          {warnings.length > 0 && (
            <>
              <h3>{t('ecg.warnings')}</h3>
              <ul class="ecg-warnings">
                {warnings.map(w => (
                  <li>{w}</li>
                ))}
              </ul>
            </>
          )}
          <p class="muted small">
            {samples.received_as ? t('ecg.receivedAs', { format: samples.received_as }) : samples.format} · {samples.sampling_rate_hz} Hz · {(samples.samples_per_lead / samples.sampling_rate_hz).toFixed(1)} s
          </p>
        </div>
      </div>
    </div>
  );
}

function show(value: number | null | undefined, unit: string): string {
  if (value === null || value === undefined) return '—';
  return unit === '°' ? `${Math.round(value)}°` : `${Math.round(value)} ${unit}`;
}

function Choice(props: { label: string; value: string; options: [string, string][]; onChange: (value: string) => void }) {
  return (
    <label class="select">
      <span>{props.label}</span>
      <select value={props.value} onChange={e => props.onChange(e.currentTarget.value)}>
        {props.options.map(([value, text]) => (
          <option value={value}>{text}</option>
        ))}
      </select>
    </label>
  );
}
