import { describe, expect, it } from 'vitest';
import type { ReadRequest, ReportVersion, User } from '../api';
import { reportView } from './report-state';

const user = (id: number, roles: User['roles']): User => ({ id, username: `u${id}`, display_name: `U${id}`, roles, site_id: null });
const chen = user(1, ['radiologist']);
const huang = user(2, ['radiologist', 'reviewer']);
const liu = user(3, ['ecg_doctor', 'reviewer']);

function request(over: Partial<ReadRequest>): ReadRequest {
  return {
    id: 9, site_id: 1, site: '东山县医院', origin: 'registered', reconciled: true, state: 'reading', priority: 'routine', modality: 'CT',
    study_uid: '1.2', study_date: null, patient_name: null, patient_sex: null, patient_age: null, patient_id: null, department: null,
    accession_number: null, requested_exam: null, clinical_history: null, requesting_physician: null, created_at: 0, images_at: 0,
    deadline_at: null, overdue: false, assigned_to: 1, assigned_to_name: '陈医生', locked_until: null, critical: false,
    downloaded_at: null, identity_mismatch: null, identity_confirmed_at: null, ...over,
  };
}

function version(over: Partial<ReportVersion>): ReportVersion {
  return {
    id: 1, request_id: 9, version: 1, kind: 'report', state: 'draft', template: 'ct', method: '', findings: '', conclusion: '',
    critical: false, key_images: [], author_id: 1, author_name: '陈医生', author_signed_at: null, reviewer_id: null, reviewer_name: null,
    reviewer_signed_at: null, supersedes: null, pdf_sha256: null, verify_token: null, revoked: false, revoked_reason: null, edited_by_reviewer: false,
    created_at: 0, updated_at: 0, ...over,
  };
}

const acts = (u: User, r: ReadRequest, v: ReportVersion[]) => [...reportView(u, r, v).acts].sort();

describe('reportView', () => {
  it('lets the holder open, write and sign; nobody else', () => {
    expect(acts(chen, request({}), [])).toEqual(['open', 'release']);
    expect(reportView(chen, request({}), [version({})]).editable).toBe(true);
    expect(acts(chen, request({}), [version({})])).toEqual(['flag', 'release', 'sign']);
    expect(reportView(huang, request({}), [version({})]).editable).toBe(false);
    expect(acts(huang, request({}), [version({})])).toEqual(['flag']);
  });

  it('offers co-signing and returning to a reviewer who is not the author', () => {
    const pending = [version({ state: 'preliminary' })];
    const r = request({ state: 'preliminary', assigned_to: null });
    expect(acts(huang, r, pending)).toEqual(['cosign', 'flag', 'return']);
    expect(acts(chen, r, pending)).toEqual(['flag']);
    expect(acts(user(1, ['radiologist', 'reviewer']), r, pending)).toEqual(['flag']);
  });

  it('keeps ECG reports to ECG doctors', () => {
    const r = request({ modality: 'ECG', state: 'preliminary', assigned_to: null });
    expect(acts(huang, r, [version({ state: 'preliminary' })])).toEqual(['flag']);
    expect(acts(liu, r, [version({ state: 'preliminary' })])).toEqual(['cosign', 'flag', 'return']);
  });

  it('amends a final report only through a new version, and lets the amendment author edit it', () => {
    const final = version({ state: 'final' });
    const r = request({ state: 'final', assigned_to: null });
    expect(acts(chen, r, [final])).toEqual(['addendum', 'amendment']);
    const view = reportView(chen, r, [final, version({ id: 2, version: 2, kind: 'addendum' })]);
    expect(view.final?.id).toBe(1);
    expect(view.working?.id).toBe(2);
    expect(view.editable).toBe(true);
    expect(reportView(huang, r, [final, version({ id: 2, version: 2, kind: 'addendum' })]).editable).toBe(false);
  });
});
