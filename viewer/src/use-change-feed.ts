// Keeps a list current: loads it now, again whenever the centre's change
// feed (`/api/events`) says requests changed, and on a slow timer for what
// the feed does not announce (countdowns). Where the feed cannot stay open
// (a proxy that buffers event streams), it asks often instead, so that a
// claimed case still leaves other pools within 2 s.

import { useEffect } from 'preact/hooks';

/** With the change feed open, a slow safety refresh. */
const REFRESH_MS = 30_000;
/** Without it, often enough for the 2-second promise. */
const REFRESH_WITHOUT_FEED_MS = 1500;

export function useChangeFeed(load: () => Promise<void> | void): void {
  useEffect(() => {
    void load();
    let timer = setInterval(() => void load(), REFRESH_MS);
    const feed = new EventSource('/api/events');
    feed.addEventListener('requests', () => void load());
    feed.onerror = () => {
      // Closed for good (the session ended, or a proxy refused the stream): ask often instead.
      if (feed.readyState === EventSource.CLOSED) {
        clearInterval(timer);
        timer = setInterval(() => void load(), REFRESH_WITHOUT_FEED_MS);
      }
    };
    return () => {
      feed.close();
      clearInterval(timer);
    };
  }, [load]);
}
