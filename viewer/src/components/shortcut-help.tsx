// The reader's keys, listed where they are used ("?" opens and closes it).

import { useApp } from '../context';
import type { MessageKey } from '../i18n';
import { WINDOW_PRESETS } from '../imaging/presets';

const KEYS: [string, MessageKey][] = [
  ['↑ ↓ ← →', 'help.scroll'],
  ['Page Up / Page Down', 'help.series'],
  ['1 – 8', 'help.presets'],
  ['w', 'tool.window'],
  ['l', 'tool.length'],
  ['a', 'tool.angle'],
  ['e', 'tool.ellipse'],
  ['t', 'tool.rectangle'],
  ['p', 'tool.probe'],
  ['Delete', 'help.clear'],
  ['i', 'help.invert'],
  ['r', 'help.rotate'],
  ['h', 'help.flip'],
  ['0 / Esc', 'help.reset'],
  ['Space', 'help.cine'],
  ['s', 'help.link'],
  ['k', 'help.key'],
  ['?', 'help.toggle'],
];

const MOUSE: [MessageKey, MessageKey][] = [
  ['help.mouse.left', 'help.mouse.leftDoes'],
  ['help.mouse.middle', 'help.mouse.middleDoes'],
  ['help.mouse.right', 'help.mouse.rightDoes'],
  ['help.mouse.wheel', 'help.mouse.wheelDoes'],
];

export function ShortcutHelp(props: { onClose: () => void }) {
  const { t } = useApp();
  return (
    <div class="shortcut-help" role="dialog" aria-modal="false" aria-labelledby="shortcut-help-title">
      <header>
        <h2 id="shortcut-help-title">{t('help.title')}</h2>
        <button type="button" class="link" onClick={props.onClose}>
          {t('help.close')}
        </button>
      </header>
      <div class="shortcut-columns">
        <table>
          <tbody>
            {KEYS.map(([keys, does]) => (
              <tr>
                <th>
                  <kbd>{keys}</kbd>
                </th>
                <td>{t(does)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <div>
          <table>
            <tbody>
              {MOUSE.map(([button, does]) => (
                <tr>
                  <th>{t(button)}</th>
                  <td>{t(does)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>{t('help.presetList')}</h3>
          <table>
            <tbody>
              {WINDOW_PRESETS.map(preset => (
                <tr>
                  <th>
                    <kbd>{preset.key}</kbd>
                  </th>
                  <td>
                    {t(`preset.${preset.id}`)} · W {preset.width} L {preset.center}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
    </div>
  );
}
