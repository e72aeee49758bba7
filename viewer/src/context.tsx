// What every screen needs: the signed-in user, the language and its
// translations, provided once at the top of the application.

import { createContext, type ComponentChildren } from 'preact';
import { useCallback, useContext, useMemo, useState } from 'preact/hooks';
import type { User } from './api';
import { type Locale, type MessageKey, saveLocale, translate } from './i18n';

export interface AppContextValue {
  user: User | null;
  setUser: (user: User | null) => void;
  locale: Locale;
  setLocale: (locale: Locale) => void;
  t: (key: MessageKey, params?: Record<string, string | number>) => string;
}

const AppContext = createContext<AppContextValue | null>(null);

export function AppProvider(props: { initialLocale: Locale; initialUser: User | null; children: ComponentChildren }) {
  const [user, setUser] = useState<User | null>(props.initialUser);
  const [locale, setLocaleState] = useState<Locale>(props.initialLocale);
  const setLocale = useCallback((next: Locale) => {
    saveLocale(next);
    document.documentElement.lang = next;
    setLocaleState(next);
  }, []);
  const value = useMemo<AppContextValue>(
    () => ({ user, setUser, locale, setLocale, t: (key, params) => translate(locale, key, params) }),
    [user, locale, setLocale],
  );
  return <AppContext.Provider value={value}>{props.children}</AppContext.Provider>;
}

export function useApp(): AppContextValue {
  const value = useContext(AppContext);
  if (!value) throw new Error('useApp outside AppProvider');
  return value;
}
