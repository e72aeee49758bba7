// Reading a request: its series down the side (thumbnails from the
// centre), the chosen one in the stack viewer with Page Up/Down between
// series, and the report panel beside them.

import { useLocation, useRoute } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, dicomJson, type ReadRequest } from '../api';
import { EcgViewer } from '../components/ecg-viewer';
import { ReportPanel } from '../components/report-panel';
import { SERIES_DRAG_TYPE, type SeriesRef } from '../components/stack-viewer';
import { ViewerGrid } from '../components/viewer-grid';
import { useApp } from '../context';
import { age, dicomDate, personName } from '../format';
import { type DicomJson, TAGS, numbers, text } from '../imaging/dicom-json';
import { prefetchMetadata, preloadImaging } from '../imaging/preload';
import { MAX_KEY_IMAGES, type ReportHandle, useReport } from '../report/use-report';

interface SeriesSummary {
  uid: string;
  number: number | null;
  modality: string;
  description: string;
  instances: number | null;
}

function summary(item: DicomJson): SeriesSummary {
  return {
    uid: text(item, TAGS.seriesInstanceUid),
    number: numbers(item, TAGS.seriesNumber)[0] ?? null,
    modality: text(item, TAGS.modality),
    description: text(item, TAGS.seriesDescription),
    instances: numbers(item, TAGS.seriesInstances)[0] ?? null,
  };
}

/** The patient's other studies at the request's hospital (`GET /api/studies`). */
interface PriorStudy {
  study_uid: string;
  study_date: string | null;
  description: string | null;
  modalities: string;
  num_series: number;
}

async function seriesOf(study: string): Promise<SeriesSummary[]> {
  const found = (await dicomJson<DicomJson[]>(`/dicom-web/studies/${encodeURIComponent(study)}/series?includefield=00201209`)) ?? [];
  return found.map(summary).sort((a, b) => (a.number ?? 0) - (b.number ?? 0));
}

export function Reading() {
  const { params } = useRoute();
  const { t } = useApp();
  const [request, setRequest] = useState<ReadRequest | null>(null);
  const [series, setSeries] = useState<SeriesSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    void (async () => {
      try {
        const { request } = await api<{ request: ReadRequest }>('GET', `/api/requests/${encodeURIComponent(params.id ?? '')}`);
        if (request.modality !== 'ECG') preloadImaging();
        setRequest(request);
        const found = request.study_uid ? await seriesOf(request.study_uid) : [];
        // The first viewport's metadata, asked for while the viewer's script arrives.
        if (request.study_uid && found[0] && request.modality !== 'ECG') prefetchMetadata(request.study_uid, found[0].uid);
        setSeries(found);
      } catch (e) {
        setError(e instanceof ApiError ? e.reason : String(e));
      }
    })();
  }, [params.id]);

  if (error) {
    return (
      <p class="error" role="alert">
        {t('error.generic', { reason: error })}
      </p>
    );
  }
  if (!request || !series) return <p class="muted">{t('worklist.loading')}</p>;
  return <ReadingRoom request={request} series={series} />;
}

function ReadingRoom(props: { request: ReadRequest; series: SeriesSummary[] }) {
  const { locale, t, user } = useApp();
  const location = useLocation();
  const report: ReportHandle = useReport(user!, props.request);
  const { request, series } = props;
  const [priors, setPriors] = useState<PriorStudy[] | null>(null);
  const [priorSeries, setPriorSeries] = useState<Record<string, SeriesSummary[]>>({});
  const [chosen, setChosen] = useState<{ target: SeriesRef; beside: boolean; serial: number } | null>(null);
  const [shown, setShown] = useState<string | null>(series[0]?.uid ?? null);
  const study = request.study_uid ?? '';

  // The patient's earlier studies at the same hospital, newest first.
  useEffect(() => {
    if (!request.patient_id || !study) {
      setPriors([]);
      return;
    }
    const query = new URLSearchParams({ site: request.site, patient_id: request.patient_id, limit: '50' });
    void api<{ studies: PriorStudy[] }>('GET', `/api/studies?${query}`)
      .then(page => setPriors(page.studies.filter(s => s.study_uid !== study).sort((a, b) => (b.study_date ?? '').localeCompare(a.study_date ?? ''))))
      .catch(() => setPriors([]));
  }, [request.site, request.patient_id, study]);

  const openPrior = async (prior: PriorStudy) => {
    if (priorSeries[prior.study_uid]) return;
    const found = await seriesOf(prior.study_uid);
    setPriorSeries(current => ({ ...current, [prior.study_uid]: found }));
  };
  const show = (target: SeriesRef, beside: boolean) => {
    setShown(target.series);
    setChosen(current => ({ target, beside, serial: (current?.serial ?? 0) + 1 }));
  };

  if (request.modality === 'ECG') {
    return (
      <section class="reading ecg-reading">
        <EcgInstance study={request.study_uid} series={series} />
        <ReportPanel report={report} onReleased={() => location.route('/')} />
      </section>
    );
  }

  const sexAge = [request.patient_sex ? t(`sex.${request.patient_sex as 'M' | 'F' | 'O'}`) : '', age(request.patient_age, locale)].filter(Boolean);
  const studyDates = new Map<string, string | null>([[study, request.study_date], ...(priors ?? []).map(p => [p.study_uid, p.study_date] as const)]);
  const overlayFor = (uid: string) => ({
    patient: personName(request.patient_name, locale),
    details: [...sexAge, request.patient_id ?? ''].filter(Boolean).join(' · '),
    studyDate: dicomDate(studyDates.get(uid) ?? null, locale) + (uid === study ? '' : ` · ${t('viewer.priors')}`),
  });
  const seriesOrder: SeriesRef[] = [
    ...series.map(s => ({ study, series: s.uid })),
    ...Object.entries(priorSeries).flatMap(([uid, list]) => list.map(s => ({ study: uid, series: s.uid }))),
  ];
  const keyImages =
    report.view.editable && report.text ? { study, marked: report.text.key_images, max: MAX_KEY_IMAGES, toggle: report.toggleKeyImage } : undefined;
  const first = series[0];

  return (
    <section class="reading">
      <aside class="series-strip" aria-label={t('viewer.seriesList')}>
        <h2 class="strip-heading">{t('viewer.current')}</h2>
        {series.map(s => (
          <SeriesCard key={s.uid} study={study} series={s} active={shown === s.uid} onChoose={() => show({ study, series: s.uid }, false)} />
        ))}
        {series.length === 0 && <p class="muted">{t('worklist.images_missing')}</p>}
        <h2 class="strip-heading">{t('viewer.priors')}</h2>
        {priors?.length === 0 && <p class="muted small">{t('viewer.noPriors')}</p>}
        {priors?.map(prior => (
          <details key={prior.study_uid} class="prior" data-prior={prior.study_uid} onToggle={e => e.currentTarget.open && void openPrior(prior)}>
            <summary>
              <span>{dicomDate(prior.study_date, locale)}</span>
              <span class="series-description">
                <span class="modality">{prior.modalities}</span> {prior.description}
              </span>
            </summary>
            {(priorSeries[prior.study_uid] ?? []).map(s => (
              <SeriesCard
                key={s.uid}
                study={prior.study_uid}
                series={s}
                active={shown === s.uid}
                onChoose={() => show({ study: prior.study_uid, series: s.uid }, true)}
                beside
              />
            ))}
          </details>
        ))}
      </aside>
      {first && study && (
        <ViewerGrid initial={{ study, series: first.uid }} seriesOrder={seriesOrder} overlayFor={overlayFor} keyImages={keyImages} request={chosen} />
      )}
      <ReportPanel report={report} onReleased={() => location.route('/')} />
    </section>
  );
}

/** A series in the strip: a click shows it (a prior's beside the current images); it can be dragged to any viewport. */
function SeriesCard(props: { study: string; series: SeriesSummary; active: boolean; onChoose: () => void; beside?: boolean }) {
  const { t } = useApp();
  const s = props.series;
  return (
    <button
      type="button"
      class={props.active ? 'series-card active' : 'series-card'}
      aria-pressed={props.active}
      draggable
      data-series={s.uid}
      title={props.beside ? t('viewer.openBeside') : undefined}
      onDragStart={event => event.dataTransfer?.setData(SERIES_DRAG_TYPE, JSON.stringify({ study: props.study, series: s.uid }))}
      onClick={props.onChoose}
    >
      <img
        src={`/dicom-web/studies/${encodeURIComponent(props.study)}/series/${encodeURIComponent(s.uid)}/thumbnail?viewport=128,128`}
        alt=""
        loading="lazy"
        draggable={false}
      />
      <span class="series-label">
        <span class="modality">{s.modality}</span> {s.number !== null ? `#${s.number}` : ''}
      </span>
      <span class="series-description">{s.description}</span>
      {s.instances !== null && <span class="muted small">{t('viewer.images', { n: s.instances })}</span>}
    </button>
  );
}

/** The study's ECG (its first waveform instance) in the ECG viewer. */
function EcgInstance(props: { study: string | null; series: SeriesSummary[] }) {
  const { t } = useApp();
  const [sop, setSop] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const ecgSeries = props.series.find(s => s.modality === 'ECG') ?? props.series[0];
  useEffect(() => {
    if (!props.study || !ecgSeries) return;
    const path = `/dicom-web/studies/${encodeURIComponent(props.study)}/series/${encodeURIComponent(ecgSeries.uid)}/instances`;
    void dicomJson<DicomJson[]>(path)
      .then(found => setSop(found?.[0] ? text(found[0], TAGS.sopInstanceUid) : null))
      .catch(e => setError(e instanceof ApiError ? e.reason : String(e)));
  }, [props.study, ecgSeries?.uid]);
  if (error) {
    return (
      <p class="error" role="alert">
        {t('error.generic', { reason: error })}
      </p>
    );
  }
  if (!ecgSeries) return <p class="muted">{t('worklist.images_missing')}</p>;
  return sop ? <EcgViewer sop={sop} /> : <p class="muted">{t('viewer.loading')}</p>;
}
