// An administrator's change: run it, say it was done (or the centre's
// reason it was not), and load the list again.

import { useState } from 'preact/hooks';
import { ApiError } from '../api';

export function useAction(reload: () => Promise<void>) {
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = async (what: () => Promise<unknown>, done: string) => {
    setError(null);
    setNotice(null);
    try {
      await what();
      setNotice(done);
      await reload();
    } catch (e) {
      setError(e instanceof ApiError ? e.reason : String(e));
    }
  };
  const messages = (
    <>
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </>
  );
  return { run, messages, fail: (reason: string) => setError(reason) };
}
