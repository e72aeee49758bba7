// What the admin API returns.

import type { Role } from '../api';

export interface SiteView {
  id: number;
  name: string;
  ae_titles: string[];
  networks: string[];
  assignment_mode?: 'pool' | 'auto';
  single_signature?: boolean;
  critical_webhook?: string | null;
}

export interface UserView {
  id: number;
  username: string;
  display_name: string;
  roles: Role[];
  site_id: number | null;
  disabled: boolean;
  credentials: { modalities: string[]; sites: string[] };
  signing_certificate: string | null;
  login: { failed_logins: number; locked_until: number | null };
}

export interface Counters {
  received_today: number;
  read_today: number;
  awaiting_report: number;
  awaiting_review: number;
  overdue: number;
  images_missing: number;
  unreconciled: number;
}

export interface Dashboard {
  total: Counters;
  sites: (Counters & { site_id: number; site: string })[];
  since: number;
  notices: string[];
}

export interface AuditRow {
  id: number;
  at: number;
  user_id: number | null;
  username: string | null;
  roles: string | null;
  site_id: number | null;
  action: string;
  object: string;
  outcome: number;
  client: string | null;
  hash: string;
}

export interface ChainReport {
  intact: boolean;
  rows: number;
  first_broken_id: number | null;
  reason: string | null;
}
