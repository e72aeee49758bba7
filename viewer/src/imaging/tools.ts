// Cornerstone3D's tools, loaded after the first image is on screen: the
// mouse bindings (wheel scroll, window, pan, zoom), the measurement tools
// read back as `Measurement`s, cine and stack prefetching. Kept out of
// the first image's way because the tools package is most of the
// viewer's script, and evaluating it delayed the first image by a third.

import { Enums, eventTarget, metaData } from '@cornerstonejs/core';
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
  store,
  utilities as toolUtilities,
} from '@cornerstonejs/tools';

let initialised = false;

function initialise(): void {
  if (initialised) return;
  toolsInit();
  for (const tool of ALL_TOOLS) addTool(tool);
  initialised = true;
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

/** One viewport's tools. */
export class ViewportTools {
  private readonly groupId: string;

  constructor(
    private readonly element: HTMLDivElement,
    viewportId: string,
    engineId: string,
    tool: LeftButtonTool,
  ) {
    initialise();
    // Tools learn of viewports from the core's "element enabled" event; this
    // one was enabled before the tools were loaded, so it is introduced here
    // (its annotation layer, mouse and keyboard listeners).
    if (!store.state.enabledElements.includes(element)) {
      store.addEnabledElement(new CustomEvent('enabled', { detail: { element, viewportId, renderingEngineId: engineId } }) as never);
    }
    this.groupId = `tools-${viewportId}`;
    const group = ToolGroupManager.getToolGroup(this.groupId) ?? ToolGroupManager.createToolGroup(this.groupId);
    if (!group) throw new Error('cannot create a tool group');
    for (const t of ALL_TOOLS) {
      if (!group.hasTool(t.toolName)) group.addTool(t.toolName);
    }
    const { MouseBindings } = ToolEnums;
    group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
    group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
    for (const t of Object.values(LEFT_BUTTON_TOOLS)) group.setToolPassive(t.toolName);
    group.addViewport(viewportId, engineId);
    this.select(tool);
  }

  /** Puts `tool` on the left button; the others stay visible and editable. */
  select(tool: LeftButtonTool): void {
    const group = ToolGroupManager.getToolGroup(this.groupId);
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
  }

  /** The rest of the stack streams in behind the image on screen, nearest first. */
  prefetch(): void {
    toolUtilities.stackPrefetch.enable(this.element);
  }

  play(fps: number): void {
    toolUtilities.cine.playClip(this.element, { framesPerSecond: fps, loop: true });
  }

  stop(): void {
    toolUtilities.cine.stopClip(this.element);
  }

  destroy(): void {
    this.stop();
    toolUtilities.stackPrefetch.disable(this.element);
    ToolGroupManager.destroyToolGroup(this.groupId);
  }
}
