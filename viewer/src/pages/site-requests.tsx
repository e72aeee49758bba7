// The county hospital's page: its critical findings to acknowledge first,
// then its requests with their status (received, reading, preliminary,
// final, printed), the signed report to download or print, and the
// verification QR code the printed form carries. Registration of a new
// request is one click away.

import { useCallback, useState } from 'preact/hooks';
import { ApiError, type ReadRequest, api } from '../api';
import { Listing } from '../components/listing';
import { useApp } from '../context';
import { age, dateTime, personName } from '../format';
import type { MessageKey } from '../i18n';
import { useChangeFeed } from '../use-change-feed';

export interface CriticalFinding {
  id: number;
  request_id: number;
  site_id: number;
  note: string;
  flagged_by: string;
  flagged_at: number;
  webhook_status: string | null;
  acknowledged_by: string | null;
  acknowledged_at: number | null;
}

/** What a county hospital calls the state of its request. */
export type SiteStatus = 'received' | 'reading' | 'preliminary' | 'final' | 'printed' | 'amended' | 'cancelled';

export function siteStatus(request: ReadRequest): SiteStatus {
  switch (request.state) {
    case 'assigned':
    case 'reading':
      return 'reading';
    case 'final':
      return request.downloaded_at !== null ? 'printed' : 'final';
    default:
      return request.state;
  }
}

const SIGNED: SiteStatus[] = ['final', 'printed', 'amended'];

export function SiteRequests(props: { notice?: string }) {
  const { locale, t } = useApp();
  const [requests, setRequests] = useState<ReadRequest[] | null>(null);
  const [critical, setCritical] = useState<CriticalFinding[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [qrFor, setQrFor] = useState<number | null>(null);

  const load = useCallback(async () => {
    try {
      const [list, open] = await Promise.all([
        api<ReadRequest[]>('GET', '/api/requests?limit=500'),
        api<CriticalFinding[]>('GET', '/api/critical?open=true'),
      ]);
      setRequests([...list].sort((a, b) => b.created_at - a.created_at));
      setCritical(open);
      setError(null);
    } catch (e) {
      setError(e instanceof ApiError ? e.reason : String(e));
    }
  }, []);
  useChangeFeed(load);

  const acknowledge = async (finding: CriticalFinding) => {
    try {
      await api('POST', `/api/critical/${finding.id}/acknowledge`);
      await load();
    } catch (e) {
      setError(e instanceof ApiError ? e.reason : String(e));
    }
  };
  const byId = new Map((requests ?? []).map(r => [r.id, r]));

  return (
    <section class="site-requests">
      <div class="worklist-head">
        <h1>{t('site.title')}</h1>
        <a class="button primary" href="/register">
          {t('site.register')}
        </a>
      </div>
      {props.notice && (
        <p class="notice" role="status">
          {props.notice}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {t('error.generic', { reason: error })}
        </p>
      )}
      {critical.length > 0 && (
        <div class="critical-list" role="alert" aria-label={t('site.critical')}>
          <h2>{t('site.critical')}</h2>
          {critical.map(finding => {
            const request = byId.get(finding.request_id);
            return (
              <div class="critical-item" key={finding.id} data-critical={finding.id}>
                <div>
                  <strong>{request ? personName(request.patient_name, locale) : `#${finding.request_id}`}</strong>
                  {request?.requested_exam ? ` · ${request.requested_exam}` : ''}
                </div>
                <p class="critical-note">{finding.note}</p>
                <div class="muted small">{t('site.criticalBy', { name: finding.flagged_by, time: dateTime(finding.flagged_at, locale) })}</div>
                <button type="button" class="primary small" onClick={() => void acknowledge(finding)}>
                  {t('site.acknowledge')}
                </button>
              </div>
            );
          })}
        </div>
      )}
      <Listing items={requests}>
        {requests => (
          <table class="requests">
            <thead>
              <tr>
                <th>{t('worklist.column.patient')}</th>
                <th>{t('worklist.column.exam')}</th>
                <th>{t('site.column.accession')}</th>
                <th>{t('site.column.registered')}</th>
                <th>{t('worklist.column.state')}</th>
                <th>{t('site.column.report')}</th>
              </tr>
            </thead>
            <tbody>
              {requests.map(request => {
                const status = siteStatus(request);
                const signed = SIGNED.includes(status);
                return (
                  <tr key={request.id} data-request={request.id} data-status={status} class={request.critical ? 'critical' : undefined}>
                    <td>
                      <div class="patient-name">{personName(request.patient_name, locale)}</div>
                      <div class="muted small">
                        {[request.patient_sex && t(`sex.${request.patient_sex as 'M' | 'F' | 'O'}`), age(request.patient_age, locale), request.patient_id]
                          .filter(Boolean)
                          .join(' · ')}
                      </div>
                    </td>
                    <td>
                      <span class="modality">{request.modality ?? '—'}</span> {request.requested_exam}
                      {request.images_at === null && <div class="muted small">{t('worklist.images_missing')}</div>}
                    </td>
                    <td>{request.accession_number}</td>
                    <td class="nowrap">{dateTime(request.created_at, locale)}</td>
                    <td>
                      <span class={`status status-${status}`}>{t(STATUS_LABEL[status])}</span>
                      {request.critical && <span class="badge critical">{t('worklist.critical')}</span>}
                    </td>
                    <td class="actions">
                      {signed && (
                        <>
                          <a class="button small" href={`/api/requests/${request.id}/report/pdf`} download data-download="pdf">
                            {t('site.download')}
                          </a>
                          <a class="button small" href={`/api/requests/${request.id}/report/pdf?inline=true`} target="_blank" rel="noopener">
                            {t('site.print')}
                          </a>
                          <button type="button" class="link small" aria-expanded={qrFor === request.id} onClick={() => setQrFor(qrFor === request.id ? null : request.id)}>
                            {t('site.qr')}
                          </button>
                          {qrFor === request.id && (
                            <img class="qr" src={`/api/requests/${request.id}/report/qr`} alt={t('site.qrAlt')} width={132} height={132} />
                          )}
                        </>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Listing>
    </section>
  );
}

const STATUS_LABEL: Record<SiteStatus, MessageKey> = {
  received: 'state.received',
  reading: 'state.reading',
  preliminary: 'state.preliminary',
  final: 'state.final',
  printed: 'state.printed',
  amended: 'state.amended',
  cancelled: 'state.cancelled',
};
