import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { describeSchema, schemaProblem, withDefaults } from './check';

const T = Type.Object(
  {
    lr: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.5 }),
    n: Type.Integer({ minimum: 1, maximum: 9, default: 3 }),
    name: Type.String({ minLength: 1, maxLength: 8, pattern: '^[a-z]+$', patternText: 'lower-case letters' }),
    mode: Type.Optional(Type.Union([Type.Literal('a'), Type.Literal('b')])),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 2 }), { maxItems: 3 })),
  },
  { additionalProperties: false },
);
const ok = { lr: 0.1, n: 2, name: 'x' };

test('schemaProblem names the path, the limit from the schema and the value', () => {
  assert.equal(schemaProblem(T, ok), undefined);
  assert.deepEqual(schemaProblem(T, { ...ok, lr: 5 }, 'train'), {
    kind: 'value',
    path: 'train.lr',
    expected: 'a number in (0, 1]',
    value: 5,
  });
  assert.equal((schemaProblem(T, { ...ok, n: 2.5 }) as { expected: string }).expected, 'an integer in [1, 9]');
  const finite = schemaProblem(T, { ...ok, lr: Number.NaN }, '', { number: 'a finite number' });
  assert.equal((finite as { expected: string }).expected, 'a finite number in (0, 1]');
  assert.equal((schemaProblem(T, { ...ok, name: 'A' }) as { expected: string }).expected, 'lower-case letters');
  assert.equal((schemaProblem(T, { ...ok, name: '' }) as { expected: string }).expected, 'a string of 1..8 characters');
  assert.equal((schemaProblem(T, { ...ok, mode: 'c' }) as { expected: string }).expected, 'one of "a", "b"');
  assert.equal(schemaProblem(T, { ...ok, tags: ['ok', 'bad'] }, 'x')?.path, 'x.tags[1]');
});

test('unknown fields are listed together, before the missing ones they may explain', () => {
  assert.deepEqual(schemaProblem(T, { lr: 0.1, n: 2, nmae: 'x', extra: 1 }), {
    kind: 'unknown',
    path: '',
    fields: ['nmae', 'extra'],
    allowed: ['lr', 'n', 'name', 'mode', 'tags'],
  });
  assert.deepEqual(schemaProblem(T, { lr: 0.1, n: 2 }), {
    kind: 'missing',
    path: 'name',
    expected: 'a string of 1..8 characters',
    description: '',
  });
});

test('withDefaults fills absent fields from the schema into a fresh copy', () => {
  const given = { name: 'x' };
  assert.deepEqual(withDefaults(T, given), { name: 'x', lr: 0.5, n: 3 });
  assert.deepEqual(given, { name: 'x' });
  assert.equal(describeSchema(Type.Boolean(), 1), 'true or false');
});
