// Entry point: asks the centre who is signed in, then shows the application.

import { render } from 'preact';
import { ApiError, api, type User } from './api';
import { App } from './app';
import { AppProvider } from './context';
import { loadLocale } from './i18n';
import { preloadImaging } from './imaging/preload';
import './styles.css';

async function start(): Promise<void> {
  // A case opened by its link: the viewer's code loads while the user is asked for.
  if (location.pathname.startsWith('/read/')) preloadImaging();
  const locale = loadLocale();
  document.documentElement.lang = locale;
  let user: User | null = null;
  try {
    user = await api<User>('GET', '/api/me');
  } catch (error) {
    if (!(error instanceof ApiError && error.unauthenticated)) console.error(error);
  }
  const root = document.getElementById('app');
  if (!root) throw new Error('no #app element');
  render(
    <AppProvider initialLocale={locale} initialUser={user}>
      <App />
    </AppProvider>,
    root,
  );
}

void start();
