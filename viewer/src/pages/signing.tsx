// A doctor's own signing settings: their certificate, whether signing is
// locked or unlocked, changing the signing PIN (the old PIN keeps the
// same key; a forgotten one means a new key and the old certificate
// revoked), and bringing their own certificate as PKCS#12.

import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, CSRF_HEADER, type SigningStatus, api } from '../api';
import { useApp } from '../context';
import { dateTime } from '../format';

export function Signing() {
  const { t, locale } = useApp();
  const [status, setStatus] = useState<SigningStatus | null>(null);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [busy, setBusy] = useState(false);

  const reload = useCallback(async () => setStatus(await api<SigningStatus>('GET', '/api/me/signing')), []);
  useEffect(() => {
    void reload().catch(e => setMessage({ text: e instanceof ApiError ? e.reason : String(e), error: true }));
  }, [reload]);

  const run = async (work: () => Promise<unknown>, done: string) => {
    setBusy(true);
    setMessage(null);
    try {
      await work();
      await reload();
      setMessage({ text: done, error: false });
    } catch (e) {
      setMessage({ text: e instanceof ApiError ? e.reason : String(e), error: true });
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="signing-settings" aria-labelledby="signing-title">
      <h1 id="signing-title">{t('signing.title')}</h1>
      <p class="muted">{t('signing.explain')}</p>
      {status && (
        <dl class="signing-status" data-has-pin={String(status.has_pin)}>
          <dt>{t('signing.certificate')}</dt>
          <dd>{status.subject ?? t('signing.none')}</dd>
          {status.fingerprint && (
            <>
              <dt>SHA-256</dt>
              <dd class="mono small">{status.fingerprint}</dd>
            </>
          )}
          {status.source && (
            <>
              <dt>{t('signing.source')}</dt>
              <dd>{status.source === 'pkcs12' ? t('signing.sourceImported') : t('signing.sourceCentre')}</dd>
            </>
          )}
          {status.locked_until && (
            <>
              <dt>{t('signing.locked')}</dt>
              <dd class="error">{dateTime(status.locked_until, locale)}</dd>
            </>
          )}
          {status.unlocked_until && (
            <>
              <dt>{t('signing.unlocked')}</dt>
              <dd>
                {dateTime(status.unlocked_until, locale)}{' '}
                <button type="button" class="link small" disabled={busy} onClick={() => void run(() => api('DELETE', '/api/me/signing-unlock'), t('signing.lockedAgain'))}>
                  {t('signing.lockNow')}
                </button>
              </dd>
            </>
          )}
        </dl>
      )}
      {message && (
        <p class={message.error ? 'error' : 'notice'} role={message.error ? 'alert' : 'status'}>
          {message.text}
        </p>
      )}
      <PinForm hasPin={status?.has_pin ?? false} busy={busy} run={run} />
      <Pkcs12Form busy={busy} run={run} />
    </section>
  );
}

type Run = (work: () => Promise<unknown>, done: string) => Promise<void>;

function PinForm(props: { hasPin: boolean; busy: boolean; run: Run }) {
  const { t } = useApp();
  const [password, setPassword] = useState('');
  const [current, setCurrent] = useState('');
  const [pin, setPin] = useState('');
  const [repeat, setRepeat] = useState('');
  const [forgotten, setForgotten] = useState(false);
  const [enrolmentCode, setEnrolmentCode] = useState('');
  // A new key (a first PIN, or a forgotten one) needs the registration officer's code.
  const newKey = !props.hasPin || forgotten;
  const submit = (event: Event) => {
    event.preventDefault();
    if (pin !== repeat) {
      void props.run(() => Promise.reject(new Error(t('confirm.pinsDiffer'))), '');
      return;
    }
    const body: Record<string, string> = { password, pin };
    if (props.hasPin && !forgotten) body.current_pin = current;
    if (newKey) body.enrolment_code = enrolmentCode.trim();
    void props.run(async () => {
      await api('PUT', '/api/me/signing-pin', body);
      setEnrolmentCode('');
      setPassword('');
      setCurrent('');
      setPin('');
      setRepeat('');
    }, props.hasPin ? (forgotten ? t('signing.reissued') : t('signing.changed')) : t('signing.issued'));
  };
  return (
    <form class="admin-form" onSubmit={submit} aria-label={t('signing.pinTitle')}>
      <h2>{props.hasPin ? t('signing.pinTitle') : t('signing.choose')}</h2>
      <label>
        {t('confirm.password')}
        <input type="password" name="password" autoComplete="current-password" value={password} onInput={e => setPassword(e.currentTarget.value)} required />
      </label>
      {props.hasPin && (
        <label class="check">
          <input type="checkbox" checked={forgotten} onChange={e => setForgotten(e.currentTarget.checked)} />
          {t('signing.forgotten')}
        </label>
      )}
      {props.hasPin && !forgotten && (
        <label>
          {t('signing.currentPin')}
          <input type="password" name="current-signing-pin" autoComplete="one-time-code" value={current} onInput={e => setCurrent(e.currentTarget.value)} required />
        </label>
      )}
      <label>
        {t('confirm.newPin')}
        <input type="password" name="new-signing-pin" autoComplete="one-time-code" minLength={6} value={pin} onInput={e => setPin(e.currentTarget.value)} required />
      </label>
      <label>
        {t('confirm.repeatPin')}
        <input type="password" name="repeat-signing-pin" autoComplete="one-time-code" value={repeat} onInput={e => setRepeat(e.currentTarget.value)} required />
      </label>
      {newKey && <EnrolmentField value={enrolmentCode} onInput={setEnrolmentCode} />}
      {forgotten && <p class="muted small">{t('signing.forgottenExplain')}</p>}
      <button type="submit" disabled={props.busy}>
        {props.hasPin ? (forgotten ? t('signing.reissue') : t('signing.change')) : t('signing.choose')}
      </button>
    </form>
  );
}

function Pkcs12Form(props: { busy: boolean; run: Run }) {
  const { t } = useApp();
  const [file, setFile] = useState<File | null>(null);
  const [p12Password, setP12Password] = useState('');
  const [password, setPassword] = useState('');
  const [pin, setPin] = useState('');
  const [enrolmentCode, setEnrolmentCode] = useState('');
  const submit = (event: Event) => {
    event.preventDefault();
    if (!file) return;
    void props.run(async () => {
      // Passwords and the PIN travel in headers, never in the URL (which is logged).
      const response = await fetch('/api/me/signing-identity', {
        method: 'PUT',
        credentials: 'same-origin',
        headers: {
          [CSRF_HEADER]: '1',
          'Content-Type': 'application/x-pkcs12',
          'X-Password': password,
          'X-Pkcs12-Password': p12Password,
          'X-Signing-Pin': pin,
          'X-Enrolment-Code': enrolmentCode.trim(),
        },
        body: await file.arrayBuffer(),
      });
      setPassword('');
      setP12Password('');
      setPin('');
      setEnrolmentCode('');
      if (!response.ok) {
        const body = (await response.json().catch(() => ({}))) as { error?: string };
        throw new ApiError(response.status, body.error ?? response.statusText);
      }
    }, t('signing.imported'));
  };
  return (
    <form class="admin-form" onSubmit={submit} aria-label={t('signing.importTitle')}>
      <h2>{t('signing.importTitle')}</h2>
      <p class="muted small">{t('signing.importExplain')}</p>
      <label>
        {t('signing.p12')}
        <input type="file" accept=".p12,.pfx,application/x-pkcs12" onChange={e => setFile(e.currentTarget.files?.[0] ?? null)} required />
      </label>
      <label>
        {t('signing.p12Password')}
        <input type="password" autoComplete="off" value={p12Password} onInput={e => setP12Password(e.currentTarget.value)} />
      </label>
      <label>
        {t('confirm.password')}
        <input type="password" autoComplete="current-password" value={password} onInput={e => setPassword(e.currentTarget.value)} required />
      </label>
      <label>
        {t('confirm.pin')}
        <input type="password" autoComplete="one-time-code" minLength={6} value={pin} onInput={e => setPin(e.currentTarget.value)} required />
      </label>
      <EnrolmentField value={enrolmentCode} onInput={setEnrolmentCode} />
      <button type="submit" disabled={props.busy}>
        {t('signing.import')}
      </button>
    </form>
  );
}

/** The one-time code the registration officer hands the doctor for a new key. */
function EnrolmentField(props: { value: string; onInput: (value: string) => void }) {
  const { t } = useApp();
  return (
    <label>
      {t('confirm.enrolmentCode')}
      <input
        name="enrolment-code"
        autoComplete="off"
        spellcheck={false}
        placeholder="XXXX-XXXX-XXXX"
        value={props.value}
        onInput={e => props.onInput(e.currentTarget.value)}
        required
      />
      <span class="muted small">{t('confirm.enrolmentExplain')}</span>
    </label>
  );
}
