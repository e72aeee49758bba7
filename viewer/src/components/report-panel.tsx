// The report beside the images or the tracing: the form's three sections
// (检查方法 / 检查所见 / 检查结论) with the template and phrases, autosave
// with its state in view, key images, the 危急值 flag, and the signing acts,
// signatures confirmed with the signer's signing PIN, the other acts
// with their password. Once final, the signed PDF is
// previewed in the page.

import { useEffect, useRef, useState } from 'preact/hooks';
import { type Phrase, type ReportTemplate, type ReportVersion, api } from '../api';
import { useApp } from '../context';
import { dateTime } from '../format';
import type { MessageKey } from '../i18n';
import type { DraftText } from '../report/draft-saver';
import { MAX_KEY_IMAGES, type ReportHandle, type SigningAct } from '../report/use-report';
import { ConfirmDialog, type ConfirmRequest } from './confirm-dialog';

type Section = 'method' | 'findings' | 'conclusion';
const SECTIONS: Section[] = ['method', 'findings', 'conclusion'];

export function ReportPanel(props: { report: ReportHandle; onReleased: () => void }) {
  const { t, locale } = useApp();
  const { request, versions, view, text, saveStatus, saveReason } = props.report;
  const [templates, setTemplates] = useState<ReportTemplate[]>([]);
  const [phrases, setPhrases] = useState<Phrase[]>([]);
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  // The reviewer's revision of the text (审核修改), held here until they
  // sign it: it is never saved into the reporting doctor's draft.
  const [revising, setRevising] = useState<Pick<DraftText, Section> | null>(null);
  const [error, setError] = useState<string | null>(null);
  const fields = useRef<Record<Section, HTMLTextAreaElement | null>>({ method: null, findings: null, conclusion: null });

  useEffect(() => {
    if (!view.editable || !request.modality) return;
    void api<{ templates: ReportTemplate[]; phrases: Phrase[] }>('GET', `/api/templates?modality=${encodeURIComponent(request.modality)}`)
      .then(answer => {
        setTemplates(answer.templates);
        setPhrases(answer.phrases);
      })
      .catch(() => {});
  }, [view.editable, request.modality]);

  const shown: ReportVersion | null = view.working ?? view.final;
  // A revision belongs to the version it was begun on.
  const workingKey = view.working ? `${view.working.id}:${view.working.state}` : '';
  useEffect(() => setRevising(null), [workingKey]);
  const signing = (act: SigningAct, title: MessageKey, explanation: MessageKey, confirmLabel: MessageKey, note?: MessageKey) =>
    setConfirm({
      title: t(title),
      explanation: t(explanation),
      credential: act.act === 'sign' || act.act === 'cosign' ? 'pin' : 'password',
      confirmLabel: t(confirmLabel),
      ...(note ? { note: { label: t(note), required: true } } : {}),
      run: (credential, written) => props.report.perform(act.act === 'return' ? { act: 'return', reason: written } : act, credential),
    });

  const insertPhrase = (phrase: Phrase) => {
    if (!text) return;
    const field = fields.current[phrase.section];
    const current = text[phrase.section];
    const at = field && document.activeElement === field ? field.selectionStart : current.length;
    const before = current.slice(0, at);
    const after = current.slice(at);
    const joined = `${before}${phrase.text}${after}`;
    props.report.edit({ [phrase.section]: joined } as Partial<DraftText>);
    requestAnimationFrame(() => {
      if (!field) return;
      field.focus();
      field.selectionStart = field.selectionEnd = before.length + phrase.text.length;
    });
  };

  const applyTemplate = (id: string) => {
    const chosen = templates.find(tpl => tpl.id === id);
    if (!chosen || !text) return;
    const written = SECTIONS.some(s => text[s].trim());
    if (written && !window.confirm(t('report.templateReplace', { name: chosen.name }))) return;
    props.report.edit({ method: chosen.method, findings: chosen.findings, conclusion: chosen.conclusion });
  };

  const act = async (run: () => Promise<void>) => {
    setError(null);
    try {
      await run();
    } catch (e) {
      setError(e instanceof Error && 'reason' in e ? String((e as { reason: string }).reason) : String(e));
    }
  };

  return (
    <aside class="report-panel" aria-label={t('report.title')}>
      <header class="report-head">
        <h2>{t('report.title')}</h2>
        {shown && (
          <span class={`badge state-${shown.state}`} data-report-state={shown.state}>
            {versions.length > 1 ? `v${shown.version} · ` : ''}
            {t(`report.kind.${shown.kind}`)} · {t(`report.state.${shown.state}`)}
          </span>
        )}
        {view.editable && (
          <span class={`save-status save-${saveStatus}`} role="status" data-save-status={saveStatus}>
            {t(`report.save.${saveStatus}`)}
          </span>
        )}
      </header>

      {saveStatus === 'conflict' && (
        <div class="conflict" role="alert">
          <p>{t('report.conflict')}</p>
          <button type="button" class="small" onClick={() => void props.report.reload()}>
            {t('report.reload')}
          </button>
        </div>
      )}
      {saveStatus === 'failed' && (
        <p class="error" role="alert">
          {t('report.saveFailed', { reason: saveReason })}
        </p>
      )}
      {(request.critical || shown?.critical) && (
        <p class="critical-banner" role="note">
          {t('report.criticalFlagged')}
        </p>
      )}

      {!shown && !view.acts.has('open') && <p class="muted">{t('report.none')}</p>}

      {shown && text && view.working && (
        <div class="report-form">
          {view.editable && templates.length > 1 && (
            <label class="template-choice">
              {t('report.template')}
              <select value="" onChange={e => applyTemplate(e.currentTarget.value)}>
                <option value="">{t('report.templatePick')}</option>
                {templates.map(tpl => (
                  <option value={tpl.id}>{tpl.name}</option>
                ))}
              </select>
            </label>
          )}
          {SECTIONS.map(section => (
            <div class="report-section" key={section}>
              <label for={`report-${section}`}>{t(`report.section.${section}`)}</label>
              <textarea
                id={`report-${section}`}
                ref={el => {
                  fields.current[section] = el;
                }}
                rows={section === 'findings' ? 8 : section === 'conclusion' ? 4 : 2}
                value={revising ? revising[section] : text[section]}
                readOnly={!view.editable && !revising}
                onInput={e => {
                  const value = e.currentTarget.value;
                  if (revising) setRevising({ ...revising, [section]: value });
                  else props.report.edit({ [section]: value } as Partial<DraftText>);
                }}
                onBlur={() => {
                  if (view.editable) void props.report.flush();
                }}
              />
              {view.editable && phrases.some(p => p.section === section) && (
                <details class="phrases">
                  <summary>{t('report.phrases')}</summary>
                  <div class="phrase-list">
                    {phrases
                      .filter(p => p.section === section)
                      .map(p => (
                        <button type="button" class="phrase" onClick={() => insertPhrase(p)} title={t('report.insert')}>
                          {p.text}
                        </button>
                      ))}
                  </div>
                </details>
              )}
            </div>
          ))}
          {request.modality !== 'ECG' && (
            <div class="key-images">
              <span class="muted small">{t('report.keyImages', { n: text.key_images.length, max: MAX_KEY_IMAGES })}</span>
              <div class="key-image-list">
                {text.key_images.map(sop => (
                  <figure key={sop} class="key-image" data-sop={sop}>
                    <img src={`/api/instances/${encodeURIComponent(sop)}/thumbnail`} alt={t('report.keyImage')} />
                    {view.editable && (
                      <button type="button" class="link small" onClick={() => props.report.toggleKeyImage(sop)}>
                        {t('report.removeKey')}
                      </button>
                    )}
                  </figure>
                ))}
              </div>
            </div>
          )}
        </div>
      )}

      {shown && !view.working && <FinalText version={shown} />}

      <Signatures versions={versions} locale={locale} />

      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="report-actions">
        {view.acts.has('sign') && (
          <button
            type="button"
            class="primary"
            onClick={() => signing({ act: 'sign' }, 'report.sign', 'report.signExplain', 'report.signConfirm')}
          >
            {t('report.sign')}
          </button>
        )}
        {view.acts.has('cosign') && !revising && (
          <button
            type="button"
            class="primary"
            onClick={() => signing({ act: 'cosign', base: view.working?.updated_at ?? 0 }, 'report.cosign', 'report.cosignExplain', 'report.cosignConfirm')}
          >
            {t('report.cosign')}
          </button>
        )}
        {view.acts.has('cosign') && !revising && text && (
          <button type="button" onClick={() => setRevising({ method: text.method, findings: text.findings, conclusion: text.conclusion })}>
            {t('report.revise')}
          </button>
        )}
        {view.acts.has('cosign') && revising && (
          <>
            <button
              type="button"
              class="primary"
              onClick={() =>
                signing({ act: 'cosign', base: view.working?.updated_at ?? 0, revised: revising }, 'report.reviseSign', 'report.reviseExplain', 'report.reviseConfirm')
              }
            >
              {t('report.reviseSign')}
            </button>
            <button type="button" class="link" onClick={() => setRevising(null)}>
              {t('report.reviseCancel')}
            </button>
          </>
        )}
        {view.acts.has('return') && (
          <button
            type="button"
            onClick={() => signing({ act: 'return', reason: '' }, 'report.return', 'report.returnExplain', 'report.returnConfirm', 'report.returnReason')}
          >
            {t('report.return')}
          </button>
        )}
        {view.acts.has('addendum') && (
          <button type="button" onClick={() => signing({ act: 'addendum' }, 'report.addendum', 'report.addendumExplain', 'report.begin')}>
            {t('report.addendum')}
          </button>
        )}
        {view.acts.has('amendment') && (
          <button type="button" onClick={() => signing({ act: 'amendment' }, 'report.amendment', 'report.amendmentExplain', 'report.begin')}>
            {t('report.amendment')}
          </button>
        )}
        {view.acts.has('flag') && (
          <button
            type="button"
            class="danger"
            onClick={() =>
              setConfirm({
                title: t('report.flag'),
                explanation: t('report.flagExplain', { site: request.site }),
                note: { label: t('report.flagNote'), required: true },
                credential: null,
                confirmLabel: t('report.flagConfirm'),
                run: (_credential, note) => props.report.flagCritical(note),
              })
            }
          >
            {t('report.flag')}
          </button>
        )}
        {view.acts.has('release') && (
          <button
            type="button"
            class="link"
            onClick={() =>
              void act(async () => {
                await props.report.release();
                props.onReleased();
              })
            }
          >
            {t('report.release')}
          </button>
        )}
      </div>

      {view.final && (
        <section class="pdf-preview">
          <div class="pdf-links">
            <a href={`/api/requests/${request.id}/report/pdf?version=${view.final.version}`} download>
              {t('report.downloadPdf')}
            </a>
            {view.final.verify_token && (
              <a href={`/verify/${view.final.verify_token}`} target="_blank" rel="noopener noreferrer">
                {t('report.verifyPage')}
              </a>
            )}
          </div>
          <iframe
            title={t('report.pdfPreview')}
            src={`/api/requests/${request.id}/report/pdf?version=${view.final.version}&inline=true`}
          />
        </section>
      )}

      <ConfirmDialog request={confirm} onClose={() => setConfirm(null)} />
    </aside>
  );
}

function FinalText(props: { version: ReportVersion }) {
  const { t } = useApp();
  return (
    <div class="report-final">
      {SECTIONS.map(section =>
        props.version[section].trim() ? (
          <div class="report-section" key={section}>
            <h3>{t(`report.section.${section}`)}</h3>
            <p class="report-text">{props.version[section]}</p>
          </div>
        ) : null,
      )}
    </div>
  );
}

function Signatures(props: { versions: ReportVersion[]; locale: 'zh-CN' | 'en' }) {
  const { t } = useApp();
  const signed = props.versions.filter(v => v.author_signed_at || v.reviewer_signed_at);
  if (signed.length === 0) return null;
  return (
    <ol class="signatures" aria-label={t('report.history')}>
      {signed.map(v => (
        <li key={v.id} data-version={v.version} data-state={v.state}>
          <span class="muted">
            v{v.version} {t(`report.kind.${v.kind}`)} · {t(`report.state.${v.state}`)}
            {v.revoked ? ` · ${t('report.revoked')}` : ''}
          </span>
          {v.author_signed_at && (
            <span>
              {t(v.edited_by_reviewer ? 'report.authorOfDraft' : 'report.author')} {v.author_name} · {dateTime(v.author_signed_at, props.locale)}
            </span>
          )}
          {v.reviewer_signed_at && (
            <span>
              {t(v.edited_by_reviewer ? 'report.reviewerEditor' : 'report.reviewer')} {v.reviewer_name} · {dateTime(v.reviewer_signed_at, props.locale)}
            </span>
          )}
        </li>
      ))}
    </ol>
  );
}
