// Reading a request's images: its series down the side (thumbnails from
// the centre), the chosen one in the stack viewer, Page Up/Down between
// series. The report panel and measurements join it next.

import { useRoute } from 'preact-iso';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, api, dicomJson, type ReadRequest } from '../api';
import { StackViewer } from '../components/stack-viewer';
import { useApp } from '../context';
import { age, dicomDate, personName } from '../format';
import { type DicomJson, TAGS, numbers, text } from '../imaging/dicom-json';

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
  const { locale, t } = useApp();
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
  const current = series[chosen];
  const sexAge = [request.patient_sex ? t(`sex.${request.patient_sex as 'M' | 'F' | 'O'}`) : '', age(request.patient_age, locale)].filter(Boolean);
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
          overlay={{
            patient: personName(request.patient_name, locale),
            details: [...sexAge, request.patient_id ?? ''].filter(Boolean).join(' · '),
            studyDate: dicomDate(request.study_date, locale),
          }}
        />
      )}
    </section>
  );
}
