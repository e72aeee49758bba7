import { describe, expect, it } from 'vitest';
import { type DicomJson, frameRate, readingOrder, slicePosition, text, withoutImpossibleSpacing } from './dicom-json';

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

describe('slicePosition', () => {
  it('projects the position on the slice normal', () => {
    expect(slicePosition(slice(1, -37.5))).toBe(-37.5);
    // A sagittal slice: rows along y, columns along z; the normal is x.
    const sagittal: DicomJson = { '00200032': { Value: [12, -80, 40] }, '00200037': { Value: [0, 1, 0, 0, 0, -1] } };
    expect(slicePosition(sagittal)).toBe(-12);
    expect(slicePosition({ '00200032': { Value: [0, 0, 1] } })).toBeNull();
  });
});

describe('frameRate', () => {
  it('prefers the recommended rate, then the cine rate, then the frame time', () => {
    expect(frameRate({ '00082144': { Value: [25] }, '00181063': { Value: [66.7] } })).toBe(25);
    expect(frameRate({ '00180040': { Value: [30] } })).toBe(30);
    expect(frameRate({ '00181063': { Value: [50] } })).toBe(20);
    expect(frameRate({})).toBeNull();
  });
});

describe('withoutImpossibleSpacing', () => {
  it('drops spacings of zero (a modality that does not know) and keeps real ones', () => {
    const item: DicomJson = { '00280030': { vr: 'DS', Value: [0, 0] }, '00181164': { vr: 'DS', Value: [0.143, 0.143] } };
    const cleaned = withoutImpossibleSpacing(item);
    expect(cleaned['00280030']).toBeUndefined();
    expect(cleaned['00181164']?.Value).toEqual([0.143, 0.143]);
    expect(item['00280030'], 'the original is left as it was').toBeDefined();
    const fine: DicomJson = { '00280030': { vr: 'DS', Value: ['0.5', '0.5'] } };
    expect(withoutImpossibleSpacing(fine)).toBe(fine);
    expect(withoutImpossibleSpacing({ '00280030': { Value: [0.5] } })['00280030']).toBeUndefined();
  });
});
