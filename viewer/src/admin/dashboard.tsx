// The centre at a glance, per site, kept live by the change feed.

import { useCallback, useState } from 'preact/hooks';
import { ApiError, api } from '../api';
import { useApp } from '../context';
import type { MessageKey } from '../i18n';
import { useChangeFeed } from '../use-change-feed';
import type { Counters, Dashboard } from './types';

const COLUMNS: [keyof Counters, MessageKey][] = [
  ['received_today', 'admin.dash.received'],
  ['read_today', 'admin.dash.read'],
  ['awaiting_report', 'admin.dash.awaitingReport'],
  ['awaiting_review', 'admin.dash.awaitingReview'],
  ['overdue', 'admin.dash.overdue'],
  ['images_missing', 'admin.dash.imagesMissing'],
  ['unreconciled', 'admin.dash.unreconciled'],
];

export function DashboardPanel() {
  const { t } = useApp();
  const [board, setBoard] = useState<Dashboard | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      setBoard(await api<Dashboard>('GET', '/api/dashboard'));
      setError(null);
    } catch (e) {
      setError(e instanceof ApiError ? e.reason : String(e));
    }
  }, []);
  useChangeFeed(load);
  if (error) return <p class="error" role="alert">{t('error.generic', { reason: error })}</p>;
  if (!board) return <p class="muted">{t('worklist.loading')}</p>;
  return (
    <section>
      {board.notices.length > 0 && (
        <ul class="notices" role="alert">
          {board.notices.map(n => (
            <li>{n}</li>
          ))}
        </ul>
      )}
      <table class="requests dashboard">
        <thead>
          <tr>
            <th>{t('worklist.column.site')}</th>
            {COLUMNS.map(([, label]) => (
              <th class="number">{t(label)}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {board.sites.map(site => (
            <tr key={site.site_id} data-site={site.site}>
              <td>{site.site}</td>
              {COLUMNS.map(([key]) => (
                <td class={`number${key === 'overdue' && site[key] > 0 ? ' overdue' : ''}`} data-counter={key}>
                  {site[key]}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr data-site="total">
            <th>{t('admin.dash.total')}</th>
            {COLUMNS.map(([key]) => (
              <th class="number" data-counter={key}>
                {board.total[key]}
              </th>
            ))}
          </tr>
        </tfoot>
      </table>
    </section>
  );
}
