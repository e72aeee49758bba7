// The audit log: who did what to which object, searchable, and the check
// that its hash chain is unbroken (no row changed or removed since written).

import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api';
import { Listing } from '../components/listing';
import { useApp } from '../context';
import { dateTime } from '../format';
import type { AuditRow, ChainReport } from './types';

export function AuditPanel() {
  const { locale, t } = useApp();
  const [query, setQuery] = useState({ user: '', contains: '', from: '', to: '' });
  const [rows, setRows] = useState<AuditRow[] | null>(null);
  const [chain, setChain] = useState<ChainReport | null>(null);
  const [error, setError] = useState<string | null>(null);

  const search = useCallback(async () => {
    const params = new URLSearchParams({ limit: '300' });
    if (query.user.trim()) params.set('user', query.user.trim());
    if (query.contains.trim()) params.set('contains', query.contains.trim());
    if (query.from) params.set('from', String(new Date(`${query.from}T00:00`).getTime()));
    if (query.to) params.set('to', String(new Date(`${query.to}T00:00`).getTime() + 86_400_000));
    try {
      setRows(await api<AuditRow[]>('GET', `/api/audit?${params}`));
      setError(null);
    } catch (e) {
      setError(e instanceof ApiError ? e.reason : String(e));
    }
  }, [query]);
  // The newest entries on opening; later searches on submit.
  useEffect(() => void search(), []);

  const verify = async () => {
    setChain(null);
    try {
      setChain(await api<ChainReport>('GET', '/api/audit/verify'));
    } catch (e) {
      setError(e instanceof ApiError ? e.reason : String(e));
    }
  };

  return (
    <section class="admin-audit">
      <form
        class="filters audit-filters"
        onSubmit={e => {
          e.preventDefault();
          void search();
        }}
      >
        <label class="select">
          <span>{t('admin.audit.user')}</span>
          <input name="audit_user" value={query.user} onInput={e => setQuery({ ...query, user: e.currentTarget.value })} />
        </label>
        <label class="select">
          <span>{t('admin.audit.contains')}</span>
          <input name="audit_contains" value={query.contains} onInput={e => setQuery({ ...query, contains: e.currentTarget.value })} placeholder="/api/requests/12" />
        </label>
        <label class="select">
          <span>{t('worklist.filter.from')}</span>
          <input type="date" value={query.from} onChange={e => setQuery({ ...query, from: e.currentTarget.value })} />
        </label>
        <label class="select">
          <span>{t('worklist.filter.to')}</span>
          <input type="date" value={query.to} onChange={e => setQuery({ ...query, to: e.currentTarget.value })} />
        </label>
        <button type="submit" class="primary">{t('admin.audit.search')}</button>
        <button type="button" onClick={() => void verify()}>
          {t('admin.audit.verify')}
        </button>
      </form>
      {chain && (
        <p class={chain.intact ? 'chain-ok' : 'error'} role="status" data-intact={String(chain.intact)}>
          {chain.intact
            ? t('admin.audit.intact', { rows: chain.rows })
            : t('admin.audit.broken', { id: chain.first_broken_id ?? '?', reason: chain.reason ?? '' })}
        </p>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      <Listing items={rows}>
        {rows => (
          <table class="requests audit">
            <thead>
              <tr>
                <th>#</th>
                <th>{t('admin.audit.at')}</th>
                <th>{t('admin.audit.user')}</th>
                <th>{t('admin.audit.action')}</th>
                <th>{t('admin.audit.object')}</th>
                <th>{t('admin.audit.outcome')}</th>
                <th>{t('admin.audit.client')}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(r => (
                <tr key={r.id} data-audit={r.id}>
                  <td class="mono">{r.id}</td>
                  <td class="nowrap">{dateTime(r.at, locale)}</td>
                  <td>{r.username ?? '—'}</td>
                  <td class="mono">{r.action}</td>
                  <td class="mono">{r.object}</td>
                  <td class={r.outcome >= 400 ? 'overdue' : undefined}>{r.outcome}</td>
                  <td class="mono">{r.client ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Listing>
    </section>
  );
}
