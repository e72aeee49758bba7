// Reading a request: its series down the side (thumbnails from the
// centre), the chosen one in the stack viewer with Page Up/Down between
// series, and the report panel beside them.

import { useLocation, useRoute } from 'preact-iso';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, api, dicomJson, type ReadRequest } from '../api';
import { EcgViewer } from '../components/ecg-viewer';
import { ReportPanel } from '../components/report-panel';
import { StackViewer } from '../components/stack-viewer';
import { useApp } from '../context';
import { age, dicomDate, personName } from '../format';
import { type DicomJson, TAGS, numbers, text } from '../imaging/dicom-json';
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

export function Reading() {
  const { params } = useRoute();
  const { t } = useApp();
  const [request, setRequest] = useState<ReadRequest | null>(null);
  const [series, setSeries] = useState<SeriesSummary[] | null>(null);
  const [chosen, setChosen] = useState(0);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    void (async () => {
      try {
        const { request } = await api<{ request: ReadRequest }>('GET', `/api/requests/${encodeURIComponent(params.id ?? '')}`);
        setRequest(request);
        if (!request.study_uid) {
          setSeries([]);
          return;
        }
        const found = (await dicomJson<DicomJson[]>(`/dicom-web/studies/${encodeURIComponent(request.study_uid)}/series?includefield=00201209`)) ?? [];
        setSeries(found.map(summary).sort((a, b) => (a.number ?? 0) - (b.number ?? 0)));
      } catch (e) {
        setError(e instanceof ApiError ? e.reason : String(e));
      }
    })();
  }, [params.id]);

  const step = useCallback((delta: number) => setChosen(i => Math.min(Math.max(0, i + delta), (series?.length ?? 1) - 1)), [series]);

  if (error) {
    return (
      <p class="error" role="alert">
        {t('error.generic', { reason: error })}
      </p>
    );
  }
  if (!request || !series) return <p class="muted">{t('worklist.loading')}</p>;
  return <ReadingRoom request={request} series={series} chosen={chosen} setChosen={setChosen} step={step} />;
}

function ReadingRoom(props: {
  request: ReadRequest;
  series: SeriesSummary[];
  chosen: number;
  setChosen: (index: number) => void;
  step: (delta: number) => void;
}) {
  const { locale, t, user } = useApp();
  const location = useLocation();
  const report: ReportHandle = useReport(user!, props.request);
  const { request, series, chosen, setChosen, step } = props;
  const current = series[chosen];
  const keyImages = report.view.editable && report.text
    ? { marked: report.text.key_images, max: MAX_KEY_IMAGES, toggle: report.toggleKeyImage }
    : undefined;
  const sexAge = [request.patient_sex ? t(`sex.${request.patient_sex as 'M' | 'F' | 'O'}`) : '', age(request.patient_age, locale)].filter(Boolean);
  if (request.modality === 'ECG') {
    return (
      <section class="reading ecg-reading">
        <EcgInstance study={request.study_uid} series={series} />
        <ReportPanel report={report} onReleased={() => location.route('/')} />
      </section>
    );
  }
  return (
    <section class="reading">
      <aside class="series-strip" aria-label={t('viewer.seriesList')}>
        {series.map((s, i) => (
          <button
            type="button"
            key={s.uid}
            class={i === chosen ? 'series-card active' : 'series-card'}
            aria-pressed={i === chosen}
            onClick={() => setChosen(i)}
          >
            <img
              src={`/dicom-web/studies/${encodeURIComponent(request.study_uid ?? '')}/series/${encodeURIComponent(s.uid)}/thumbnail?viewport=128,128`}
              alt=""
              loading="lazy"
            />
            <span class="series-label">
              <span class="modality">{s.modality}</span> {s.number !== null ? `#${s.number}` : ''}
            </span>
            <span class="series-description">{s.description}</span>
            {s.instances !== null && <span class="muted small">{t('viewer.images', { n: s.instances })}</span>}
          </button>
        ))}
        {series.length === 0 && <p class="muted">{t('worklist.images_missing')}</p>}
      </aside>
      {current && request.study_uid && (
        <StackViewer
          study={request.study_uid}
          series={current.uid}
          onSeriesStep={step}
          {...(keyImages ? { keyImages } : {})}
          overlay={{
            patient: personName(request.patient_name, locale),
            details: [...sexAge, request.patient_id ?? ''].filter(Boolean).join(' · '),
            studyDate: dicomDate(request.study_date, locale),
          }}
        />
      )}
      <ReportPanel report={report} onReleased={() => location.route('/')} />
    </section>
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
