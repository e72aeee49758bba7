import { useApp } from '../context';

/** Switches between Chinese and English; the choice is remembered. */
export function LanguageSwitch() {
  const { locale, setLocale, t } = useApp();
  return (
    <button type="button" class="link language-switch" aria-label={t('language.label')} onClick={() => setLocale(locale === 'zh-CN' ? 'en' : 'zh-CN')}>
      {t('language.switch')}
    </button>
  );
}
