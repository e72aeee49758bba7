// The reader's worklist: mine, pool, awaiting review, overdue, all, with
// filters. The centre's change feed (`/api/events`) says when to ask
// again, so a case another reader claims leaves the pool within a moment,
// without a reload. The winner of a claim goes straight to reading it.

import { useLocation } from 'preact-iso';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, type Priority, type ReadRequest, type RequestState, type User } from '../api';
import { Listing } from '../components/listing';
import { useApp } from '../context';
import { age, dateTime, personName, span, urgency } from '../format';
import type { MessageKey } from '../i18n';
import { preloadImaging } from '../imaging/preload';
import { useChangeFeed } from '../use-change-feed';
import { workOrder } from '../worklist-order';

type View = 'mine' | 'pool' | 'review' | 'overdue' | 'all';

function viewsFor(user: User): View[] {
  const views: View[] = [];
  if (user.roles.includes('radiologist') || user.roles.includes('ecg_doctor')) views.push('mine', 'pool');
  if (user.roles.includes('reviewer')) views.push('review');
  views.push('overdue', 'all');
  return views;
}

function queryFor(view: View, filters: Filters): string {
  const params = new URLSearchParams();
  if (view === 'mine' || view === 'pool' || view === 'overdue') params.set('view', view);
  if (view === 'review') params.set('state', 'preliminary');
  if (filters.site) params.set('site', filters.site);
  if (filters.modality) params.set('modality', filters.modality);
  if (filters.priority) params.set('priority', filters.priority);
  if (filters.state && view !== 'review') params.set('state', filters.state);
  // Dates are the reader's calendar days, from midnight to midnight.
  if (filters.from) params.set('from', String(new Date(`${filters.from}T00:00`).getTime()));
  if (filters.to) params.set('to', String(new Date(`${filters.to}T00:00`).getTime() + 86_400_000));
  params.set('limit', '500');
  return `/api/requests?${params}`;
}

interface Filters {
  site: string;
  modality: string;
  priority: '' | Priority;
  state: '' | RequestState;
  /** `YYYY-MM-DD`, as a date input gives it. */
  from: string;
  to: string;
}

const NO_FILTERS: Filters = { site: '', modality: '', priority: '', state: '', from: '', to: '' };
const STATES: RequestState[] = ['received', 'assigned', 'reading', 'preliminary', 'final', 'amended', 'cancelled'];

export function Worklist() {
  const { user, locale, t } = useApp();
  const views = user ? viewsFor(user) : [];
  const [view, setView] = useState<View>(views[0] ?? 'all');
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const location = useLocation();
  const [requests, setRequests] = useState<ReadRequest[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());

  // Answers can overtake each other: only the latest request's is shown.
  const latest = useRef(0);
  const load = useCallback(async () => {
    const asked = ++latest.current;
    try {
      const list = await api<ReadRequest[]>('GET', queryFor(view, filters));
      if (asked !== latest.current) return;
      setRequests(workOrder(list));
      setError(null);
    } catch (e) {
      if (asked !== latest.current) return;
      setError(e instanceof ApiError ? e.reason : String(e));
    }
    setNow(Date.now());
  }, [view, filters]);

  useChangeFeed(load);

  // A radiologist will open a case: the viewer's code loads while they choose.
  useEffect(() => {
    if (!user?.roles.includes('radiologist')) return;
    const idle = window.requestIdleCallback ?? ((run: () => void) => window.setTimeout(run, 1500));
    idle(() => preloadImaging());
  }, [user]);

  const claim = async (request: ReadRequest) => {
    setNotice(null);
    try {
      await api('POST', `/api/requests/${request.id}/claim`);
      location.route(`/read/${request.id}`);
    } catch (e) {
      const holder = e instanceof ApiError && e.status === 409 ? await holderOf(request.id) : null;
      if (holder) {
        setNotice(t('worklist.taken', { name: holder }));
      } else {
        setNotice(t('error.generic', { reason: e instanceof ApiError ? e.reason : String(e) }));
      }
      void load();
    }
  };

  if (!user) return null;
  const sites = [...new Set((requests ?? []).map(r => r.site))].sort();
  const modalities = [...new Set((requests ?? []).map(r => r.modality).filter((m): m is string => !!m))].sort();

  return (
    <section class="worklist">
      <div class="worklist-head">
        <div class="tabs" role="tablist">
          {views.map(v => (
            <button type="button" role="tab" aria-selected={v === view} class={v === view ? 'tab active' : 'tab'} onClick={() => {
                setRequests(null);
                setView(v);
              }}>
              {t(`worklist.view.${v}`)}
            </button>
          ))}
        </div>
        <div class="filters">
          {!user.roles.includes('site_user') && (
            <Select label={t('worklist.filter.site')} any={t('worklist.filter.any')} value={filters.site} options={sites.map(s => [s, s])} onChange={site => setFilters({ ...filters, site })} />
          )}
          <Select
            label={t('worklist.filter.modality')}
            any={t('worklist.filter.any')}
            value={filters.modality}
            options={modalities.map(m => [m, m])}
            onChange={modality => setFilters({ ...filters, modality })}
          />
          <Select
            label={t('worklist.filter.priority')}
            any={t('worklist.filter.any')}
            value={filters.priority}
            options={(['stat', 'urgent', 'routine'] as const).map(p => [p, t(`priority.${p}`)])}
            onChange={priority => setFilters({ ...filters, priority: priority as Filters['priority'] })}
          />
          {view !== 'review' && (
            <Select
              label={t('worklist.filter.state')}
              any={t('worklist.filter.any')}
              value={filters.state}
              options={STATES.map(s => [s, t(`state.${s}`)])}
              onChange={state => setFilters({ ...filters, state: state as Filters['state'] })}
            />
          )}
          <label class="select">
            <span>{t('worklist.filter.from')}</span>
            <input type="date" value={filters.from} max={filters.to || undefined} onChange={e => setFilters({ ...filters, from: e.currentTarget.value })} />
          </label>
          <label class="select">
            <span>{t('worklist.filter.to')}</span>
            <input type="date" value={filters.to} min={filters.from || undefined} onChange={e => setFilters({ ...filters, to: e.currentTarget.value })} />
          </label>
        </div>
      </div>
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {t('error.generic', { reason: error })}
        </p>
      )}
      <Listing items={requests}>
        {requests => (
          <table class="requests">
            <thead>
              <tr>
                <th>{t('worklist.column.priority')}</th>
                <th>{t('worklist.column.patient')}</th>
                <th>{t('worklist.column.exam')}</th>
                <th>{t('worklist.column.site')}</th>
                <th>{t('worklist.column.received')}</th>
                <th>{t('worklist.column.deadline')}</th>
                <th>{t('worklist.column.state')}</th>
                <th>{t('worklist.column.reader')}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {requests.map(request => (
                <tr key={request.id} data-request={request.id} class={request.critical ? 'critical' : undefined}>
                  <td>
                    <span class={`priority ${request.priority}`}>{t(`priority.${request.priority}`)}</span>
                    {request.critical && <span class="badge critical">{t('worklist.critical')}</span>}
                  </td>
                  <td>
                    <div class="patient-name">{personName(request.patient_name, locale)}</div>
                    <div class="muted small">
                      {[request.patient_sex && sexLabel(request.patient_sex, t), age(request.patient_age, locale), request.patient_id].filter(Boolean).join(' · ')}
                    </div>
                  </td>
                  <td>
                    <span class="modality">{request.modality ?? '—'}</span> {request.requested_exam}
                    {request.images_at === null && <div class="muted small">{t('worklist.images_missing')}</div>}
                  </td>
                  <td>{request.site}</td>
                  <td class="nowrap">{dateTime(request.created_at, locale)}</td>
                  <td class="nowrap">
                    <Countdown deadlineAt={request.deadline_at} now={now} />
                  </td>
                  <td>{stateLabel(request, t)}</td>
                  <td>{request.assigned_to_name ?? ''}</td>
                  <td class="actions">
                    {view === 'pool' && (
                      <button type="button" class="primary small" onClick={() => void claim(request)}>
                        {t('worklist.claim')}
                      </button>
                    )}
                    {view !== 'pool' && !user.roles.includes('site_user') && request.images_at !== null && (
                      <a class="button small" href={`/read/${request.id}`}>
                        {t('worklist.read')}
                      </a>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Listing>
    </section>
  );
}

/** Who holds a request another reader claimed first. */
async function holderOf(id: number): Promise<string | null> {
  try {
    const { request } = await api<{ request: ReadRequest }>('GET', `/api/requests/${id}`);
    return request.assigned_to_name;
  } catch {
    return null;
  }
}

type Translate = (key: MessageKey, params?: Record<string, string | number>) => string;

function sexLabel(sex: string, t: Translate): string {
  return sex === 'M' || sex === 'F' || sex === 'O' ? t(`sex.${sex}`) : sex;
}

function stateLabel(request: ReadRequest, t: Translate): string {
  if (request.state === 'final' && request.downloaded_at !== null) return `${t('state.final')} · ${t('state.printed')}`;
  return t(`state.${request.state}`);
}

function Countdown(props: { deadlineAt: number | null; now: number }) {
  const { t } = useApp();
  const level = urgency(props.deadlineAt, props.now);
  if (props.deadlineAt === null || level === 'none') return <span class="muted">—</span>;
  const { d, h, m } = span(props.deadlineAt - props.now);
  const time = d > 0 ? t('duration.days', { d, h }) : h > 0 ? t('duration.hours', { h, m }) : t('duration.minutes', { m });
  return <span class={`deadline ${level}`}>{level === 'overdue' ? t('deadline.overdue', { time }) : t('deadline.left', { time })}</span>;
}

function Select(props: { label: string; any: string; value: string; options: [string, string][]; onChange: (value: string) => void }) {
  return (
    <label class="select">
      <span>{props.label}</span>
      <select value={props.value} onChange={e => props.onChange(e.currentTarget.value)}>
        <option value="">{props.any}</option>
        {props.options.map(([value, text]) => (
          <option value={value}>{text}</option>
        ))}
      </select>
    </label>
  );
}
