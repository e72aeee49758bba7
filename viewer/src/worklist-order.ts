// The order a reader works in: critical findings first, then STAT, then
// urgent, then whatever is due soonest; requests without a deadline last.

import type { Priority, ReadRequest } from './api';

const PRIORITY_RANK: Record<Priority, number> = { stat: 0, urgent: 1, routine: 2 };

export function workOrder(requests: readonly ReadRequest[]): ReadRequest[] {
  return [...requests].sort(
    (a, b) =>
      Number(b.critical) - Number(a.critical) ||
      PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] ||
      (a.deadline_at ?? Number.MAX_SAFE_INTEGER) - (b.deadline_at ?? Number.MAX_SAFE_INTEGER) ||
      a.id - b.id,
  );
}
