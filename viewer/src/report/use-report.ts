// A request's report as the reading page holds it: the versions, the
// draft text being typed with its autosave, and the signing acts. Shared
// by the report panel and the image viewer (which marks key images).

import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, type ReadRequest, type ReportVersion, type User, api } from '../api';
import { DraftSaver, type DraftText, type SaveStatus } from './draft-saver';
import { type ReportView, reportView } from './report-state';

/** The most key images a report form prints (the centre refuses more). */
export const MAX_KEY_IMAGES = 4;

/** Signing acts and what each sends besides the actor's credential. */
export type SigningAct =
  | { act: 'sign' }
  | { act: 'cosign'; base: number; revised?: Pick<DraftText, 'method' | 'findings' | 'conclusion'> }
  | { act: 'return'; reason: string }
  | { act: 'addendum' }
  | { act: 'amendment' };

export interface ReportHandle {
  request: ReadRequest;
  versions: ReportVersion[];
  view: ReportView;
  text: DraftText | null;
  saveStatus: SaveStatus;
  saveReason: string;
  edit: (change: Partial<DraftText>) => void;
  toggleKeyImage: (sop: string) => void;
  /**
   * Runs an act confirmed with `credential`: the signing PIN for a
   * signature (empty while signing is unlocked for the session), the
   * password otherwise. Rejects with the centre's reason.
   */
  perform: (act: SigningAct, credential: string) => Promise<void>;
  flagCritical: (note: string) => Promise<void>;
  release: () => Promise<void>;
  reload: () => Promise<void>;
  /** Saves what is unsaved now. */
  flush: () => Promise<void>;
}

const PATHS: Record<SigningAct['act'], string> = {
  sign: 'sign',
  cosign: 'review',
  return: 'return',
  addendum: 'amend',
  amendment: 'amend',
};

export function useReport(user: User, initial: ReadRequest): ReportHandle {
  const id = initial.id;
  const [request, setRequest] = useState(initial);
  const [versions, setVersions] = useState<ReportVersion[]>([]);
  const [text, setText] = useState<DraftText | null>(null);
  const [saveStatus, setSaveStatus] = useState<SaveStatus>('saved');
  const [saveReason, setSaveReason] = useState('');
  const saver = useRef<DraftSaver | null>(null);
  const textRef = useRef<DraftText | null>(null);

  const adopt = useCallback((nextRequest: ReadRequest, nextVersions: ReportVersion[]) => {
    setRequest(nextRequest);
    setVersions(nextVersions);
    const view = reportView(user, nextRequest, nextVersions);
    const working = view.working;
    const draft: DraftText | null = working
      ? { method: working.method, findings: working.findings, conclusion: working.conclusion, key_images: working.key_images }
      : null;
    textRef.current = draft;
    setText(draft);
    setSaveStatus('saved');
    setSaveReason('');
    saver.current =
      working && view.editable
        ? new DraftSaver(
            working,
            async (t, base) => api<ReportVersion>('PUT', `/api/requests/${id}/report`, { ...t, base_updated_at: base }),
            (status, saved, reason) => {
              setSaveStatus(status);
              setSaveReason(reason);
              if (saved) setVersions(all => all.map(v => (v.id === saved.id ? saved : v)));
            },
          )
        : null;
  }, [user, id]);

  const reload = useCallback(async () => {
    const answer = await api<{ request: ReadRequest; versions: ReportVersion[] }>('GET', `/api/requests/${id}/report`);
    let all = answer.versions;
    // The holder's first visit makes the draft from the template; later
    // visits keep the reader's hold on the request alive.
    if (reportView(user, answer.request, all).acts.has('open') || answer.request.assigned_to === user.id) {
      try {
        await api('POST', `/api/requests/${id}/report`);
        const again = await api<{ request: ReadRequest; versions: ReportVersion[] }>('GET', `/api/requests/${id}/report`);
        adopt(again.request, again.versions);
        return;
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 409) throw e;
        all = answer.versions;
      }
    }
    adopt(answer.request, all);
  }, [adopt, id, user]);

  useEffect(() => {
    void reload();
    return () => void saver.current?.close();
  }, [reload]);

  // The lock lasts while the reader works: any key or click within the
  // last lock period renews it every few minutes.
  useEffect(() => {
    if (request.assigned_to !== user.id) return;
    let active = false;
    const mark = () => (active = true);
    window.addEventListener('keydown', mark);
    window.addEventListener('pointerdown', mark);
    const timer = setInterval(() => {
      if (!active) return;
      active = false;
      void api('POST', `/api/requests/${id}/report`).catch(() => {});
    }, 5 * 60_000);
    return () => {
      clearInterval(timer);
      window.removeEventListener('keydown', mark);
      window.removeEventListener('pointerdown', mark);
    };
  }, [request.assigned_to, user.id, id]);

  const edit = useCallback((change: Partial<DraftText>) => {
    const current = textRef.current;
    if (!current || !saver.current) return;
    const next = { ...current, ...change };
    textRef.current = next;
    setText(next);
    saver.current.changed(next);
  }, []);

  const toggleKeyImage = useCallback(
    (sop: string) => {
      const current = textRef.current;
      if (!current) return;
      const has = current.key_images.includes(sop);
      if (!has && current.key_images.length >= MAX_KEY_IMAGES) return;
      edit({ key_images: has ? current.key_images.filter(k => k !== sop) : [...current.key_images, sop] });
    },
    [edit],
  );

  const flush = useCallback(async () => {
    await saver.current?.flush();
  }, []);

  const perform = useCallback(
    async (signing: SigningAct, credential: string) => {
      if (signing.act === 'sign') {
        await saver.current?.flush();
        if (saver.current && saver.current.status !== 'saved') throw new ApiError(409, saver.current.reason || 'the draft is not saved');
      }
      const signature = signing.act === 'sign' || signing.act === 'cosign';
      const body: Record<string, string> = signature ? (credential ? { pin: credential } : {}) : { password: credential };
      if (signing.act === 'return') body.reason = signing.reason;
      // A reviewer's revision (审核修改): signed by the reviewer alone.
      if (signing.act === 'cosign' && signing.revised) Object.assign(body, signing.revised);
      // The version the reviewer read: one changed since is refused.
      const sent: Record<string, string | number> = signing.act === 'cosign' ? { ...body, base_updated_at: signing.base } : body;
      if (signing.act === 'addendum' || signing.act === 'amendment') body.kind = signing.act;
      await api('POST', `/api/requests/${id}/report/${PATHS[signing.act]}`, sent);
      await reload();
    },
    [id, reload],
  );

  const flagCritical = useCallback(
    async (note: string) => {
      await api('POST', `/api/requests/${id}/critical`, { note });
      await reload();
    },
    [id, reload],
  );

  const release = useCallback(async () => {
    await saver.current?.flush();
    await api('POST', `/api/requests/${id}/release`);
  }, [id]);

  const view = useMemo(() => reportView(user, request, versions), [user, request, versions]);
  return { request, versions, view, text, saveStatus, saveReason, edit, toggleKeyImage, perform, flagCritical, release, reload, flush };
}
