// Cornerstone3D behind a small surface: initialise once, load a series'
// metadata from the centre's DICOMweb, show it in a stack viewport,
// report what the overlay shows. Loaded on demand (a dynamic import), so
// the worklist does not carry it; the tools (`tools.ts`: mouse bindings,
// measurements, cine, prefetch) follow once the first image is shown.

import { Enums, RenderingEngine, getRenderingEngine, init as coreInit } from '@cornerstonejs/core';
import type { Types } from '@cornerstonejs/core';
import { init as dicomImageLoaderInit } from '@cornerstonejs/dicom-image-loader';
import { utilities as metadataUtilities } from '@cornerstonejs/metadata';
import type { LeftButtonTool, Measurement, ViewportTools } from './tools';

export type { LeftButtonTool, Measurement } from './tools';
import { seriesRoot, takeMetadata } from './preload';
import { TAGS, frameRate, numbers, readingOrder, slicePosition, text, withoutImpossibleSpacing } from './dicom-json';
import { windowOf, windowRange } from './presets';

let initialised = false;

/** Initialises core and the DICOM image loader (decoding in workers), once. */
export function initialise(): void {
  if (initialised) return;
  coreInit();
  dicomImageLoaderInit({ maxWebWorkers: Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 1)) });
  initialised = true;
}

/** The one rendering engine every viewport of the page draws with. */
const ENGINE_ID = 'reading';

/**
 * Initialises and makes the rendering engine (its WebGL context) ahead of
 * the first viewport, while a case's request and metadata are asked for.
 */
export function warmUp(): void {
  initialise();
  if (!getRenderingEngine(ENGINE_ID)) new RenderingEngine(ENGINE_ID);
}

/** One image of a stack, with what the overlay says about it. */
export interface StackImage {
  imageId: string;
  /** The instance the image is (a frame) of: what a key image names. */
  sopInstanceUid: string;
  sliceLocation: number | null;
  sliceThickness: number | null;
  /** Along the slice normal (mm), for synchronised scrolling; null for projections and clips. */
  position: number | null;
}

export interface Series {
  uid: string;
  number: number | null;
  modality: string;
  description: string;
  images: StackImage[];
  /** Frames per second a clip asks for; stacks play at the reader's choice. */
  frameRate: number | null;
  /** One object of many frames (a clip), rather than a stack of instances. */
  multiFrame: boolean;
}

/**
 * The series' instances in reading order as image ids (one per frame of a
 * multi-frame object), their DICOM JSON registered for the loader and the
 * viewport. Throws an `ApiError` with the centre's reason when the metadata
 * is refused.
 */
export async function loadSeries(study: string, series: string): Promise<Series> {
  // The loader's initialisation empties the metadata cache: it comes first.
  initialise();
  const root = seriesRoot(study, series);
  const instances = readingOrder(await takeMetadata(root)).map(withoutImpossibleSpacing);
  const images: StackImage[] = [];
  for (const instance of instances) {
    const sop = text(instance, TAGS.sopInstanceUid);
    const frames = Math.max(1, numbers(instance, TAGS.numberOfFrames)[0] ?? 1);
    for (let frame = 1; frame <= frames; frame++) {
      const imageId = `wadors:${root}/instances/${encodeURIComponent(sop)}/frames/${frame}`;
      metadataUtilities.addDicomWebInstance(imageId, instance);
      images.push({
        imageId,
        sopInstanceUid: sop,
        sliceLocation: numbers(instance, TAGS.sliceLocation)[0] ?? null,
        sliceThickness: numbers(instance, TAGS.sliceThickness)[0] ?? null,
        position: frames === 1 ? slicePosition(instance) : null,
      });
    }
  }
  const first = instances[0] ?? {};
  return {
    uid: series,
    number: numbers(first, TAGS.seriesNumber)[0] ?? null,
    modality: text(first, TAGS.modality),
    description: text(first, TAGS.seriesDescription),
    images,
    frameRate: frameRate(first),
    multiFrame: instances.length === 1 && images.length > 1,
  };
}

/** What the overlay shows, read from the viewport. */
export interface ViewState {
  index: number;
  count: number;
  width: number | null;
  center: number | null;
  zoom: number;
  inverted: boolean;
}

/** A stack viewport on one element, with the reading room's mouse. */
export class StackView {
  private readonly engine: RenderingEngine;
  private readonly viewport: Types.IStackViewport;
  private readonly resizeObserver: ResizeObserver;
  /** The tools, once loaded (after the first image). */
  private tools: ViewportTools | null = null;
  private readonly toolsLoaded: Promise<ViewportTools | null>;
  private resolveTools: (tools: ViewportTools | null) => void = () => {};
  private tool: LeftButtonTool = 'window';
  private stackSize = 0;
  private destroyed = false;

  constructor(
    private readonly element: HTMLDivElement,
    private readonly id: string,
  ) {
    initialise();
    this.engine = getRenderingEngine(ENGINE_ID) ?? new RenderingEngine(ENGINE_ID);
    this.engine.enableElement({ viewportId: id, type: Enums.ViewportType.STACK, element });
    this.viewport = this.engine.getViewport(id) as Types.IStackViewport;
    element.addEventListener('contextmenu', event => event.preventDefault());
    this.toolsLoaded = new Promise(resolve => (this.resolveTools = resolve));
    // A viewport that changes size (a layout switch, the window) fits its
    // image again: keeping the camera would leave it cut off or tiny.
    this.resizeObserver = new ResizeObserver(() => this.engine.resize(true, false));
    this.resizeObserver.observe(element);
  }

  /** Shows `imageIds` from `index`; resolves once the first image is on screen. */
  async show(imageIds: string[], index = 0): Promise<void> {
    this.stackSize = imageIds.length;
    await this.viewport.setStack(imageIds, index);
    this.viewport.render();
    void this.attachTools();
  }

  /** Resolves once the mouse and measurement tools are bound (false if they failed to load). */
  async toolsReady(): Promise<boolean> {
    return (await this.toolsLoaded) !== null;
  }

  /** Loads the tools behind the first image, binds them, and prefetches the rest of the stack. */
  private async attachTools(): Promise<void> {
    if (this.tools) return;
    try {
      const { ViewportTools } = await import('./tools');
      if (this.destroyed) return;
      this.tools = new ViewportTools(this.element, this.id, this.engine.id, this.tool);
      if (this.stackSize > 1) this.tools.prefetch();
      this.resolveTools(this.tools);
    } catch (error) {
      console.error('the viewer tools failed to load', error);
      this.resolveTools(null);
    }
  }

  /** Calls `listener` whenever what the overlay shows may have changed. */
  onChange(listener: () => void): () => void {
    const events = [Enums.Events.STACK_NEW_IMAGE, Enums.Events.VOI_MODIFIED, Enums.Events.CAMERA_MODIFIED, Enums.Events.IMAGE_RENDERED];
    for (const event of events) this.element.addEventListener(event, listener);
    return () => {
      for (const event of events) this.element.removeEventListener(event, listener);
    };
  }

  state(): ViewState {
    const properties = this.viewport.getProperties();
    const range = properties.voiRange;
    const window = range ? windowOf(range.lower, range.upper) : null;
    return {
      index: this.viewport.getCurrentImageIdIndex(),
      count: this.viewport.getImageIds().length,
      width: window ? Math.round(window.width) : null,
      center: window ? Math.round(window.center) : null,
      zoom: this.viewport.getZoom(),
      inverted: properties.invert ?? false,
    };
  }

  /** Shows image `index` of the stack. */
  async setIndex(index: number): Promise<void> {
    const count = this.viewport.getImageIds().length;
    await this.viewport.setImageIdIndex(Math.min(count - 1, Math.max(0, index)));
  }

  /** Calls `listener` with the index whenever another image of the stack is shown. */
  onImageChange(listener: (index: number) => void): () => void {
    const handler = () => listener(this.viewport.getCurrentImageIdIndex());
    this.element.addEventListener(Enums.Events.STACK_NEW_IMAGE, handler);
    return () => this.element.removeEventListener(Enums.Events.STACK_NEW_IMAGE, handler);
  }

  /** Plays the stack or clip in a loop at `fps` frames per second. */
  play(fps: number): void {
    void this.toolsLoaded.then(tools => tools?.play(fps));
  }

  stop(): void {
    this.tools?.stop();
  }

  /** Moves `delta` images through the stack, stopping at its ends. */
  async scroll(delta: number): Promise<void> {
    const count = this.viewport.getImageIds().length;
    const next = Math.min(count - 1, Math.max(0, this.viewport.getCurrentImageIdIndex() + delta));
    await this.viewport.setImageIdIndex(next);
  }

  setWindow(width: number, center: number): void {
    this.viewport.setProperties({ voiRange: windowRange(width, center) });
    this.viewport.render();
  }

  invert(): void {
    this.viewport.setProperties({ invert: !(this.viewport.getProperties().invert ?? false) });
    this.viewport.render();
  }

  rotate(degrees: number): void {
    const { rotation = 0 } = this.viewport.getViewPresentation();
    this.viewport.setViewPresentation({ rotation: (rotation + degrees + 360) % 360 });
    this.viewport.render();
  }

  flipHorizontal(): void {
    const { flipHorizontal = false } = this.viewport.getCamera();
    this.viewport.setCamera({ flipHorizontal: !flipHorizontal });
    this.viewport.render();
  }

  /** Puts `tool` on the left button; the others stay visible and editable. */
  selectTool(tool: LeftButtonTool): void {
    this.tool = tool;
    this.tools?.select(tool);
  }

  /** The measurements drawn on this viewport's images (none before the tools are loaded). */
  measurements(): Measurement[] {
    return this.tools?.measurements() ?? [];
  }

  /** Calls `listener` when a measurement is made, moved or removed. */
  onMeasurementsChange(listener: () => void): () => void {
    let stop = () => {};
    let stopped = false;
    void this.toolsLoaded.then(tools => {
      if (tools && !stopped) stop = tools.onMeasurementsChange(listener);
    });
    return () => {
      stopped = true;
      stop();
    };
  }

  /** Removes every measurement of this viewport. */
  clearMeasurements(): void {
    this.tools?.clearMeasurements();
    this.viewport.render();
  }

  /** Back to the image as first shown: window, zoom, pan, rotation, inversion. */
  reset(): void {
    this.viewport.resetProperties();
    this.viewport.resetCamera();
    this.viewport.render();
  }

  destroy(): void {
    this.destroyed = true;
    this.tools?.destroy();
    this.resolveTools(null);
    this.resizeObserver.disconnect();
    this.engine.disableElement(this.viewport.id);
  }
}
