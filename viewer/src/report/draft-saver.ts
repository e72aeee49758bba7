// Autosave of a report draft. Typing marks the text unsaved; a pause (or
// leaving the field) saves it with the `updated_at` this tab last saw, so
// a save over text another tab saved meanwhile is refused by the centre
// and shown as a conflict instead of silently overwriting it.

import type { ReportVersion } from '../api';

export type SaveStatus = 'saved' | 'unsaved' | 'saving' | 'conflict' | 'failed';

export interface DraftText {
  method: string;
  findings: string;
  conclusion: string;
  key_images: string[];
}

/** Sends the text; resolves to the saved version, or rejects with the centre's HTTP status. */
export type SaveDraft = (text: DraftText, baseUpdatedAt: number) => Promise<ReportVersion>;

export class DraftSaver {
  private pending: DraftText | null = null;
  private base: number;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inFlight: Promise<void> | null = null;
  private statusNow: SaveStatus = 'saved';
  private failure = '';

  constructor(
    loaded: ReportVersion,
    private readonly save: SaveDraft,
    private readonly onStatus: (status: SaveStatus, saved: ReportVersion | null, reason: string) => void,
    private readonly delayMs = 800,
  ) {
    this.base = loaded.updated_at;
  }

  get status(): SaveStatus {
    return this.statusNow;
  }

  get reason(): string {
    return this.failure;
  }

  /** The reader changed the text: saved after a pause in typing. */
  changed(text: DraftText): void {
    if (this.statusNow === 'conflict') return;
    this.pending = text;
    this.set('unsaved', null);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), this.delayMs);
  }

  /** Saves now what is unsaved (before signing, on leaving the page). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.inFlight) await this.inFlight;
    const text = this.pending;
    if (!text || this.statusNow === 'conflict') return;
    this.pending = null;
    this.set('saving', null);
    this.inFlight = (async () => {
      try {
        const saved = await this.save(text, this.base);
        this.base = saved.updated_at;
        // Typing during the save leaves the newer text unsaved.
        this.set(this.pending ? 'unsaved' : 'saved', saved);
      } catch (error) {
        const status = (error as { status?: number }).status;
        if (status === 409) {
          this.set('conflict', null, (error as { reason?: string }).reason ?? '');
        } else {
          // Kept for the next attempt: nothing typed is dropped.
          this.pending = this.pending ?? text;
          this.set('failed', null, (error as { reason?: string }).reason ?? String(error));
        }
      }
    })();
    await this.inFlight;
    this.inFlight = null;
    if (this.pending && this.statusNow === 'unsaved') await this.flush();
  }

  /** Stops the timer (the panel closes); what is unsaved is flushed first. */
  async close(): Promise<void> {
    await this.flush();
  }

  private set(status: SaveStatus, saved: ReportVersion | null, reason = ''): void {
    this.statusNow = status;
    this.failure = reason;
    this.onStatus(status, saved, reason);
  }
}
