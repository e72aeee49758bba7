import { describe, expect, it } from 'vitest';
import type { ReadRequest } from './api';
import { workOrder } from './worklist-order';

function request(id: number, fields: Partial<ReadRequest>): ReadRequest {
  return { id, priority: 'routine', critical: false, deadline_at: null, ...fields } as ReadRequest;
}

describe('workOrder', () => {
  it('puts critical findings, then STAT, then the soonest deadline first', () => {
    const ordered = workOrder([
      request(1, { deadline_at: 500 }),
      request(2, { priority: 'stat', deadline_at: 900 }),
      request(3, { critical: true, deadline_at: 2000 }),
      request(4, { deadline_at: 100 }),
      request(5, {}),
      request(6, { priority: 'urgent', deadline_at: 50 }),
    ]);
    expect(ordered.map(r => r.id)).toEqual([3, 2, 6, 4, 1, 5]);
  });
});
