import { describe, expect, it } from 'vitest';
import { deriveTitle } from './title.ts';

describe('deriveTitle', () => {
  it('takes the first sentence of the first paragraph, not stopping at "U.S."', () => {
    expect(deriveTitle('The U.S. fears Iran is arming Russia, officials said. More text here.\nSecond line.')).toBe(
      'The U.S. fears Iran is arming Russia, officials said',
    );
  });

  it('prefers a headline-like line after newsletter boilerplate', () => {
    const text = 'SIGN UP for our newsletter ✉️ :\n\nGet the latest stories delivered straight to you\n\nIran prepares to transfer ballistic missiles to Russia — report\n\nU.S. officials believe it.';
    expect(deriveTitle(text)).toBe('Iran prepares to transfer ballistic missiles to Russia — report');
  });

  it('cuts a long sentence at a word boundary with an ellipsis', () => {
    const title = deriveTitle('word '.repeat(60).trim() + '.');
    expect(title.length).toBeLessThanOrEqual(101);
    expect(title.endsWith('word…')).toBe(true);
  });

  it('falls back when there is no text', () => {
    expect(deriveTitle('  \n \n')).toBe('Untitled document');
  });
});
