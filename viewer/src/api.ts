// The centre's HTTP API as the application uses it: same-origin fetches
// carrying the HttpOnly session cookie, JSON both ways, every failure an
// `ApiError` with the server's own reason.

/** The header every state-changing request carries: a page of another
 * origin cannot send it without a CORS grant, which `/api` never gives,
 * so the centre refuses cookie-authenticated changes that lack it. */
export const CSRF_HEADER = 'X-Telediag-Request';

export class ApiError extends Error {
  readonly status: number;
  /** The `error` field of the centre's JSON answer, or what went wrong on the way. */
  readonly reason: string;
  /** The answer's `code`, where the centre names what went wrong for clients to act on (`signing_pin_not_set`). */
  readonly code: string | null;

  constructor(status: number, reason: string, code: string | null = null) {
    super(`${status}: ${reason}`);
    this.status = status;
    this.reason = reason;
    this.code = code;
  }

  get unauthenticated(): boolean {
    return this.status === 401;
  }
}

/** Called when any request finds the session gone (expired, logged out elsewhere). */
let onUnauthenticated: (() => void) | null = null;
export function whenUnauthenticated(handler: () => void): void {
  onUnauthenticated = handler;
}

export function api<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
  return send<T>(method, path, body, 'application/json');
}

/** A DICOMweb GET answered in DICOM JSON; `undefined` for 204 (a search with no match). */
export function dicomJson<T>(path: string): Promise<T | undefined> {
  return send<T | undefined>('GET', path, undefined, 'application/dicom+json');
}

async function send<T>(method: string, path: string, body: unknown, accept: string): Promise<T> {
  const headers: Record<string, string> = { Accept: accept };
  if (method !== 'GET') headers[CSRF_HEADER] = '1';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new ApiError(0, `the centre cannot be reached (${String(error)})`);
  }
  if (response.status === 401 && path !== '/api/login') onUnauthenticated?.();
  const text = await response.text();
  if (!response.ok) {
    throw new ApiError(response.status, reasonOf(text) ?? response.statusText, codeOf(text));
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

function codeOf(text: string): string | null {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && 'code' in parsed && typeof parsed.code === 'string') return parsed.code;
  } catch {
    // Not JSON.
  }
  return null;
}

function reasonOf(text: string): string | null {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && 'error' in parsed && typeof parsed.error === 'string') return parsed.error;
  } catch {
    // Not JSON: a proxy's page, say.
  }
  return text.trim().slice(0, 200) || null;
}

// ---- What the API returns ---------------------------------------------

/** `GET /api/me/signing`: the doctor's signing key and PIN state. */
export interface SigningStatus {
  has_pin: boolean;
  subject: string | null;
  fingerprint: string | null;
  source: string | null;
  locked_until: number | null;
  unlocked_until: number | null;
  max_unlock_minutes: number;
  /** A registration officer's enrolment code awaits use (a new key can be issued). */
  enrolment_pending: boolean;
}

export type Role = 'admin' | 'site_user' | 'radiologist' | 'ecg_doctor' | 'reviewer';

export interface User {
  id: number;
  username: string;
  display_name: string;
  roles: Role[];
  site_id: number | null;
}

export interface LoginAnswer {
  token: string;
  expires_at: number;
  user: User;
}

export type RequestState = 'received' | 'assigned' | 'reading' | 'preliminary' | 'final' | 'amended' | 'cancelled';
export type Priority = 'stat' | 'urgent' | 'routine';

export interface ReadRequest {
  id: number;
  site_id: number;
  site: string;
  origin: string;
  reconciled: boolean;
  state: RequestState;
  priority: Priority;
  modality: string | null;
  study_uid: string | null;
  study_date: string | null;
  patient_name: string | null;
  patient_sex: string | null;
  patient_age: string | null;
  patient_id: string | null;
  department: string | null;
  accession_number: string | null;
  requested_exam: string | null;
  clinical_history: string | null;
  requesting_physician: string | null;
  created_at: number;
  images_at: number | null;
  deadline_at: number | null;
  overdue: boolean;
  assigned_to: number | null;
  assigned_to_name: string | null;
  locked_until: number | null;
  critical: boolean;
  downloaded_at: number | null;
  identity_mismatch: string | null;
  identity_confirmed_at: number | null;
}

export type ReportKind = 'report' | 'addendum' | 'amendment';
export type ReportState = 'draft' | 'preliminary' | 'final' | 'superseded';

/** One version of a request's report (`GET /api/requests/{id}/report`). */
export interface ReportVersion {
  id: number;
  request_id: number;
  version: number;
  kind: ReportKind;
  state: ReportState;
  template: string;
  method: string;
  findings: string;
  conclusion: string;
  critical: boolean;
  key_images: string[];
  author_id: number | null;
  author_name: string | null;
  author_signed_at: number | null;
  reviewer_id: number | null;
  reviewer_name: string | null;
  reviewer_signed_at: number | null;
  supersedes: number | null;
  pdf_sha256: string | null;
  verify_token: string | null;
  revoked: boolean;
  revoked_reason: string | null;
  /** The reviewer revised the text and signed it alone, as its editor (审核修改). */
  edited_by_reviewer: boolean;
  created_at: number;
  updated_at: number;
}

export interface ReportTemplate {
  id: string;
  name: string;
  method: string;
  findings: string;
  conclusion: string;
}

export interface Phrase {
  section: 'findings' | 'conclusion';
  text: string;
}
