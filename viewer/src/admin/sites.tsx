// The county hospitals: their AE titles and networks (what the gateway
// accepts from them), how their requests are assigned (pool 抢单 or by
// rules), whether one signature makes a report final, and the webhook
// critical findings are pushed to.

import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api';
import { useApp } from '../context';
import type { SiteView } from './types';
import { useAction } from './use-action';

const list = (text: string) =>
  text
    .split(/[,，\s]+/)
    .map(s => s.trim())
    .filter(Boolean);

export function SitesPanel() {
  const { t } = useApp();
  const [sites, setSites] = useState<SiteView[] | null>(null);
  const [draft, setDraft] = useState({ name: '', ae: '', networks: '' });
  const load = useCallback(async () => {
    try {
      setSites(await api<SiteView[]>('GET', '/api/sites'));
    } catch (e) {
      fail(e instanceof ApiError ? e.reason : String(e));
    }
  }, []);
  const { run, messages, fail } = useAction(load);
  useEffect(() => void load(), [load]);
  // Shown at once, then saved; a refusal reloads what the centre holds.
  const change = (site: SiteView, settings: Partial<SiteView>) => {
    setSites(current => current?.map(s => (s.id === site.id ? { ...s, ...settings } : s)) ?? null);
    return run(() => api('PATCH', `/api/sites/${encodeURIComponent(site.name)}`, settings), t('admin.saved', { name: site.name })).then(() =>
      load(),
    );
  };

  return (
    <section class="admin-sites">
      {messages}
      <table class="requests">
        <thead>
          <tr>
            <th>{t('admin.site.name')}</th>
            <th>{t('admin.site.ae')}</th>
            <th>{t('admin.site.networks')}</th>
            <th>{t('admin.site.mode')}</th>
            <th>{t('admin.site.single')}</th>
            <th>{t('admin.site.webhook')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(sites ?? []).map(site => (
            <tr key={site.id} data-site={site.name}>
              <td>{site.name}</td>
              <td class="mono">{site.ae_titles.join(', ')}</td>
              <td class="mono">{site.networks.length ? site.networks.join(', ') : <span class="muted">{t('admin.site.anyNetwork')}</span>}</td>
              <td>
                <select
                  aria-label={t('admin.site.mode')}
                  value={site.assignment_mode ?? 'pool'}
                  onChange={e => void change(site, { assignment_mode: e.currentTarget.value as 'pool' | 'auto' })}
                >
                  <option value="pool">{t('admin.site.mode.pool')}</option>
                  <option value="auto">{t('admin.site.mode.auto')}</option>
                </select>
              </td>
              <td>
                <input
                  type="checkbox"
                  aria-label={t('admin.site.single')}
                  checked={site.single_signature ?? false}
                  onChange={e => void change(site, { single_signature: e.currentTarget.checked })}
                />
              </td>
              <td>
                <input
                  class="mono"
                  aria-label={t('admin.site.webhook')}
                  defaultValue={site.critical_webhook ?? ''}
                  placeholder="http://"
                  onChange={e => void change(site, { critical_webhook: e.currentTarget.value.trim() })}
                />
              </td>
              <td>
                <button
                  type="button"
                  class="link small"
                  onClick={() => {
                    if (window.confirm(t('admin.site.removeConfirm', { name: site.name }))) {
                      void run(() => api('DELETE', `/api/sites/${encodeURIComponent(site.name)}`), t('admin.removed', { name: site.name }));
                    }
                  }}
                >
                  {t('admin.remove')}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form
        class="admin-form"
        onSubmit={e => {
          e.preventDefault();
          void run(async () => {
            await api('POST', '/api/sites', { name: draft.name.trim(), ae_titles: list(draft.ae), networks: list(draft.networks) });
            setDraft({ name: '', ae: '', networks: '' });
          }, t('admin.added', { name: draft.name.trim() }));
        }}
      >
        <h2>{t('admin.site.add')}</h2>
        <label>
          {t('admin.site.name')}
          <input name="site_name" value={draft.name} onInput={e => setDraft({ ...draft, name: e.currentTarget.value })} required />
        </label>
        <label>
          {t('admin.site.ae')}
          <input name="ae_titles" class="mono" value={draft.ae} onInput={e => setDraft({ ...draft, ae: e.currentTarget.value })} required placeholder="CT_DONGSHAN, DR_DONGSHAN" />
        </label>
        <label>
          {t('admin.site.networks')}
          <input name="networks" class="mono" value={draft.networks} onInput={e => setDraft({ ...draft, networks: e.currentTarget.value })} placeholder="10.12.0.0/16" />
        </label>
        <button type="submit" class="primary">{t('admin.site.add')}</button>
      </form>
    </section>
  );
}
