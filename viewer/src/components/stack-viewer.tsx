// One stack viewport with its overlay and the reader's keys. Cornerstone
// is loaded when the first viewer opens, not with the worklist.

import { useEffect, useRef, useState } from 'preact/hooks';
import { useApp } from '../context';
import type { LeftButtonTool, Measurement, Series, StackView, ViewState } from '../imaging/cornerstone';
import type { MessageKey } from '../i18n';
import { presetForKey } from '../imaging/presets';

export interface OverlayText {
  patient: string;
  details: string;
  studyDate: string;
}

export function StackViewer(props: {
  study: string;
  series: string;
  overlay: OverlayText;
  onSeriesStep: (delta: number) => void;
  /** Key images of the report being written; absent when none is. */
  keyImages?: { marked: readonly string[]; max: number; toggle: (sop: string) => void };
}) {
  const { t } = useApp();
  const element = useRef<HTMLDivElement>(null);
  const view = useRef<StackView | null>(null);
  const [loaded, setLoaded] = useState<Series | null>(null);
  const [state, setState] = useState<ViewState | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tool, setTool] = useState<LeftButtonTool>('window');
  const [measurements, setMeasurements] = useState<Measurement[]>([]);
  const loadedRef = useRef<Series | null>(null);

  useEffect(() => {
    let cancelled = false;
    let stopWatching = () => {};
    setLoaded(null);
    setState(null);
    setError(null);
    void (async () => {
      try {
        const imaging = await import('../imaging/cornerstone');
        const series = await imaging.loadSeries(props.study, props.series);
        if (cancelled || !element.current) return;
        const stack = new imaging.StackView(element.current, 'main');
        view.current = stack;
        const stopView = stack.onChange(() => setState(stack.state()));
        const stopMeasuring = stack.onMeasurementsChange(() => setMeasurements(stack.measurements()));
        stopWatching = () => {
          stopView();
          stopMeasuring();
        };
        setLoaded(series);
        loadedRef.current = series;
        await stack.show(series.images.map(i => i.imageId));
        if (!cancelled) setState(stack.state());
      } catch (e) {
        console.error('the stack viewer failed', e);
        if (!cancelled) setError(String(e instanceof Error ? e.message : e));
      }
    })();
    return () => {
      cancelled = true;
      stopWatching();
      view.current?.destroy();
      view.current = null;
    };
  }, [props.study, props.series]);

  const choose = (next: LeftButtonTool) => {
    view.current?.selectTool(next);
    setTool(next);
  };

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const stack = view.current;
      if (!stack || event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
      const preset = presetForKey(event.key);
      const handled = (() => {
        if (preset) stack.setWindow(preset.width, preset.center);
        else if (event.key === 'ArrowDown' || event.key === 'ArrowRight') void stack.scroll(1);
        else if (event.key === 'ArrowUp' || event.key === 'ArrowLeft') void stack.scroll(-1);
        else if (event.key === 'PageDown') props.onSeriesStep(1);
        else if (event.key === 'PageUp') props.onSeriesStep(-1);
        else if (event.key === 'i') stack.invert();
        else if (event.key === 'r') stack.rotate(90);
        else if (event.key === 'h') stack.flipHorizontal();
        else if (event.key === 'Escape' || event.key === '0') stack.reset();
        else if (TOOL_KEYS[event.key]) choose(TOOL_KEYS[event.key] as LeftButtonTool);
        else if (event.key === 'k' && props.keyImages) {
          // The image on screen now, not at the last render: keys can outrun rendering.
          const sop = loadedRef.current?.images[stack.state().index]?.sopInstanceUid;
          if (sop) props.keyImages.toggle(sop);
        }
        else if (event.key === 'Delete') {
          stack.clearMeasurements();
          setMeasurements([]);
        }
        else return false;
        return true;
      })();
      if (handled) event.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [props.onSeriesStep, props.keyImages]);

  const image = loaded && state ? loaded.images[state.index] : undefined;
  const keyMarked = image ? (props.keyImages?.marked.includes(image.sopInstanceUid) ?? false) : false;
  const keyFull = !keyMarked && (props.keyImages?.marked.length ?? 0) >= (props.keyImages?.max ?? 0);
  return (
    <div class="stack-viewer">
      <div class="toolbar" role="toolbar" aria-label={t('viewer.tools')}>
        {TOOLS.map(([name, key]) => (
          <button type="button" class={tool === name ? 'tool active' : 'tool'} aria-pressed={tool === name} title={`${t(`tool.${name}`)} (${key})`} onClick={() => choose(name)}>
            {t(`tool.${name}`)}
          </button>
        ))}
        {props.keyImages && image && (
          <button
            type="button"
            class={keyMarked ? 'tool key active' : 'tool key'}
            aria-pressed={keyMarked}
            disabled={keyFull}
            title={keyFull ? t('viewer.keyFull', { max: props.keyImages.max }) : t('viewer.markKey')}
            onClick={() => props.keyImages?.toggle(image.sopInstanceUid)}
          >
            {keyMarked ? t('viewer.keyMarked') : t('viewer.markKey')}
          </button>
        )}
      </div>
      {measurements.length > 0 && (
        <ul class="measurements" aria-label={t('viewer.measurements')}>
          {measurements.map(m => (
            <li key={m.uid} data-kind={m.kind} data-value={m.length ?? m.angle ?? m.mean ?? m.value ?? ''} data-unit={m.unit}>
              <span class="measurement-kind">{t(`tool.${m.kind}`)}</span> {describe(m, t)}
            </li>
          ))}
        </ul>
      )}
      <div class={`viewport tool-${tool}`} ref={element} data-testid="viewport" />
      <div class="overlay top-left">
        <div class="overlay-strong">{props.overlay.patient}</div>
        <div>{props.overlay.details}</div>
      </div>
      <div class="overlay top-right">
        <div>{props.overlay.studyDate}</div>
        {loaded && (
          <div>
            {loaded.number !== null ? `${t('viewer.series')} ${loaded.number} · ` : ''}
            {loaded.description}
          </div>
        )}
      </div>
      {state && (
        <div class="overlay bottom-left" data-image-index={state.index} data-image-count={state.count}>
          <div>
            {t('viewer.image')} {state.index + 1}/{state.count}
          </div>
          {image?.sliceLocation != null && <div>{t('viewer.location', { mm: image.sliceLocation.toFixed(1) })}</div>}
          {image?.sliceThickness != null && <div>{t('viewer.thickness', { mm: image.sliceThickness.toFixed(1) })}</div>}
        </div>
      )}
      {state && (
        <div class="overlay bottom-right" data-ww={state.width ?? ''} data-wc={state.center ?? ''}>
          {state.width !== null && (
            <div>
              W {state.width} L {state.center}
              {state.inverted ? ` · ${t('viewer.inverted')}` : ''}
            </div>
          )}
          <div>{t('viewer.zoom', { percent: Math.round(state.zoom * 100) })}</div>
        </div>
      )}
      {!state && !error && <div class="viewer-message">{t('viewer.loading')}</div>}
      {error && (
        <div class="viewer-message error" role="alert">
          {t('error.generic', { reason: error })}
        </div>
      )}
    </div>
  );
}

const TOOLS: [LeftButtonTool, string][] = [
  ['window', 'w'],
  ['length', 'l'],
  ['angle', 'a'],
  ['ellipse', 'e'],
  ['rectangle', 't'],
  ['probe', 'p'],
];
const TOOL_KEYS: Record<string, LeftButtonTool> = Object.fromEntries(TOOLS.map(([name, key]) => [key, name]));

type Translate = (key: MessageKey, params?: Record<string, string | number>) => string;

/** A measurement's values as the reader reads them. */
function describe(m: Measurement, t: Translate): string {
  const detector = m.atDetector ? ` (${t('viewer.atDetector')})` : '';
  const area = m.unit === 'mm' ? 'mm²' : 'px²';
  const unit = m.valueUnit ? ` ${m.valueUnit}` : '';
  switch (m.kind) {
    case 'length':
      return m.length === undefined ? '' : `${m.length.toFixed(1)} ${m.unit}${detector}`;
    case 'angle':
      return m.angle === undefined ? '' : `${m.angle.toFixed(1)}°`;
    case 'probe':
      return m.value === undefined ? '' : `${m.value.toFixed(0)}${unit}`;
    case 'ellipse':
    case 'rectangle':
      return [
        m.mean !== undefined ? `${t('viewer.mean')} ${m.mean.toFixed(1)}${unit}` : '',
        m.stdDev !== undefined ? `SD ${m.stdDev.toFixed(1)}` : '',
        m.area !== undefined ? `${t('viewer.area')} ${m.area.toFixed(1)} ${area}${detector}` : '',
      ]
        .filter(Boolean)
        .join(' · ');
  }
}
