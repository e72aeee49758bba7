// The image reading area: one, two or four viewports (1×1, 1×2, 2×2), the
// toolbar that acts on the active one (tools, key image, cine, layout,
// linked scrolling, shortcuts), the measurements of the active viewport,
// and the reader's keys.

import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { useApp } from '../context';
import type { MessageKey } from '../i18n';
import type { LeftButtonTool, Measurement } from '../imaging/cornerstone';
import { presetForKey } from '../imaging/presets';
import { linkOffsets, nearestIndex } from '../imaging/sync';
import { type LoadedView, type OverlayText, type SeriesRef, StackViewer } from './stack-viewer';
import { ShortcutHelp } from './shortcut-help';

export type GridLayout = '1x1' | '1x2' | '2x2';
const CELLS: Record<GridLayout, number> = { '1x1': 1, '1x2': 2, '2x2': 4 };
const FPS_CHOICES = [5, 10, 15, 20, 30];

const TOOLS: [LeftButtonTool, string][] = [
  ['window', 'w'],
  ['length', 'l'],
  ['angle', 'a'],
  ['ellipse', 'e'],
  ['rectangle', 't'],
  ['probe', 'p'],
];
const TOOL_KEYS: Record<string, LeftButtonTool> = Object.fromEntries(TOOLS.map(([name, key]) => [key, name]));

export interface KeyImages {
  /** Only images of this study can be key images of the report. */
  study: string;
  marked: readonly string[];
  max: number;
  toggle: (sop: string) => void;
}

export function ViewerGrid(props: {
  /** What the first viewport opens with. */
  initial: SeriesRef;
  /** Every series of every study shown, in strip order, for Page Up/Down. */
  seriesOrder: readonly SeriesRef[];
  overlayFor: (study: string) => OverlayText;
  keyImages?: KeyImages | undefined;
  /** A series the reader chose in the strip, for the active viewport (or a new one for a prior). */
  request: { target: SeriesRef; beside: boolean; serial: number } | null;
}) {
  const { t } = useApp();
  const [layout, setLayout] = useState<GridLayout>('1x1');
  const [cells, setCells] = useState<(SeriesRef | null)[]>([props.initial, null, null, null]);
  const [active, setActive] = useState(0);
  const [tool, setTool] = useState<LeftButtonTool>('window');
  const [measurements, setMeasurements] = useState<Measurement[]>([]);
  const [playing, setPlaying] = useState(false);
  const [fps, setFps] = useState(10);
  const [linked, setLinked] = useState(false);
  const [help, setHelp] = useState(false);
  const [currentSop, setCurrentSop] = useState<string | null>(null);
  /** Counts viewports loaded and unloaded, for the effects that attach to them. */
  const [generation, setGeneration] = useState(0);
  const views = useRef<(LoadedView | null)[]>([null, null, null, null]);
  const offsets = useRef<(number | null)[]>([]);
  const visible = CELLS[layout];


  const showSeries = useCallback((index: number, target: SeriesRef) => {
    setCells(current => current.map((c, i) => (i === index ? target : c)));
    setActive(index);
    setPlaying(false);
  }, []);

  // A series chosen in the strip: into the active viewport, or beside it (priors).
  useEffect(() => {
    const asked = props.request;
    if (!asked) return;
    if (asked.beside) {
      // Beside the current images: the right half of 1×2 (or the left, when the right is active).
      if (layout === '1x1') setLayout('1x2');
      showSeries(visible > 1 && active === 1 ? 0 : 1, asked.target);
    } else {
      showSeries(active, asked.target);
    }
    // Only a new request moves anything; the layout and cells it reads are the current ones.
  }, [props.request?.serial]);

  // The current image of the active viewport (key images, measurements).
  useEffect(() => {
    const loaded = views.current[active];
    if (!loaded) {
      setCurrentSop(null);
      return;
    }
    const update = (index: number) => setCurrentSop(loaded.series.images[index]?.sopInstanceUid ?? null);
    update(loaded.view.state().index);
    loaded.view.selectTool(tool);
    setMeasurements(loaded.view.measurements());
    const stopImage = loaded.view.onImageChange(update);
    const stopMeasuring = loaded.view.onMeasurementsChange(() => setMeasurements(loaded.view.measurements()));
    return () => {
      stopImage();
      stopMeasuring();
    };
  }, [active, generation, tool]);

  // Linked scrolling: the other stacks follow the active one's level. A
  // layout effect, so unlinking takes hold when the button shows it, not a
  // frame later when a key pressed meanwhile would still move the others.
  useLayoutEffect(() => {
    const leader = views.current[active];
    if (!linked || !leader) return;
    const levelOf = (v: LoadedView | null) => (v ? (v.series.images[v.view.state().index]?.position ?? null) : null);
    offsets.current = linkOffsets(views.current.map(levelOf), active);
    return leader.view.onImageChange(index => {
      const level = leader.series.images[index]?.position;
      if (level === null || level === undefined) return;
      views.current.forEach((follower, i) => {
        const offset = offsets.current[i];
        if (i === active || i >= visible || !follower || offset === null || offset === undefined) return;
        const target = nearestIndex(follower.series.images.map(image => image.position), level + offset);
        if (target !== null && target !== follower.view.state().index) void follower.view.setIndex(target);
      });
    });
  }, [linked, active, generation, visible]);

  // Cine on the active viewport.
  useEffect(() => {
    const loaded = views.current[active];
    if (!loaded) return;
    if (playing) loaded.view.play(fps);
    else loaded.view.stop();
    return () => loaded.view.stop();
  }, [playing, fps, active, generation]);

  const loadedAt = (index: number) => (loaded: LoadedView | null) => {
    views.current[index] = loaded;
    if (index === active && loaded) {
      loaded.view.selectTool(tool);
      setCurrentSop(loaded.series.images[loaded.view.state().index]?.sopInstanceUid ?? null);
      // A clip plays at its own rate unless the reader chose another.
      if (loaded.series.frameRate) setFps(Math.round(loaded.series.frameRate));
    }
    setGeneration(g => g + 1);
  };

  const choose = (next: LeftButtonTool) => {
    for (const loaded of views.current) loaded?.view.selectTool(next);
    setTool(next);
  };

  const keyStudy = props.keyImages?.study;
  const activeCell = cells[active];
  const keyAllowed = props.keyImages && activeCell?.study === keyStudy && currentSop !== null;
  const keyMarked = keyAllowed && currentSop ? props.keyImages?.marked.includes(currentSop) : false;
  const keyFull = !keyMarked && (props.keyImages?.marked.length ?? 0) >= (props.keyImages?.max ?? 0);

  const stepSeries = useCallback(
    (delta: number) => {
      const current = cells[active];
      if (!current) return;
      const at = props.seriesOrder.findIndex(s => s.series === current.series && s.study === current.study);
      const next = props.seriesOrder[at + delta];
      if (at !== -1 && next) showSeries(active, next);
    },
    [cells, active, props.seriesOrder, showSeries],
  );

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target;
      if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const view = views.current[active]?.view;
      const preset = presetForKey(event.key);
      const handled = (() => {
        if (event.key === '?') setHelp(h => !h);
        else if (event.key === 'Escape' && help) setHelp(false);
        else if (!view) return false;
        else if (preset) view.setWindow(preset.width, preset.center);
        else if (event.key === 'ArrowDown' || event.key === 'ArrowRight') void view.scroll(1);
        else if (event.key === 'ArrowUp' || event.key === 'ArrowLeft') void view.scroll(-1);
        else if (event.key === 'PageDown') stepSeries(1);
        else if (event.key === 'PageUp') stepSeries(-1);
        else if (event.key === ' ') setPlaying(p => !p);
        else if (event.key === 'i') view.invert();
        else if (event.key === 'r') view.rotate(90);
        else if (event.key === 'h') view.flipHorizontal();
        else if (event.key === 'Escape' || event.key === '0') view.reset();
        else if (event.key === 's') setLinked(l => !l);
        else if (event.key === 'k' && keyAllowed && currentSop) props.keyImages?.toggle(currentSop);
        else if (TOOL_KEYS[event.key]) choose(TOOL_KEYS[event.key] as LeftButtonTool);
        else if (event.key === 'Delete') {
          view.clearMeasurements();
          setMeasurements([]);
        } else return false;
        return true;
      })();
      if (handled) event.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  return (
    <div class="viewer-grid-area">
      <div class="toolbar" role="toolbar" aria-label={t('viewer.tools')}>
        {TOOLS.map(([name, key]) => (
          <button type="button" class={tool === name ? 'tool active' : 'tool'} aria-pressed={tool === name} title={`${t(`tool.${name}`)} (${key})`} onClick={() => choose(name)}>
            {t(`tool.${name}`)}
          </button>
        ))}
        {props.keyImages && (
          <button
            type="button"
            class={keyMarked ? 'tool key active' : 'tool key'}
            aria-pressed={Boolean(keyMarked)}
            disabled={!keyAllowed || keyFull}
            title={keyFull ? t('viewer.keyFull', { max: props.keyImages.max }) : t('viewer.markKey')}
            onClick={() => currentSop && props.keyImages?.toggle(currentSop)}
          >
            {keyMarked ? t('viewer.keyMarked') : t('viewer.markKey')}
          </button>
        )}
        <span class="toolbar-gap" />
        <button type="button" class={playing ? 'tool active' : 'tool'} aria-pressed={playing} data-testid="cine" title={`${t('viewer.cine')} (Space)`} onClick={() => setPlaying(!playing)}>
          {playing ? t('viewer.pause') : t('viewer.play')}
        </button>
        <select class="tool" aria-label={t('viewer.fps')} value={String(fps)} onChange={e => setFps(Number(e.currentTarget.value))}>
          {[...new Set([...FPS_CHOICES, fps])].sort((a, b) => a - b).map(f => (
            <option value={String(f)}>{f} fps</option>
          ))}
        </select>
        <span class="toolbar-gap" />
        {(['1x1', '1x2', '2x2'] as GridLayout[]).map(l => (
          <button type="button" class={layout === l ? 'tool active' : 'tool'} aria-pressed={layout === l} title={t('viewer.layout')} onClick={() => setLayout(l)}>
            {l.replace('x', '×')}
          </button>
        ))}
        <button type="button" class={linked ? 'tool active' : 'tool'} aria-pressed={linked} disabled={visible < 2} title={`${t('viewer.linkExplain')} (s)`} onClick={() => setLinked(!linked)}>
          {t('viewer.link')}
        </button>
        <button type="button" class="tool" aria-pressed={help} title={t('help.title')} onClick={() => setHelp(!help)}>
          ?
        </button>
      </div>
      {measurements.length > 0 && (
        <ul class="measurements" aria-label={t('viewer.measurements')}>
          {measurements.map(m => (
            <li key={m.uid} data-kind={m.kind} data-value={m.length ?? m.angle ?? m.mean ?? m.value ?? ''} data-unit={m.unit} data-area={m.area ?? ''} data-sd={m.stdDev ?? ''} data-value-unit={m.valueUnit ?? ''} data-at-detector={String(m.atDetector)}>
              <span class="measurement-kind">{t(`tool.${m.kind}`)}</span> {describe(m, t)}
            </li>
          ))}
        </ul>
      )}
      <div class={`viewer-grid layout-${layout}`}>
        {cells.slice(0, visible).map((cell, index) =>
          cell ? (
            <StackViewer
              key={`${index}:${cell.study}:${cell.series}`}
              id={`viewport-${index}`}
              target={cell}
              overlay={props.overlayFor(cell.study)}
              active={index === active && visible > 1}
              keyImage={sop => cell.study === keyStudy && (props.keyImages?.marked.includes(sop) ?? false)}
              onActivate={() => setActive(index)}
              onLoaded={loadedAt(index)}
              onDropSeries={target => showSeries(index, target)}
            />
          ) : (
            <EmptyCell key={`empty-${index}`} onDropSeries={target => showSeries(index, target)} onActivate={() => setActive(index)} active={index === active} />
          ),
        )}
      </div>
      {help && <ShortcutHelp onClose={() => setHelp(false)} />}
    </div>
  );
}

function EmptyCell(props: { active: boolean; onActivate: () => void; onDropSeries: (target: SeriesRef) => void }) {
  const { t } = useApp();
  const [dropping, setDropping] = useState(false);
  return (
    <div
      class={`stack-viewer empty${props.active ? ' active' : ''}${dropping ? ' dropping' : ''}`}
      onPointerDown={props.onActivate}
      onDragOver={event => {
        event.preventDefault();
        setDropping(true);
      }}
      onDragLeave={() => setDropping(false)}
      onDrop={event => {
        setDropping(false);
        const payload = event.dataTransfer?.getData('application/x-telediag-series');
        if (!payload) return;
        event.preventDefault();
        props.onDropSeries(JSON.parse(payload) as SeriesRef);
      }}
    >
      <div class="viewer-message">{t('viewer.dropHere')}</div>
    </div>
  );
}

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
        m.stdDev !== undefined ? `SD ${m.stdDev.toFixed(1)}${unit}` : '',
        m.area !== undefined ? `${t('viewer.area')} ${m.area.toFixed(1)} ${area}${detector}` : '',
      ]
        .filter(Boolean)
        .join(' · ');
  }
}
