// The bar above every screen: where you are, who you are, language, sign out.

import { useLocation } from 'preact-iso';
import { api } from '../api';
import { useApp } from '../context';
import { LanguageSwitch } from './language-switch';

export function Header() {
  const { user, setUser, t } = useApp();
  const { route, path } = useLocation();
  if (!user) return null;
  const reads = user.roles.some(r => r === 'radiologist' || r === 'ecg_doctor' || r === 'reviewer');
  const logout = async () => {
    try {
      await api('POST', '/api/logout');
    } finally {
      setUser(null);
      route('/');
    }
  };
  return (
    <header class="top-bar">
      <a class="brand" href="/">
        <span class="brand-mark" aria-hidden="true" />
        <span class="brand-name">{t('app.name')}</span>
        <span class="brand-tagline">{t('app.tagline')}</span>
      </a>
      <nav class="main-nav">
        {(reads || user.roles.includes('site_user')) && (
          <a href="/" class={path !== '/admin' && path !== '/signing' ? 'active' : undefined}>
            {user.roles.includes('site_user') ? t('nav.requests') : t('nav.worklist')}
          </a>
        )}
        {reads && (
          <a href="/signing" class={path === '/signing' ? 'active' : undefined}>
            {t('nav.signing')}
          </a>
        )}
        {user.roles.includes('admin') && (
          <a href={reads ? '/admin' : '/'} class={path === '/admin' || !reads ? 'active' : undefined}>
            {t('nav.admin')}
          </a>
        )}
      </nav>
      <div class="who">
        <span class="user-name">{user.display_name}</span>
        <span class="user-roles">{user.roles.map(r => t(`role.${r}`)).join(' · ')}</span>
      </div>
      <LanguageSwitch />
      <button type="button" class="link" onClick={logout}>
        {t('nav.logout')}
      </button>
    </header>
  );
}
