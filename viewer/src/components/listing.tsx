// A list as every screen shows one: "loading" until it arrives, "nothing
// here" when it is empty, else the table the screen draws.

import type { ComponentChildren } from 'preact';
import { useApp } from '../context';

export function Listing<T>(props: { items: readonly T[] | null; children: (items: readonly T[]) => ComponentChildren }) {
  const { t } = useApp();
  if (props.items === null) return <p class="muted">{t('worklist.loading')}</p>;
  if (props.items.length === 0) return <p class="muted empty">{t('worklist.empty')}</p>;
  return <>{props.children(props.items)}</>;
}
