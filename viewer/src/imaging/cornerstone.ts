// Cornerstone3D behind a small surface: initialise once, load a series'
// metadata from the centre's DICOMweb, show it in a stack viewport with the
// reading room's mouse bindings, report what the overlay shows. Loaded on
// demand (a dynamic import), so the worklist does not carry it.

import { Enums, RenderingEngine, eventTarget, getRenderingEngine, init as coreInit, metaData } from '@cornerstonejs/core';
import type { Types } from '@cornerstonejs/core';
import { init as dicomImageLoaderInit } from '@cornerstonejs/dicom-image-loader';
import { utilities as metadataUtilities } from '@cornerstonejs/metadata';
import {
  AngleTool,
  EllipticalROITool,
  LengthTool,
  PanTool,
  ProbeTool,
  RectangleROITool,
  StackScrollTool,
  Enums as ToolEnums,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  addTool,
  annotation,
  init as toolsInit,
  utilities as toolUtilities,
} from '@cornerstonejs/tools';
import { seriesRoot, takeMetadata } from './preload';
import { TAGS, frameRate, numbers, readingOrder, slicePosition, text, withoutImpossibleSpacing } from './dicom-json';
import { windowOf, windowRange } from './presets';

let initialised = false;

/** Initialises core, the DICOM image loader (decoding in workers) and tools, once. */
export function initialise(): void {
  if (initialised) return;
  coreInit();
  dicomImageLoaderInit({ maxWebWorkers: Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 1)) });
  toolsInit();
  for (const tool of ALL_TOOLS) addTool(tool);
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

const NAVIGATION_TOOLS = [StackScrollTool, WindowLevelTool, PanTool, ZoomTool];
/** What the left button can do, by the names the toolbar uses. */
const LEFT_BUTTON_TOOLS = {
  window: WindowLevelTool,
  length: LengthTool,
  angle: AngleTool,
  ellipse: EllipticalROITool,
  rectangle: RectangleROITool,
  probe: ProbeTool,
} as const;
const ALL_TOOLS = [...NAVIGATION_TOOLS, LengthTool, AngleTool, EllipticalROITool, RectangleROITool, ProbeTool];
export type LeftButtonTool = keyof typeof LEFT_BUTTON_TOOLS;

/** One measurement as the reader sees it, values in the units it was made in. */
export interface Measurement {
  uid: string;
  kind: 'length' | 'angle' | 'ellipse' | 'rectangle' | 'probe';
  imageId: string;
  /** Millimetres when the image says how large its pixels are, else pixels. */
  unit: 'mm' | 'px';
  /** Measured at the detector (Imager Pixel Spacing of a projection image): larger than the patient. */
  atDetector: boolean;
  length?: number;
  angle?: number;
  area?: number;
  mean?: number;
  stdDev?: number;
  value?: number;
  /** HU for CT, else the modality's unit or none. */
  valueUnit?: string;
}

const KIND_OF_TOOL: Record<string, Measurement['kind']> = {
  [LengthTool.toolName]: 'length',
  [AngleTool.toolName]: 'angle',
  [EllipticalROITool.toolName]: 'ellipse',
  [RectangleROITool.toolName]: 'rectangle',
  [ProbeTool.toolName]: 'probe',
};

/**
 * Whether `imageId`'s distances are in millimetres and measured at the
 * detector. Cornerstone's own unit label reads "px Proj" for projection
 * images without a position although its numbers are millimetres, so the
 * label is made here from the calibration itself.
 */
function calibration(imageId: string): { unit: 'mm' | 'px'; atDetector: boolean } {
  const calibrated = metaData.get('calibratedPixelSpacing', imageId) as { rowPixelSpacing?: number; type?: string } | undefined;
  const plane = metaData.get('imagePlaneModule', imageId) as { rowPixelSpacing?: number; usingDefaultValues?: boolean } | undefined;
  const millimetres = Boolean(calibrated?.rowPixelSpacing) || (Boolean(plane?.rowPixelSpacing) && !plane?.usingDefaultValues);
  return { unit: millimetres ? 'mm' : 'px', atDetector: calibrated?.type === Enums.CalibrationTypes.PROJECTION };
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
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
  private readonly toolGroupId: string;
  private readonly resizeObserver: ResizeObserver;

  constructor(
    private readonly element: HTMLDivElement,
    id: string,
  ) {
    initialise();
    this.engine = getRenderingEngine(ENGINE_ID) ?? new RenderingEngine(ENGINE_ID);
    this.engine.enableElement({ viewportId: id, type: Enums.ViewportType.STACK, element });
    this.viewport = this.engine.getViewport(id) as Types.IStackViewport;
    element.addEventListener('contextmenu', event => event.preventDefault());
    this.toolGroupId = `tools-${id}`;
    const group = ToolGroupManager.getToolGroup(this.toolGroupId) ?? ToolGroupManager.createToolGroup(this.toolGroupId);
    if (!group) throw new Error('cannot create a tool group');
    for (const tool of ALL_TOOLS) {
      if (!group.hasTool(tool.toolName)) group.addTool(tool.toolName);
    }
    const { MouseBindings } = ToolEnums;
    group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
    group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
    group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
    for (const tool of [LengthTool, AngleTool, EllipticalROITool, RectangleROITool, ProbeTool]) group.setToolPassive(tool.toolName);
    group.addViewport(id, this.engine.id);
    // A viewport that changes size (a layout switch, the window) fits its
    // image again: keeping the camera would leave it cut off or tiny.
    this.resizeObserver = new ResizeObserver(() => this.engine.resize(true, false));
    this.resizeObserver.observe(element);
  }

  /** Shows `imageIds` from `index`; resolves once the first image is on screen. */
  async show(imageIds: string[], index = 0): Promise<void> {
    await this.viewport.setStack(imageIds, index);
    this.viewport.render();
    // The rest of the stack streams in behind the first image, nearest
    // first, so scrolling meets decoded images rather than the network.
    if (imageIds.length > 1) toolUtilities.stackPrefetch.enable(this.element);
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
    toolUtilities.cine.playClip(this.element, { framesPerSecond: fps, loop: true });
  }

  stop(): void {
    toolUtilities.cine.stopClip(this.element);
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
    const group = ToolGroupManager.getToolGroup(this.toolGroupId);
    if (!group) return;
    const current = group.getActivePrimaryMouseButtonTool();
    if (current) group.setToolPassive(current);
    group.setToolActive(LEFT_BUTTON_TOOLS[tool].toolName, { bindings: [{ mouseButton: ToolEnums.MouseBindings.Primary }] });
  }

  /** The measurements drawn on this viewport's images. */
  measurements(): Measurement[] {
    const found: Measurement[] = [];
    for (const [toolName, kind] of Object.entries(KIND_OF_TOOL)) {
      for (const drawn of annotation.state.getAnnotations(toolName, this.element) ?? []) {
        const imageId = drawn.metadata?.referencedImageId ?? '';
        const statistics = (drawn.data as { cachedStats?: Record<string, Record<string, unknown>> }).cachedStats ?? {};
        const stats = statistics[`imageId:${imageId}`] ?? Object.values(statistics)[0];
        if (!stats) continue;
        const measurement: Measurement = { uid: drawn.annotationUID ?? '', kind, imageId, ...calibration(imageId) };
        const set = <K extends keyof Measurement>(key: K, value: Measurement[K] | undefined) => {
          if (value !== undefined) measurement[key] = value;
        };
        set('length', finite(stats.length));
        set('angle', finite(stats.angle));
        set('area', finite(stats.area));
        set('mean', finite(stats.mean));
        set('stdDev', finite(stats.stdDev));
        set('value', finite(stats.value));
        const modalityUnit = stats.modalityUnit;
        set('valueUnit', typeof modalityUnit === 'string' && modalityUnit !== 'raw' ? modalityUnit : undefined);
        found.push(measurement);
      }
    }
    return found;
  }

  /** Calls `listener` when a measurement is made, moved or removed. */
  onMeasurementsChange(listener: () => void): () => void {
    const { Events } = ToolEnums;
    const events = [Events.ANNOTATION_COMPLETED, Events.ANNOTATION_MODIFIED, Events.ANNOTATION_REMOVED];
    for (const event of events) eventTarget.addEventListener(event, listener);
    return () => {
      for (const event of events) eventTarget.removeEventListener(event, listener);
    };
  }

  /** Removes every measurement of this viewport. */
  clearMeasurements(): void {
    for (const toolName of Object.keys(KIND_OF_TOOL)) {
      for (const drawn of annotation.state.getAnnotations(toolName, this.element) ?? []) {
        if (drawn.annotationUID) annotation.state.removeAnnotation(drawn.annotationUID);
      }
    }
    this.viewport.render();
  }

  /** Back to the image as first shown: window, zoom, pan, rotation, inversion. */
  reset(): void {
    this.viewport.resetProperties();
    this.viewport.resetCamera();
    this.viewport.render();
  }

  destroy(): void {
    this.stop();
    toolUtilities.stackPrefetch.disable(this.element);
    this.resizeObserver.disconnect();
    ToolGroupManager.destroyToolGroup(this.toolGroupId);
    this.engine.disableElement(this.viewport.id);
  }
}
