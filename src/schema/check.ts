// The one walker over TypeBox's errors: it finds the first problem of a value against a schema and
// describes it from the schema's own limits (minimum/maximum, exclusive bounds, lengths, pattern,
// literals), so every message names the field path, the limit and the value. Callers format it in
// their house style (job specs: "x must be …, got …"; protocol: "x: expected …, got …").
import { Kind, type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType } from '@sinclair/typebox/value';

export type SchemaProblem =
  /** The value at `path` breaks the schema; `expected` says what it must be. */
  | { kind: 'value'; path: string; expected: string; value: unknown }
  /** Required field `path` is absent; `expected` and `description` describe it. */
  | { kind: 'missing'; path: string; expected: string; description: string }
  /** Fields of the object at `path` that the schema does not know, and the ones it allows. */
  | { kind: 'unknown'; path: string; fields: string[]; allowed: string[] };

export interface DescribeOptions {
  /** How a number is named ("a number", or "a finite number" in the protocol). */
  number?: string;
}

/** Joins a JSON pointer onto a dotted path: `/train/lr` → `train.lr`, `/vocab/2` → `vocab[2]`. */
function dotted(root: string, pointer: string): string {
  let out = root;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out = /^\d+$/.test(seg) ? `${out}[${seg}]` : out ? `${out}.${seg}` : seg;
  }
  return out;
}

const interval = (lo: number | string, hi: number | string, loOpen: boolean, hiOpen: boolean): string =>
  `${loOpen ? '(' : '['}${lo}, ${hi}${hiOpen ? ')' : ']'}`;

/** What a value of this schema must be, in words, from its limits. */
export function describeSchema(s: TSchema, value: unknown, opts: DescribeOptions = {}): string {
  if (typeof s.expected === 'string') return s.expected;
  switch (s[Kind]) {
    case 'Integer':
      return `an integer in [${s.minimum ?? Number.MIN_SAFE_INTEGER}, ${s.maximum ?? Number.MAX_SAFE_INTEGER}]`;
    case 'Number': {
      const noun = opts.number ?? 'a number';
      const lo = (s.exclusiveMinimum ?? s.minimum) as number | undefined;
      const hi = (s.exclusiveMaximum ?? s.maximum) as number | undefined;
      if (lo === undefined && hi === undefined) return noun;
      const exclusiveLo = s.exclusiveMinimum !== undefined;
      const range = interval(lo ?? '-∞', hi ?? '∞', exclusiveLo, s.exclusiveMaximum !== undefined);
      return `${noun} in ${range}`;
    }
    case 'Boolean':
      return 'true or false';
    case 'String': {
      const text = `a string of ${s.minLength ?? 0}..${s.maxLength ?? '∞'} characters`;
      const lengthOk =
        typeof value === 'string' && value.length >= (s.minLength ?? 0) && value.length <= (s.maxLength ?? Infinity);
      return lengthOk && s.pattern ? ((s.patternText as string | undefined) ?? `a string matching ${s.pattern}`) : text;
    }
    case 'Literal':
      return `one of ${JSON.stringify(s.const)}`;
    case 'Union':
      if ((s.anyOf as TSchema[]).every((x) => x[Kind] === 'Literal')) {
        return `one of ${(s.anyOf as TSchema[]).map((x) => JSON.stringify(x.const)).join(', ')}`;
      }
      return 'a value of another shape';
    case 'Object':
      return 'an object';
    case 'Array':
      return `an array of ${s.minItems ?? 0}..${s.maxItems ?? '∞'} items`;
    default:
      return `a ${String(s[Kind]).toLowerCase()}`;
  }
}

/** The first problem of `value` against `schema` (paths start at `root`), or undefined when it conforms. */
export function schemaProblem(
  schema: TSchema,
  value: unknown,
  root = '',
  opts: DescribeOptions = {},
): SchemaProblem | undefined {
  const errors = [...Value.Errors(schema, value)];
  const parentOf = (p: string) => p.slice(0, p.lastIndexOf('/'));
  // TypeBox reports an object's missing fields before its unknown ones; a typo explains both, so name it.
  const first =
    errors[0]?.type === ValueErrorType.ObjectRequiredProperty
      ? (errors.find(
          (e) => e.type === ValueErrorType.ObjectAdditionalProperties && parentOf(e.path) === parentOf(errors[0].path),
        ) ?? errors[0])
      : errors[0];
  if (!first) return undefined;
  const path = dotted(root, first.path);
  switch (first.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      // Every unknown field of the same object, so the message lists them all at once.
      const parent = parentOf(first.path);
      const fields = errors
        .filter((e) => e.type === ValueErrorType.ObjectAdditionalProperties && parentOf(e.path) === parent)
        .map((e) => e.path.slice(parent.length + 1));
      return {
        kind: 'unknown',
        path: dotted(root, parent),
        fields,
        allowed: Object.keys((first.schema.properties ?? {}) as Record<string, TSchema>),
      };
    }
    case ValueErrorType.ObjectRequiredProperty:
      return {
        kind: 'missing',
        path,
        expected: describeSchema(first.schema, undefined, opts),
        description: first.schema.description ?? '',
      };
    default:
      return { kind: 'value', path, expected: describeSchema(first.schema, first.value, opts), value: first.value };
  }
}

/** A fresh copy of `value` with the schema's `default` annotations filled in where fields are absent. */
export function withDefaults<T>(schema: TSchema, value: unknown): T {
  return Value.Default(schema, Value.Clone(value)) as T;
}
