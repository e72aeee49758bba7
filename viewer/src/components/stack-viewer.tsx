// One viewport of the grid: a series loaded into a Cornerstone stack
// viewport, its overlay (patient, study date, series, image n/N, slice
// position and thickness, W/L, zoom), and a drop target for series dragged
// from the strip. The toolbar and the keys live in the grid, which acts on
// the active viewport. Cornerstone is loaded when the first viewport opens,
// not with the worklist.

import { useEffect, useRef, useState } from 'preact/hooks';
import { useApp } from '../context';
import type { Series, StackView, ViewState } from '../imaging/cornerstone';

export interface OverlayText {
  patient: string;
  details: string;
  studyDate: string;
}

/** What the grid holds of a loaded viewport. */
export interface LoadedView {
  view: StackView;
  series: Series;
  element: HTMLDivElement;
}

/** A series named for a viewport: where it is and which study it is of. */
export interface SeriesRef {
  study: string;
  series: string;
}

/** The drag payload of a series card. */
export const SERIES_DRAG_TYPE = 'application/x-telediag-series';

export function StackViewer(props: {
  id: string;
  target: SeriesRef;
  overlay: OverlayText;
  active: boolean;
  /** The current image is one of the report's key images. */
  keyImage: (sop: string) => boolean;
  onActivate: () => void;
  onLoaded: (loaded: LoadedView | null) => void;
  onDropSeries: (target: SeriesRef) => void;
}) {
  const { t } = useApp();
  const element = useRef<HTMLDivElement>(null);
  const [loaded, setLoaded] = useState<Series | null>(null);
  const [state, setState] = useState<ViewState | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [dropping, setDropping] = useState(false);
  const [toolsReady, setToolsReady] = useState(false);
  const onLoaded = useRef(props.onLoaded);
  onLoaded.current = props.onLoaded;

  useEffect(() => {
    let cancelled = false;
    let stack: StackView | null = null;
    let stopWatching = () => {};
    setLoaded(null);
    setState(null);
    setError(null);
    setToolsReady(false);
    void (async () => {
      try {
        const imaging = await import('../imaging/cornerstone');
        if (cancelled || !element.current) return;
        // The viewport (its WebGL context) is made while the metadata is on its way.
        stack = new imaging.StackView(element.current, props.id);
        const view = stack;
        performance.mark('telediag:viewport-ready');
        const series = await imaging.loadSeries(props.target.study, props.target.series);
        performance.mark('telediag:metadata-registered');
        if (cancelled || !element.current) return;
        stopWatching = view.onChange(() => setState(view.state()));
        setLoaded(series);
        await view.show(series.images.map(i => i.imageId));
        performance.mark('telediag:first-image-shown');
        if (cancelled) return;
        void view.toolsReady().then(ready => !cancelled && setToolsReady(ready));
        setState(view.state());
        onLoaded.current({ view, series, element: element.current });
      } catch (e) {
        console.error('the viewport failed', e);
        if (!cancelled) setError(String(e instanceof Error ? e.message : e));
      }
    })();
    return () => {
      cancelled = true;
      stopWatching();
      onLoaded.current(null);
      stack?.destroy();
    };
  }, [props.target.study, props.target.series, props.id]);

  const image = loaded && state ? loaded.images[state.index] : undefined;
  const position = image?.sliceLocation ?? image?.position ?? null;
  return (
    <div
      class={`stack-viewer${props.active ? ' active' : ''}${dropping ? ' dropping' : ''}`}
      data-viewport={props.id}
      data-series={props.target.series}
      data-tools={toolsReady ? 'ready' : 'loading'}
      onPointerDown={props.onActivate}
      onDragOver={event => {
        if (!event.dataTransfer?.types.includes(SERIES_DRAG_TYPE)) return;
        event.preventDefault();
        setDropping(true);
      }}
      onDragLeave={() => setDropping(false)}
      onDrop={event => {
        setDropping(false);
        const payload = event.dataTransfer?.getData(SERIES_DRAG_TYPE);
        if (!payload) return;
        event.preventDefault();
        props.onDropSeries(JSON.parse(payload) as SeriesRef);
      }}
    >
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
        {image && props.keyImage(image.sopInstanceUid) && <div class="key-badge">{t('viewer.keyMarked')}</div>}
      </div>
      {state && (
        <div class="overlay bottom-left" data-image-index={state.index} data-image-count={state.count}>
          <div>
            {t(loaded?.multiFrame ? 'viewer.frame' : 'viewer.image')} {state.index + 1}/{state.count}
          </div>
          {position !== null && <div>{t('viewer.location', { mm: position.toFixed(1) })}</div>}
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
