// How patient data reads in each language: DICOM person names, dates,
// ages and the time left to a deadline. Pure functions, tested in
// format.test.ts.

import type { Locale } from './i18n';

/** Han ideographs, kana and hangul: names written without spaces. */
const IDEOGRAPHS = /[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]/;

/**
 * A DICOM Person Name (`Zhang^Wei=张^伟`) as a person would write it. In
 * Chinese the ideographic group, family name first with no space (张伟);
 * in English the alphabetic group, family name first (Zhang Wei), as
 * Chinese names are said. A group that is missing falls back to the
 * other. A value that does not read as component groups (no `^` and no
 * ideographs, such as `a=b` typed into a name field) is shown whole.
 */
export function personName(value: string | null | undefined, locale: Locale): string {
  if (!value) return '';
  if (!value.includes('^') && !IDEOGRAPHS.test(value)) return value.trim();
  const [alphabetic = '', ideographic = '', phonetic = ''] = value.split('=');
  const preferred = locale === 'zh-CN' ? [ideographic, alphabetic, phonetic] : [alphabetic, ideographic, phonetic];
  const group = preferred.find(g => g.replace(/\^/g, '').trim() !== '') ?? '';
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = group.split('^').map(part => part.trim());
  const ideographs = IDEOGRAPHS.test(family + given);
  const core = ideographs ? `${family}${given}` : [family, given, middle].filter(Boolean).join(' ');
  return [prefix, core, suffix].filter(Boolean).join(' ');
}

/** A DICOM date (`20261123`) in the locale's short form; anything else as it is. */
export function dicomDate(value: string | null | undefined, locale: Locale): string {
  if (!value) return '';
  const match = /^(\d{4})(\d{2})(\d{2})$/.exec(value.trim());
  if (!match) return value;
  const [, y, m, d] = match;
  const date = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  return new Intl.DateTimeFormat(locale, { year: 'numeric', month: '2-digit', day: '2-digit', timeZone: 'UTC' }).format(date);
}

/** A Unix time in milliseconds as the locale's date and time, to the minute. */
export function dateTime(ms: number, locale: Locale, timeZone?: string): string {
  return new Intl.DateTimeFormat(locale, {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hour12: false,
    ...(timeZone ? { timeZone } : {}),
  }).format(new Date(ms));
}

const AGE_UNITS: Record<string, 'D' | 'W' | 'M' | 'Y'> = { D: 'D', W: 'W', M: 'M', Y: 'Y', 岁: 'Y', 个月: 'M', 月: 'M', 周: 'W', 天: 'D' };

/**
 * An age as the locale writes it, from a DICOM Age String (`045Y`, `006M`)
 * or from the form the centre stores for requests (`67岁`, `8月`, `12天`,
 * as Chinese request forms print it). Anything else is shown as it is.
 */
export function age(value: string | null | undefined, locale: Locale): string {
  if (!value) return '';
  const text = value.trim();
  const dicom = /^(\d{1,3})([DWMY])$/.exec(text);
  const chinese = /^(\d{1,3})(岁|个月|月|周|天)$/.exec(text);
  const match = dicom ?? chinese;
  if (!match) return text;
  const n = Number(match[1]);
  const unit = AGE_UNITS[match[2] ?? ''];
  if (!unit) return text;
  if (locale === 'zh-CN') return `${n}${{ D: '天', W: '周', M: '个月', Y: '岁' }[unit]}`;
  return `${n} ${{ D: 'd', W: 'w', M: 'mo', Y: 'y' }[unit]}`;
}

/** A DICOM Age String (`045Y`) from a number and unit, as a registration sends it; `null` outside 0–999. */
export function dicomAge(value: number, unit: 'D' | 'W' | 'M' | 'Y'): string | null {
  if (!Number.isInteger(value) || value < 0 || value > 999) return null;
  return `${String(value).padStart(3, '0')}${unit}`;
}

export type Urgency = 'ok' | 'soon' | 'overdue' | 'none';

/** How pressing a deadline is: overdue, within a quarter of an hour, or not yet. */
export function urgency(deadlineAt: number | null, now: number): Urgency {
  if (deadlineAt === null) return 'none';
  const left = deadlineAt - now;
  if (left < 0) return 'overdue';
  return left <= 15 * 60_000 ? 'soon' : 'ok';
}

/** Whole minutes, hours and days of a span, for the countdown's words. */
export function span(ms: number): { d: number; h: number; m: number } {
  const minutes = Math.floor(Math.abs(ms) / 60_000);
  return { d: Math.floor(minutes / 1440), h: Math.floor((minutes % 1440) / 60), m: minutes % 60 };
}
