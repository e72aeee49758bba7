// What the report panel offers a user on a request: which version they
// see, whether they may type into it, and which signing acts are theirs.
// It mirrors the centre's rules so that nobody is shown a button the
// centre would refuse; the centre still decides every act.

import type { ReadRequest, ReportVersion, User } from '../api';

export type ReportAct = 'open' | 'sign' | 'cosign' | 'return' | 'addendum' | 'amendment' | 'flag' | 'release';

export interface ReportView {
  /** The version being written or awaiting review, if any. */
  working: ReportVersion | null;
  /** The newest final version, if any (what the hospital has). */
  final: ReportVersion | null;
  /** The working version is a draft this user may edit. */
  editable: boolean;
  acts: ReadonlySet<ReportAct>;
}

/** The role that reads this request's modality (ECGs are read by ECG doctors). */
export function readsModality(user: User, modality: string | null): boolean {
  return modality === 'ECG' ? user.roles.includes('ecg_doctor') : user.roles.includes('radiologist');
}

export function reportView(user: User, request: ReadRequest, versions: readonly ReportVersion[]): ReportView {
  const working = [...versions].reverse().find(v => v.state === 'draft' || v.state === 'preliminary') ?? null;
  const final = [...versions].reverse().find(v => v.state === 'final') ?? null;
  const reader = readsModality(user, request.modality);
  const holder = request.assigned_to === user.id;
  const open = request.state === 'assigned' || request.state === 'reading';
  const acts = new Set<ReportAct>();

  if (reader && holder && open && !working && versions.length === 0) acts.add('open');
  if (holder && open) acts.add('release');
  const editable =
    reader && working?.state === 'draft' && (working.kind === 'report' ? holder : working.author_id === user.id);
  if (editable) acts.add('sign');
  if (working?.state === 'preliminary' && reader && user.roles.includes('reviewer') && working.author_id !== user.id) {
    acts.add('cosign');
    acts.add('return');
  }
  if (!working && final && reader) {
    acts.add('addendum');
    acts.add('amendment');
  }
  if ((reader || user.roles.includes('reviewer')) && working) acts.add('flag');
  return { working, final, editable, acts };
}
