// One stack viewport with its overlay and the reader's keys. Cornerstone
// is loaded when the first viewer opens, not with the worklist.

import { useEffect, useRef, useState } from 'preact/hooks';
import { useApp } from '../context';
import type { Series, StackView, ViewState } from '../imaging/cornerstone';
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
}) {
  const { t } = useApp();
  const element = useRef<HTMLDivElement>(null);
  const view = useRef<StackView | null>(null);
  const [loaded, setLoaded] = useState<Series | null>(null);
  const [state, setState] = useState<ViewState | null>(null);
  const [error, setError] = useState<string | null>(null);

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
        stopWatching = stack.onChange(() => setState(stack.state()));
        setLoaded(series);
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
        else return false;
        return true;
      })();
      if (handled) event.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [props.onSeriesStep]);

  const image = loaded && state ? loaded.images[state.index] : undefined;
  return (
    <div class="stack-viewer">
      <div class="viewport" ref={element} data-testid="viewport" />
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
