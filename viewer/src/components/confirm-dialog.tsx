// A modal that confirms an act with the actor's own credential: the
// signing PIN for a signature (the PIN opens the doctor's sealed key on
// the centre; nothing else can), the login password for the other acts,
// and for some acts a note such as what to change. The act runs from the
// dialog so that a refusal (wrong PIN, signing locked, the centre's
// reason) is shown where the credential was typed.
//
// A doctor without a PIN yet chooses one here, the first time they sign:
// their login password, the PIN twice. A doctor may keep signing unlocked
// for the session for the minutes the centre allows.

import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, type SigningStatus, api } from '../api';
import { useApp } from '../context';
import { dateTime } from '../format';

export interface ConfirmRequest {
  title: string;
  /** What the act means here, shown above the credential. */
  explanation: string;
  /** A text the act needs (a reason, a note), labelled; omitted when none. */
  note?: { label: string; required: boolean };
  /** `pin` for a signature, `password` for other confirmed acts, null for a note alone. */
  credential: 'pin' | 'password' | null;
  confirmLabel: string;
  /** Runs the act; `credential` is empty when signing is unlocked for the session. */
  run: (credential: string, note: string) => Promise<void>;
}

/** The shortest PIN the centre accepts (`signing::PIN_CHARS`). */
const MIN_PIN = 6;

export function ConfirmDialog(props: { request: ConfirmRequest | null; onClose: () => void; children?: ComponentChildren }) {
  const { t, locale } = useApp();
  const dialog = useRef<HTMLDialogElement>(null);
  const [secret, setSecret] = useState('');
  const [note, setNote] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [signing, setSigning] = useState<SigningStatus | null>(null);
  const [choosing, setChoosing] = useState(false);
  const [newPin, setNewPin] = useState('');
  const [repeatPin, setRepeatPin] = useState('');
  const [enrolmentCode, setEnrolmentCode] = useState('');
  const [keepUnlocked, setKeepUnlocked] = useState(false);
  const request = props.request;

  useEffect(() => {
    setSecret('');
    setNote('');
    setError(null);
    setBusy(false);
    setChoosing(false);
    setNewPin('');
    setRepeatPin('');
    setEnrolmentCode('');
    setKeepUnlocked(false);
    setSigning(null);
    if (request?.credential === 'pin') {
      void api<SigningStatus>('GET', '/api/me/signing')
        .then(status => {
          setSigning(status);
          setChoosing(!status.has_pin);
        })
        .catch(() => {});
    }
    if (request && dialog.current && !dialog.current.open) dialog.current.showModal();
    if (!request && dialog.current?.open) dialog.current.close();
  }, [request]);

  if (!request) return <dialog ref={dialog} class="confirm" />;
  const unlocked = request.credential === 'pin' && !choosing && (signing?.unlocked_until ?? 0) > Date.now();

  const explain = (e: unknown): string => {
    if (!(e instanceof ApiError)) return String(e);
    // The centre's reasons are English; those a signer meets most are said in their language.
    if (e.code === 'signing_pin_wrong') return `${t('confirm.wrongPin')} ${e.reason}`;
    if (e.code === 'signing_locked') return `${t('confirm.signingLocked')} ${e.reason}`;
    if (e.code === 'signing_enrolment_required' || e.code === 'signing_enrolment_wrong') return `${t('confirm.enrolmentRefused')} ${e.reason}`;
    if (e.status === 403 && e.reason.endsWith('wrong password')) return t('confirm.wrongPassword');
    return e.reason;
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    if (request.note?.required && !note.trim()) {
      setError(t('confirm.noteRequired', { label: request.note.label }));
      return;
    }
    if (choosing && (newPin.length < MIN_PIN || newPin !== repeatPin)) {
      setError(newPin.length < MIN_PIN ? t('confirm.pinTooShort', { n: MIN_PIN }) : t('confirm.pinsDiffer'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      let credential = unlocked ? '' : secret;
      if (choosing) {
        // The login password confirms who chooses; the key is issued sealed under the new PIN.
        const answer = await api<{ signing: SigningStatus }>('PUT', '/api/me/signing-pin', {
          password: secret,
          pin: newPin,
          enrolment_code: enrolmentCode.trim(),
        });
        setSigning(answer.signing);
        setChoosing(false);
        credential = newPin;
      }
      if (request.credential === 'pin' && keepUnlocked && signing && signing.max_unlock_minutes > 0) {
        await api('POST', '/api/me/signing-unlock', { pin: credential, minutes: signing.max_unlock_minutes });
        credential = '';
      }
      await request.run(credential, note.trim());
      props.onClose();
    } catch (e) {
      if (e instanceof ApiError && e.code === 'signing_pin_not_set') setChoosing(true);
      // The session's unlock ended while the dialog was open: ask for the PIN.
      if (e instanceof ApiError && e.code === 'signing_pin_required' && signing) setSigning({ ...signing, unlocked_until: null });
      setError(explain(e));
      // The credential typed is cleared; a new PIN chosen stays, so a wrong
      // password does not mean choosing it again.
      setSecret('');
      setBusy(false);
    }
  };

  const secretLabel = choosing || request.credential === 'password' ? t('confirm.password') : t('confirm.pin');
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
        {choosing && <p class="hint">{t('confirm.choosePinExplain')} {t('confirm.enrolmentExplain')}</p>}
        {unlocked && signing?.unlocked_until && (
          <p class="hint" data-testid="signing-unlocked">
            {t('confirm.unlockedUntil', { time: dateTime(signing.unlocked_until, locale) })}
          </p>
        )}
        {request.credential && !unlocked && (
          <label>
            {secretLabel}
            <input
              type="password"
              name={choosing || request.credential === 'password' ? 'password' : 'signing-pin'}
              // A PIN is not the password: browsers fill "off" password
              // fields anyway, and each wrong fill would count against it.
              autoComplete={choosing || request.credential === 'password' ? 'current-password' : 'one-time-code'}
              value={secret}
              onInput={e => setSecret(e.currentTarget.value)}
              required
              autoFocus
            />
          </label>
        )}
        {choosing && (
          <>
            <label>
              {t('confirm.newPin')}
              <input type="password" name="new-signing-pin" autoComplete="one-time-code" minLength={MIN_PIN} value={newPin} onInput={e => setNewPin(e.currentTarget.value)} required />
            </label>
            <label>
              {t('confirm.repeatPin')}
              <input type="password" name="repeat-signing-pin" autoComplete="one-time-code" value={repeatPin} onInput={e => setRepeatPin(e.currentTarget.value)} required />
            </label>
            <label>
              {t('confirm.enrolmentCode')}
              <input
                name="enrolment-code"
                autoComplete="off"
                spellcheck={false}
                placeholder="XXXX-XXXX-XXXX"
                value={enrolmentCode}
                onInput={e => setEnrolmentCode(e.currentTarget.value)}
                required
              />
            </label>
          </>
        )}
        {request.credential === 'pin' && !unlocked && (signing?.max_unlock_minutes ?? 0) > 0 && (
          <label class="check">
            <input type="checkbox" checked={keepUnlocked} onChange={e => setKeepUnlocked(e.currentTarget.checked)} />
            {t('confirm.keepUnlocked', { n: signing?.max_unlock_minutes ?? 0 })}
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
