// Registering a request before the images are sent: the fields
// `POST /api/requests` takes. The accession (exam) number given here is
// what the centre matches the arriving images by, so the technician is
// told to put the same number into the modality.

import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';
import { ApiError, type Priority, type ReadRequest, api } from '../api';
import { useApp } from '../context';
import { dicomAge } from '../format';

const MODALITIES = ['CT', 'MR', 'CR', 'DX', 'US', 'MG', 'ECG'];
/** The longest clinical history the centre keeps (characters). */
const MAX_HISTORY = 500;

interface Form {
  patient_name: string;
  patient_id: string;
  patient_sex: '' | 'M' | 'F' | 'O';
  age_value: string;
  age_unit: 'Y' | 'M' | 'W' | 'D';
  department: string;
  inpatient_number: string;
  bed_number: string;
  accession_number: string;
  modality: string;
  requested_exam: string;
  clinical_history: string;
  requesting_physician: string;
  priority: Priority;
}

const EMPTY: Form = {
  patient_name: '',
  patient_id: '',
  patient_sex: '',
  age_value: '',
  age_unit: 'Y',
  department: '',
  inpatient_number: '',
  bed_number: '',
  accession_number: '',
  modality: 'CT',
  requested_exam: '',
  clinical_history: '',
  requesting_physician: '',
  priority: 'routine',
};

export function Register(props: { onRegistered: (request: ReadRequest) => void }) {
  const { t } = useApp();
  const location = useLocation();
  const [form, setForm] = useState<Form>(EMPTY);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (field: keyof Form) => (event: Event) =>
    setForm({ ...form, [field]: (event.currentTarget as HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement).value });
  const optional = (value: string) => (value.trim() ? value.trim() : null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const request = await api<ReadRequest>('POST', '/api/requests', {
        patient_name: form.patient_name.trim(),
        patient_id: form.patient_id.trim(),
        patient_sex: form.patient_sex || null,
        patient_age: form.age_value ? dicomAge(Number(form.age_value), form.age_unit) : null,
        department: optional(form.department),
        inpatient_number: optional(form.inpatient_number),
        bed_number: optional(form.bed_number),
        accession_number: optional(form.accession_number),
        modality: form.modality,
        requested_exam: form.requested_exam.trim(),
        clinical_history: optional(form.clinical_history),
        requesting_physician: optional(form.requesting_physician),
        priority: form.priority,
      });
      props.onRegistered(request);
      location.route('/');
    } catch (e) {
      setError(e instanceof ApiError ? e.reason : String(e));
      setBusy(false);
    }
  };

  return (
    <section class="register">
      <h1>{t('register.title')}</h1>
      <p class="muted">{t('register.explain')}</p>
      <form class="register-form" onSubmit={submit}>
        <fieldset>
          <legend>{t('register.patient')}</legend>
          <label>
            {t('register.name')} *
            <input name="patient_name" value={form.patient_name} onInput={set('patient_name')} required maxLength={64} autoComplete="off" />
          </label>
          <label>
            {t('register.patientId')} *
            <input name="patient_id" value={form.patient_id} onInput={set('patient_id')} required maxLength={64} autoComplete="off" />
          </label>
          <label>
            {t('register.sex')}
            <select name="patient_sex" value={form.patient_sex} onChange={set('patient_sex')}>
              <option value="">—</option>
              <option value="M">{t('register.sex.M')}</option>
              <option value="F">{t('register.sex.F')}</option>
              <option value="O">{t('register.sex.O')}</option>
            </select>
          </label>
          <label>
            {t('register.age')}
            <span class="age-input">
              <input name="age_value" type="number" min={0} max={150} value={form.age_value} onInput={set('age_value')} />
              <select name="age_unit" value={form.age_unit} onChange={set('age_unit')} aria-label={t('register.ageUnit')}>
                <option value="Y">{t('register.age.Y')}</option>
                <option value="M">{t('register.age.M')}</option>
                <option value="W">{t('register.age.W')}</option>
                <option value="D">{t('register.age.D')}</option>
              </select>
            </span>
          </label>
          <label>
            {t('register.department')}
            <input name="department" value={form.department} onInput={set('department')} maxLength={64} />
          </label>
          <label>
            {t('register.inpatient')}
            <input name="inpatient_number" value={form.inpatient_number} onInput={set('inpatient_number')} maxLength={64} />
          </label>
          <label>
            {t('register.bed')}
            <input name="bed_number" value={form.bed_number} onInput={set('bed_number')} maxLength={16} />
          </label>
        </fieldset>
        <fieldset>
          <legend>{t('register.exam')}</legend>
          <label>
            {t('register.modality')} *
            <select name="modality" value={form.modality} onChange={set('modality')}>
              {MODALITIES.map(m => (
                <option value={m}>{m}</option>
              ))}
            </select>
          </label>
          <label>
            {t('register.requestedExam')} *
            <input name="requested_exam" value={form.requested_exam} onInput={set('requested_exam')} required maxLength={64} />
          </label>
          <label>
            {t('register.accession')}
            <input name="accession_number" value={form.accession_number} onInput={set('accession_number')} maxLength={16} />
            <span class="hint">{t('register.accessionHint')}</span>
          </label>
          <label>
            {t('register.priority')}
            <select name="priority" value={form.priority} onChange={set('priority')}>
              <option value="routine">{t('priority.routine')}</option>
              <option value="urgent">{t('priority.urgent')}</option>
              <option value="stat">{t('priority.stat')}</option>
            </select>
          </label>
          <label>
            {t('register.physician')}
            <input name="requesting_physician" value={form.requesting_physician} onInput={set('requesting_physician')} maxLength={64} />
          </label>
          <label class="wide">
            {t('register.history')}
            <textarea name="clinical_history" rows={4} value={form.clinical_history} onInput={set('clinical_history')} maxLength={MAX_HISTORY} />
            <span class="hint">
              {form.clinical_history.length}/{MAX_HISTORY}
            </span>
          </label>
        </fieldset>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <div class="form-actions">
          <a href="/">{t('confirm.cancel')}</a>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? t('confirm.working') : t('register.submit')}
          </button>
        </div>
      </form>
    </section>
  );
}
