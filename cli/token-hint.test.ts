import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenHint } from './token-hint';

test('the token hint shows 4 characters and where the token is kept, never the token', () => {
  const token = 'abcdef0123456789abcdef0123456789';
  const line = tokenHint(token, '.starling/token');
  assert.equal(line, 'API token: abcd… (in .starling/token)');
  assert.ok(!line.includes(token.slice(0, 5)));
  assert.equal(tokenHint(token, 'STARLING_TOKEN', true), 'API token (new): abcd… (in STARLING_TOKEN)');
});
