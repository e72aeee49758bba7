// What can start before Cornerstone is here. Loading and evaluating its
// 4 MB of script takes longer than asking the centre for a case, so the
// script is fetched as soon as a case is being opened, the rendering
// engine is made as soon as it has arrived, and a series' metadata is
// asked for as soon as the series is known, not after the script.

import { dicomJson } from '../api';
import type { DicomJson } from './dicom-json';

let started = false;

export function preloadImaging(): void {
  if (started) return;
  started = true;
  void import('./cornerstone').then(imaging => {
    performance.mark('telediag:imaging-loaded');
    imaging.warmUp();
  });
}

/** The URL of a series' WADO-RS metadata (absolute: the image ids are built on it). */
export function seriesRoot(study: string, series: string): string {
  return `${location.origin}/dicom-web/studies/${encodeURIComponent(study)}/series/${encodeURIComponent(series)}`;
}

const metadata = new Map<string, Promise<DicomJson[]>>();

/** Starts fetching a series' metadata; `takeMetadata` picks it up. */
export function prefetchMetadata(study: string, series: string): void {
  const root = seriesRoot(study, series);
  if (!metadata.has(root)) {
    const asked = dicomJson<DicomJson[]>(`${root}/metadata`).then(found => found ?? []);
    asked.catch(() => metadata.delete(root));
    metadata.set(root, asked);
  }
}

/** The metadata asked for ahead, once (a second viewer of the series asks again), or a new request. */
export function takeMetadata(root: string): Promise<DicomJson[]> {
  const ahead = metadata.get(root);
  metadata.delete(root);
  return ahead ?? dicomJson<DicomJson[]>(`${root}/metadata`).then(found => found ?? []);
}
