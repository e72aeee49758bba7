// Reading values out of DICOM JSON (PS3.18 F.2), as QIDO and metadata return it.

export type DicomJson = Record<string, { vr?: string; Value?: unknown[]; BulkDataURI?: string } | undefined>;

/** The first value of `tag` as text (a person name's alphabetic or ideographic group joined as DICOM writes it). */
export function text(item: DicomJson, tag: string): string {
  const value = item[tag]?.Value?.[0];
  if (value === undefined || value === null) return '';
  if (typeof value === 'object') {
    const name = value as { Alphabetic?: string; Ideographic?: string; Phonetic?: string };
    return [name.Alphabetic ?? '', name.Ideographic ?? '', name.Phonetic ?? ''].join('=').replace(/=+$/, '');
  }
  return String(value);
}

/** The values of `tag` as numbers; an absent or non-numeric value gives []. */
export function numbers(item: DicomJson, tag: string): number[] {
  return (item[tag]?.Value ?? []).map(v => Number(v)).filter(n => Number.isFinite(n));
}

export const TAGS = {
  sopInstanceUid: '00080018',
  modality: '00080060',
  seriesDescription: '0008103E',
  seriesInstanceUid: '0020000E',
  seriesNumber: '00200011',
  instanceNumber: '00200013',
  imagePosition: '00200032',
  imageOrientation: '00200037',
  sliceLocation: '00201041',
  sliceThickness: '00180050',
  numberOfFrames: '00280008',
  seriesInstances: '00201209',
  frameTime: '00181063',
  recommendedFrameRate: '00082144',
  cineRate: '00180040',
} as const;

function normalOf(item: DicomJson): number[] | null {
  const o = numbers(item, TAGS.imageOrientation);
  if (o.length !== 6) return null;
  const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0] = o;
  return [b * f - c * e, c * d - a * f, a * e - b * d];
}

/**
 * Where a slice lies along its own normal (mm): Image Position (Patient)
 * projected on the cross product of the orientation's row and column. For
 * a CT stack this is the table position the overlay shows and the one
 * synchronised scrolling matches; `null` without position and orientation.
 */
export function slicePosition(item: DicomJson): number | null {
  const normal = normalOf(item);
  const position = numbers(item, TAGS.imagePosition);
  if (!normal || position.length !== 3) return null;
  return position.reduce((sum, v, i) => sum + v * (normal[i] ?? 0), 0);
}

/** Pixel spacing attributes: of the patient plane, at the detector, and a nominal one. */
const SPACING_TAGS = ['00280030', '00181164', '00182010'];

/**
 * The instance without pixel spacings that cannot be: a value of zero,
 * negative or not a number (modalities write `0.000\0.000` when they do
 * not know). Left in, they make every distance and the zoom NaN; taken
 * out, the image is shown and measured in pixels, which it says.
 */
export function withoutImpossibleSpacing(item: DicomJson): DicomJson {
  const bad = SPACING_TAGS.filter(tag => {
    const values = item[tag]?.Value;
    if (!values) return false;
    const spacing = values.map(Number);
    return spacing.length !== 2 || spacing.some(v => !Number.isFinite(v) || v <= 0);
  });
  if (bad.length === 0) return item;
  const copy = { ...item };
  for (const tag of bad) delete copy[tag];
  return copy;
}

/** Frames per second a multi-frame object asks to be played at (Recommended Display Frame Rate, Cine Rate, or 1000 / Frame Time). */
export function frameRate(item: DicomJson): number | null {
  const recommended = numbers(item, TAGS.recommendedFrameRate)[0] ?? numbers(item, TAGS.cineRate)[0];
  if (recommended && recommended > 0) return recommended;
  const frameTime = numbers(item, TAGS.frameTime)[0];
  return frameTime && frameTime > 0 ? 1000 / frameTime : null;
}

/**
 * Instances in reading order: by position along the slice normal when every
 * one has a position and orientation (a CT stack, head to foot as stored),
 * else by Instance Number.
 */
export function readingOrder(instances: readonly DicomJson[]): DicomJson[] {
  const first = instances[0];
  const normal = first ? normalOf(first) : null;
  const positioned =
    normal !== null && instances.every(i => numbers(i, TAGS.imagePosition).length === 3 && normalOf(i) !== null);
  const key = (item: DicomJson): number => {
    if (positioned && normal) {
      const [x = 0, y = 0, z = 0] = numbers(item, TAGS.imagePosition);
      return -(x * (normal[0] ?? 0) + y * (normal[1] ?? 0) + z * (normal[2] ?? 0));
    }
    return numbers(item, TAGS.instanceNumber)[0] ?? 0;
  };
  return [...instances].sort((a, b) => key(a) - key(b) || (numbers(a, TAGS.instanceNumber)[0] ?? 0) - (numbers(b, TAGS.instanceNumber)[0] ?? 0));
}
