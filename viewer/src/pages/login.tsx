// Sign in with a password. The centre answers with an HttpOnly session
// cookie; the page only learns who signed in.

import { useState } from 'preact/hooks';
import { ApiError, api, type LoginAnswer } from '../api';
import { LanguageSwitch } from '../components/language-switch';
import { useApp } from '../context';

export function Login(props: { expired: boolean }) {
  const { setUser, t } = useApp();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [working, setWorking] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setWorking(true);
    setError(null);
    try {
      const answer = await api<LoginAnswer>('POST', '/api/login', { username: username.trim(), password });
      setUser(answer.user);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setError(t('login.failed'));
      else if (e instanceof ApiError && e.status === 429) setError(t('login.throttled'));
      else if (e instanceof ApiError && e.status === 0) setError(t('login.unreachable'));
      else setError(t('error.generic', { reason: e instanceof ApiError ? e.reason : String(e) }));
      setPassword('');
    } finally {
      setWorking(false);
    }
  };

  return (
    <div class="login-page">
      <form class="login-card" onSubmit={submit} aria-labelledby="login-title">
        <div class="login-brand">
          <span class="brand-mark" aria-hidden="true" />
          <div>
            <div class="brand-name">{t('app.name')}</div>
            <div class="brand-tagline">{t('app.tagline')}</div>
          </div>
        </div>
        <h1 id="login-title">{t('login.title')}</h1>
        {props.expired && !error && <p class="notice">{t('login.expired')}</p>}
        <label>
          {t('login.username')}
          <input
            name="username"
            autocomplete="username"
            required
            autofocus
            value={username}
            onInput={e => setUsername(e.currentTarget.value)}
          />
        </label>
        <label>
          {t('login.password')}
          <input
            name="password"
            type="password"
            autocomplete="current-password"
            required
            value={password}
            onInput={e => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={working}>
          {working ? t('login.working') : t('login.submit')}
        </button>
        <LanguageSwitch />
      </form>
    </div>
  );
}
