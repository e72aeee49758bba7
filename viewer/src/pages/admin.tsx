// The administrator's screens, one tab each: the live dashboard, sites,
// users, and the audit log.

import { useState } from 'preact/hooks';
import { AuditPanel } from '../admin/audit';
import { DashboardPanel } from '../admin/dashboard';
import { SitesPanel } from '../admin/sites';
import { UsersPanel } from '../admin/users';
import { useApp } from '../context';

type Tab = 'dashboard' | 'sites' | 'users' | 'audit';
const TABS: Tab[] = ['dashboard', 'sites', 'users', 'audit'];

export function Admin() {
  const { t } = useApp();
  const [tab, setTab] = useState<Tab>(() => {
    const asked = new URLSearchParams(location.search).get('tab');
    return TABS.includes(asked as Tab) ? (asked as Tab) : 'dashboard';
  });
  const choose = (next: Tab) => {
    setTab(next);
    history.replaceState(null, '', `?tab=${next}`);
  };
  return (
    <section class="admin">
      <div class="tabs" role="tablist">
        {TABS.map(name => (
          <button type="button" role="tab" aria-selected={tab === name} class={tab === name ? 'tab active' : 'tab'} onClick={() => choose(name)}>
            {t(`admin.tab.${name}`)}
          </button>
        ))}
      </div>
      {tab === 'dashboard' && <DashboardPanel />}
      {tab === 'sites' && <SitesPanel />}
      {tab === 'users' && <UsersPanel />}
      {tab === 'audit' && <AuditPanel />}
    </section>
  );
}
