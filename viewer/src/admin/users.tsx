// The centre's people: who they are, what they may do (roles), which site
// a county user belongs to, which modalities and sites a reader reads
// (credentials), their signing certificate, and whether failed logins have
// locked them out. One user is edited at a time, below the list.

import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, type Role, api } from '../api';
import { useApp } from '../context';
import type { SiteView, UserView } from './types';
import { useAction } from './use-action';

const ROLES: Role[] = ['admin', 'radiologist', 'ecg_doctor', 'reviewer', 'site_user'];
const MODALITIES = ['CT', 'MR', 'CR', 'DX', 'US', 'MG', 'ECG'];

/** Readers and reviewers read and sign: credentials and certificates are theirs. */
function signs(user: UserView): boolean {
  return user.roles.some(r => r === 'radiologist' || r === 'ecg_doctor' || r === 'reviewer');
}

export function UsersPanel() {
  const { t } = useApp();
  const [users, setUsers] = useState<UserView[] | null>(null);
  const [sites, setSites] = useState<SiteView[]>([]);
  const [editing, setEditing] = useState<number | null>(null);

  const load = useCallback(async () => {
    try {
      const [u, s] = await Promise.all([api<UserView[]>('GET', '/api/users'), api<SiteView[]>('GET', '/api/sites')]);
      setUsers(u);
      setSites(s);
    } catch (e) {
      fail(e instanceof ApiError ? e.reason : String(e));
    }
  }, []);
  const { run, messages, fail } = useAction(load);
  useEffect(() => void load(), [load]);
  const siteName = (id: number | null) => sites.find(s => s.id === id)?.name ?? '';
  const chosen = users?.find(u => u.id === editing) ?? null;

  return (
    <section class="admin-users">
      {messages}
      <table class="requests">
        <thead>
          <tr>
            <th>{t('admin.user.username')}</th>
            <th>{t('admin.user.name')}</th>
            <th>{t('admin.user.roles')}</th>
            <th>{t('worklist.column.site')}</th>
            <th>{t('admin.user.credentials')}</th>
            <th>{t('admin.user.certificate')}</th>
            <th>{t('worklist.column.state')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(users ?? []).map(u => (
            <tr key={u.id} data-user={u.username} class={editing === u.id ? 'selected' : undefined}>
              <td class="mono">{u.username}</td>
              <td>{u.display_name}</td>
              <td>{u.roles.map(r => t(`role.${r}`)).join('、')}</td>
              <td>{siteName(u.site_id)}</td>
              <td class="small">
                {signs(u)
                  ? [u.credentials.modalities.join(' ') || t('admin.user.anyModality'), u.credentials.sites.join('、') || t('admin.user.anySite')].join(' · ')
                  : '—'}
              </td>
              <td class="small cert">
                {u.signing_certificate ?? (signs(u) ? <span class="muted">{t('admin.user.noCertificate')}</span> : '—')}
              </td>
              <td>
                {u.disabled ? (
                  <span class="overdue">{t('admin.user.disabled')}</span>
                ) : u.login.locked_until && u.login.locked_until > Date.now() ? (
                  <span class="overdue">{t('admin.user.locked', { n: u.login.failed_logins })}</span>
                ) : (
                  t('admin.user.active')
                )}
              </td>
              <td>
                <button type="button" class="small" onClick={() => setEditing(editing === u.id ? null : u.id)}>
                  {t('admin.edit')}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {chosen && <UserEditor key={chosen.id} user={chosen} sites={sites} run={run} />}
      <NewUser sites={sites} run={run} />
    </section>
  );
}

type Run = (what: () => Promise<unknown>, done: string) => Promise<void>;

function RoleChoice(props: { roles: Role[]; onChange: (roles: Role[]) => void }) {
  const { t } = useApp();
  return (
    <fieldset class="checks">
      <legend>{t('admin.user.roles')}</legend>
      {ROLES.map(role => (
        <label>
          <input
            type="checkbox"
            name={`role-${role}`}
            checked={props.roles.includes(role)}
            onChange={e => props.onChange(e.currentTarget.checked ? [...props.roles, role] : props.roles.filter(r => r !== role))}
          />
          {t(`role.${role}`)}
        </label>
      ))}
    </fieldset>
  );
}

function UserEditor(props: { user: UserView; sites: SiteView[]; run: Run }) {
  const { t } = useApp();
  const u = props.user;
  const [roles, setRoles] = useState<Role[]>(u.roles);
  const [site, setSite] = useState(props.sites.find(s => s.id === u.site_id)?.name ?? '');
  const [name, setName] = useState(u.display_name);
  const [password, setPassword] = useState('');
  const [modalities, setModalities] = useState<string[]>(u.credentials.modalities);
  const [readSites, setReadSites] = useState<string[]>(u.credentials.sites);
  const [retireReason, setRetireReason] = useState('');
  const toggle = (list: string[], item: string, on: boolean) => (on ? [...list, item] : list.filter(x => x !== item));

  return (
    <div class="admin-editor" aria-label={t('admin.user.editing', { name: u.username })}>
      <h2>{t('admin.user.editing', { name: u.username })}</h2>
      <form
        class="admin-form"
        onSubmit={e => {
          e.preventDefault();
          void props.run(
            () =>
              api('PATCH', `/api/users/${u.id}`, {
                display_name: name.trim(),
                roles,
                site,
                ...(password ? { password } : {}),
              }),
            t('admin.saved', { name: u.username }),
          );
        }}
      >
        <label>
          {t('admin.user.name')}
          <input value={name} onInput={e => setName(e.currentTarget.value)} required />
        </label>
        <RoleChoice roles={roles} onChange={setRoles} />
        <label>
          {t('worklist.column.site')}
          <select value={site} onChange={e => setSite(e.currentTarget.value)}>
            <option value="">—</option>
            {props.sites.map(s => (
              <option value={s.name}>{s.name}</option>
            ))}
          </select>
        </label>
        <label>
          {t('admin.user.newPassword')}
          <input type="password" autoComplete="new-password" minLength={8} value={password} onInput={e => setPassword(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary">{t('admin.save')}</button>
      </form>
      <form
        class="admin-form"
        onSubmit={e => {
          e.preventDefault();
          void props.run(() => api('PUT', `/api/users/${u.id}/credentials`, { modalities, sites: readSites }), t('admin.saved', { name: u.username }));
        }}
      >
        <fieldset class="checks">
          <legend>{t('admin.user.modalities')}</legend>
          {MODALITIES.map(m => (
            <label>
              <input type="checkbox" checked={modalities.includes(m)} onChange={e => setModalities(toggle(modalities, m, e.currentTarget.checked))} />
              {m}
            </label>
          ))}
        </fieldset>
        <fieldset class="checks">
          <legend>{t('admin.user.readSites')}</legend>
          {props.sites.map(s => (
            <label>
              <input type="checkbox" checked={readSites.includes(s.name)} onChange={e => setReadSites(toggle(readSites, s.name, e.currentTarget.checked))} />
              {s.name}
            </label>
          ))}
        </fieldset>
        <p class="muted small">{t('admin.user.credentialsHint')}</p>
        <button type="submit">{t('admin.user.saveCredentials')}</button>
      </form>
      {u.signing_certificate && (
        // An administrator cannot sign as a doctor, only retire their
        // certificate (they left; the key is thought compromised): the
        // doctor then chooses a PIN again, which issues a new key.
        <form
          class="admin-form"
          onSubmit={e => {
            e.preventDefault();
            void props.run(
              () => api('POST', `/api/users/${u.id}/signing-identity/retire`, { reason: retireReason.trim() }),
              t('admin.user.retired', { name: u.username }),
            );
          }}
        >
          <p class="muted small">{u.signing_certificate}</p>
          <label>
            {t('admin.user.retireReason')}
            <input value={retireReason} onInput={e => setRetireReason(e.currentTarget.value)} required />
          </label>
          <button type="submit" class="danger">
            {t('admin.user.retire')}
          </button>
        </form>
      )}
      <div class="admin-actions">
        {u.login.failed_logins > 0 && (
          <button type="button" onClick={() => void props.run(() => api('PATCH', `/api/users/${u.id}`, { unlock: true }), t('admin.user.unlocked', { name: u.username }))}>
            {t('admin.user.unlock')}
          </button>
        )}
        <button
          type="button"
          class={u.disabled ? '' : 'danger'}
          onClick={() => void props.run(() => api('PATCH', `/api/users/${u.id}`, { disabled: !u.disabled }), t('admin.saved', { name: u.username }))}
        >
          {u.disabled ? t('admin.user.enable') : t('admin.user.disable')}
        </button>
      </div>
    </div>
  );
}

function NewUser(props: { sites: SiteView[]; run: Run }) {
  const { t } = useApp();
  const empty = { username: '', display_name: '', password: '', site: '' };
  const [draft, setDraft] = useState(empty);
  const [roles, setRoles] = useState<Role[]>(['radiologist']);
  return (
    <form
      class="admin-form"
      onSubmit={e => {
        e.preventDefault();
        void props.run(async () => {
          await api('POST', '/api/users', {
            username: draft.username.trim(),
            display_name: draft.display_name.trim(),
            password: draft.password,
            roles,
            ...(draft.site ? { site: draft.site } : {}),
          });
          setDraft(empty);
        }, t('admin.added', { name: draft.username.trim() }));
      }}
    >
      <h2>{t('admin.user.add')}</h2>
      <label>
        {t('admin.user.username')}
        <input name="new_username" value={draft.username} onInput={e => setDraft({ ...draft, username: e.currentTarget.value })} required autoComplete="off" />
      </label>
      <label>
        {t('admin.user.name')}
        <input name="new_display_name" value={draft.display_name} onInput={e => setDraft({ ...draft, display_name: e.currentTarget.value })} required />
      </label>
      <label>
        {t('login.password')}
        <input name="new_password" type="password" autoComplete="new-password" minLength={8} value={draft.password} onInput={e => setDraft({ ...draft, password: e.currentTarget.value })} required />
      </label>
      <RoleChoice roles={roles} onChange={setRoles} />
      <label>
        {t('worklist.column.site')}
        <select name="new_site" value={draft.site} onChange={e => setDraft({ ...draft, site: e.currentTarget.value })}>
          <option value="">—</option>
          {props.sites.map(s => (
            <option value={s.name}>{s.name}</option>
          ))}
        </select>
      </label>
      <button type="submit" class="primary">{t('admin.user.add')}</button>
    </form>
  );
}
