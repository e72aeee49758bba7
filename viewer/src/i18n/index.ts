// The application's two languages: zh-CN by default for browsers that
// prefer Chinese, English otherwise, and the user's choice remembered.

import { en, type MessageKey } from './en';
import { zhCN } from './zh-CN';

export type Locale = 'zh-CN' | 'en';
export type { MessageKey };

const CATALOGS: Record<Locale, Record<MessageKey, string>> = { 'zh-CN': zhCN, en };
const STORAGE_KEY = 'telediag.locale';

/** The stored choice, else the first of the browser's languages we speak, else Chinese. */
export function initialLocale(stored: string | null, preferred: readonly string[]): Locale {
  if (stored === 'zh-CN' || stored === 'en') return stored;
  for (const language of preferred) {
    const lower = language.toLowerCase();
    if (lower.startsWith('zh')) return 'zh-CN';
    if (lower.startsWith('en')) return 'en';
  }
  return 'zh-CN';
}

export function loadLocale(): Locale {
  let stored: string | null = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch {
    // Storage disabled: the browser's preference decides.
  }
  return initialLocale(stored, navigator.languages ?? [navigator.language]);
}

export function saveLocale(locale: Locale): void {
  try {
    localStorage.setItem(STORAGE_KEY, locale);
  } catch {
    // Not remembered; still switched for this page.
  }
}

/** `key`'s text in `locale`, `{name}` placeholders replaced by `params`. */
export function translate(locale: Locale, key: MessageKey, params: Record<string, string | number> = {}): string {
  const text = CATALOGS[locale][key];
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}
