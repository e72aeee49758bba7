// A modal that confirms a signing act with the signer's own password (and,
// for some acts, a note such as what to change). The act runs from the
// dialog so that a refusal (wrong password, locked account, the centre's
// reason) is shown where the password was typed.

import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { useApp } from '../context';

export interface ConfirmRequest {
  title: string;
  /** What signing means here, shown above the password. */
  explanation: string;
  /** A text the act needs (a reason, a note), labelled; omitted when none. */
  note?: { label: string; required: boolean };
  /** Password asked (signing acts); a note alone otherwise. */
  password: boolean;
  confirmLabel: string;
  run: (password: string, note: string) => Promise<void>;
}

export function ConfirmDialog(props: { request: ConfirmRequest | null; onClose: () => void; children?: ComponentChildren }) {
  const { t } = useApp();
  const dialog = useRef<HTMLDialogElement>(null);
  const [password, setPassword] = useState('');
  const [note, setNote] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const request = props.request;

  useEffect(() => {
    setPassword('');
    setNote('');
    setError(null);
    setBusy(false);
    if (request && dialog.current && !dialog.current.open) dialog.current.showModal();
    if (!request && dialog.current?.open) dialog.current.close();
  }, [request]);

  if (!request) return <dialog ref={dialog} class="confirm" />;
  const submit = async (event: Event) => {
    event.preventDefault();
    if (request.note?.required && !note.trim()) {
      setError(t('confirm.noteRequired', { label: request.note.label }));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await request.run(password, note.trim());
      props.onClose();
    } catch (e) {
      // The centre's reasons are English; the one a signer meets most is said in their language.
      const wrongPassword = e instanceof ApiError && e.status === 403 && e.reason.endsWith('wrong password');
      setError(wrongPassword ? t('confirm.wrongPassword') : e instanceof ApiError ? e.reason : String(e));
      setPassword('');
      setBusy(false);
    }
  };
  return (
    <dialog ref={dialog} class="confirm" aria-labelledby="confirm-title" onCancel={props.onClose}>
      <form onSubmit={submit}>
        <h2 id="confirm-title">{request.title}</h2>
        <p>{request.explanation}</p>
        {request.note && (
          <label>
            {request.note.label}
            <textarea rows={3} value={note} onInput={e => setNote(e.currentTarget.value)} required={request.note.required} />
          </label>
        )}
        {request.password && (
          <label>
            {t('confirm.password')}
            <input
              type="password"
              autoComplete="current-password"
              value={password}
              onInput={e => setPassword(e.currentTarget.value)}
              required
              autoFocus
            />
          </label>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <div class="dialog-actions">
          <button type="button" onClick={props.onClose} disabled={busy}>
            {t('confirm.cancel')}
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? t('confirm.working') : request.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
