import { describe, expect, it } from 'vitest';
import { age, dicomAge, dicomDate, personName, span, urgency } from './format';
import { initialLocale, translate } from './i18n';

describe('personName', () => {
  it('shows the ideographic group in Chinese, family name first with no space', () => {
    expect(personName('Zhang^Wei=张^伟', 'zh-CN')).toBe('张伟');
  });
  it('shows the alphabetic group in English, family name first', () => {
    expect(personName('Zhang^Wei=张^伟', 'en')).toBe('Zhang Wei');
  });
  it('falls back to the group there is', () => {
    expect(personName('Li^Na', 'zh-CN')).toBe('Li Na');
    expect(personName('=王^芳', 'en')).toBe('王芳');
    expect(personName('李^雷', 'en')).toBe('李雷');
  });
  it('keeps prefixes and suffixes and drops empty components', () => {
    expect(personName('Smith^John^^Dr^Jr', 'en')).toBe('Dr Smith John Jr');
    expect(personName('Zhang^^^', 'en')).toBe('Zhang');
  });
  it('shows hostile text as it is (escaping is the renderer’s)', () => {
    expect(personName('<img src=x onerror=alert(1)>', 'en')).toBe('<img src=x onerror=alert(1)>');
  });
  it('gives nothing for no name', () => {
    expect(personName(null, 'en')).toBe('');
    expect(personName('', 'zh-CN')).toBe('');
  });
});

describe('dates and ages', () => {
  it('formats DICOM dates per locale and leaves bad ones alone', () => {
    expect(dicomDate('20261123', 'zh-CN')).toBe('2026/11/23');
    expect(dicomDate('20261123', 'en')).toBe('11/23/2026');
    expect(dicomDate('2026-11', 'en')).toBe('2026-11');
  });
  it('reads DICOM ages', () => {
    expect(age('045Y', 'zh-CN')).toBe('45岁');
    expect(age('006M', 'zh-CN')).toBe('6个月');
    expect(age('045Y', 'en')).toBe('45 y');
    expect(age('3 years', 'en')).toBe('3 years');
    expect(age('67岁', 'en')).toBe('67 y');
    expect(age('8月', 'zh-CN')).toBe('8个月');
    expect(age('12天', 'en')).toBe('12 d');
  });
});

describe('deadlines', () => {
  const now = 1_800_000_000_000;
  it('colours by what is left', () => {
    expect(urgency(null, now)).toBe('none');
    expect(urgency(now - 1, now)).toBe('overdue');
    expect(urgency(now + 10 * 60_000, now)).toBe('soon');
    expect(urgency(now + 60 * 60_000, now)).toBe('ok');
  });
  it('splits a span into days, hours and minutes', () => {
    expect(span(((26 * 60 + 5) * 60 + 59) * 1000)).toEqual({ d: 1, h: 2, m: 5 });
    expect(span(-90 * 60_000)).toEqual({ d: 0, h: 1, m: 30 });
  });
});

describe('i18n', () => {
  it('prefers a stored choice, then the browser’s languages, then Chinese', () => {
    expect(initialLocale('en', ['zh-CN'])).toBe('en');
    expect(initialLocale(null, ['fr', 'en-GB', 'zh'])).toBe('en');
    expect(initialLocale(null, ['zh-TW'])).toBe('zh-CN');
    expect(initialLocale('xx', ['de'])).toBe('zh-CN');
  });
  it('fills placeholders and leaves unknown ones visible', () => {
    expect(translate('zh-CN', 'worklist.taken', { name: '王医生' })).toBe('已被王医生抢单');
    expect(translate('en', 'worklist.taken')).toBe('Taken by {name}');
  });
});

describe('dicomAge', () => {
  it('writes the three digits and the unit DICOM wants, and refuses what it cannot hold', () => {
    expect(dicomAge(45, 'Y')).toBe('045Y');
    expect(dicomAge(6, 'M')).toBe('006M');
    expect(dicomAge(0, 'D')).toBe('000D');
    expect(dicomAge(1000, 'Y')).toBeNull();
    expect(dicomAge(2.5, 'Y')).toBeNull();
    expect(dicomAge(-1, 'Y')).toBeNull();
  });
});
