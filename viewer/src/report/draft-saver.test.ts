import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ReportVersion } from '../api';
import { DraftSaver, type DraftText, type SaveStatus } from './draft-saver';

function version(updated_at: number, findings = ''): ReportVersion {
  return {
    id: 1, request_id: 1, version: 1, kind: 'report', state: 'draft', template: 'ct', method: '', findings, conclusion: '',
    critical: false, key_images: [], author_id: 7, author_name: null, author_signed_at: null, reviewer_id: null,
    reviewer_name: null, reviewer_signed_at: null, supersedes: null, pdf_sha256: null, verify_token: null, revoked: false,
    revoked_reason: null, edited_by_reviewer: false, created_at: 0, updated_at,
  };
}

const text = (findings: string): DraftText => ({ method: '', findings, conclusion: '', key_images: [] });

describe('DraftSaver', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('saves after a pause in typing, once, with the last text and the version it last saw', async () => {
    const sent: [string, number][] = [];
    const statuses: SaveStatus[] = [];
    let clock = 100;
    const saver = new DraftSaver(version(100), async (t, base) => {
      sent.push([t.findings, base]);
      return version(++clock, t.findings);
    }, s => statuses.push(s));
    saver.changed(text('a'));
    saver.changed(text('ab'));
    await vi.advanceTimersByTimeAsync(500);
    expect(sent).toEqual([]);
    saver.changed(text('abc'));
    await vi.advanceTimersByTimeAsync(900);
    expect(sent).toEqual([['abc', 100]]);
    expect(saver.status).toBe('saved');
    saver.changed(text('abcd'));
    await saver.flush();
    expect(sent).toEqual([['abc', 100], ['abcd', 101]]);
    expect(statuses.at(-1)).toBe('saved');
  });

  it('shows a conflict when another tab saved first, and stops saving over it', async () => {
    const save = vi.fn(async () => {
      throw Object.assign(new Error('409'), { status: 409, reason: 'the draft changed since you loaded it' });
    });
    const saver = new DraftSaver(version(100), save, () => {});
    saver.changed(text('mine'));
    await saver.flush();
    expect(saver.status).toBe('conflict');
    expect(saver.reason).toContain('changed since');
    saver.changed(text('more'));
    await saver.flush();
    expect(save).toHaveBeenCalledTimes(1);
  });

  it('keeps text whose save failed for the next attempt', async () => {
    let fail = true;
    const sent: string[] = [];
    const saver = new DraftSaver(version(1), async t => {
      if (fail) throw Object.assign(new Error('net'), { status: 0, reason: 'the centre cannot be reached' });
      sent.push(t.findings);
      return version(2, t.findings);
    }, () => {});
    saver.changed(text('kept'));
    await saver.flush();
    expect(saver.status).toBe('failed');
    fail = false;
    await saver.flush();
    expect(sent).toEqual(['kept']);
    expect(saver.status).toBe('saved');
  });

  it('text typed while a save is on its way is saved after it', async () => {
    const sent: string[] = [];
    let release: () => void = () => {};
    let n = 1;
    const saver = new DraftSaver(version(1), async t => {
      sent.push(t.findings);
      if (sent.length === 1) await new Promise<void>(r => (release = r));
      return version(++n, t.findings);
    }, () => {});
    saver.changed(text('first'));
    const first = saver.flush();
    await vi.advanceTimersByTimeAsync(0);
    saver.changed(text('second'));
    release();
    await first;
    await saver.flush();
    expect(sent).toEqual(['first', 'second']);
    expect(saver.status).toBe('saved');
  });
});
