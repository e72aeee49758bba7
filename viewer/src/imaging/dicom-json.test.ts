import { describe, expect, it } from 'vitest';
import { type DicomJson, readingOrder, text } from './dicom-json';

const slice = (n: number, z: number): DicomJson => ({
  '00200013': { vr: 'IS', Value: [n] },
  '00200032': { vr: 'DS', Value: [0, 0, z] },
  '00200037': { vr: 'DS', Value: [1, 0, 0, 0, 1, 0] },
});

describe('readingOrder', () => {
  it('orders a stack by position along the normal, highest first', () => {
    const ordered = readingOrder([slice(1, -10), slice(2, 0), slice(3, -5)]);
    expect(ordered.map(i => i['00200013']?.Value?.[0])).toEqual([2, 3, 1]);
  });
  it('falls back to Instance Number when positions are missing', () => {
    const noPosition = (n: number): DicomJson => ({ '00200013': { vr: 'IS', Value: [n] } });
    expect(readingOrder([noPosition(3), noPosition(1), noPosition(2)]).map(i => i['00200013']?.Value?.[0])).toEqual([1, 2, 3]);
  });
});

describe('text', () => {
  it('joins person name groups as DICOM writes them', () => {
    expect(text({ '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Zhang^Wei', Ideographic: '张^伟' }] } }, '00100010')).toBe('Zhang^Wei=张^伟');
    expect(text({ '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Li^Na' }] } }, '00100010')).toBe('Li^Na');
    expect(text({}, '00100010')).toBe('');
  });
});
