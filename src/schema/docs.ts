// The job-field tables of docs/JOBS.md, written from the schema: field, type, default, allowed values
// and meaning all come from the schema's annotations, so the doc cannot drift from what the
// coordinator enforces. scripts/gen-schema-docs.ts writes them; docs.test.ts fails when they are stale.
import { Kind, type TObject, type TSchema } from '@sinclair/typebox';
import { describeSchema } from './check';
import { JobData, JobName, JobTrain } from './job';
import { GptSpec, MlpSpec } from './model';

function typeName(s: TSchema): string {
  switch (s[Kind]) {
    case 'Literal':
    case 'Union':
      return 'string';
    default:
      return String(s[Kind]).toLowerCase();
  }
}

function allowed(s: TSchema): string {
  if (typeof s.allowedText === 'string') return s.allowedText;
  if (s[Kind] === 'Boolean') return '`true` or `false`';
  if (s[Kind] === 'Union') return (s.anyOf as TSchema[]).map((x) => `\`${JSON.stringify(x.const)}\``).join(' or ');
  const text = describeSchema(s, undefined).replace(/^an? /, '');
  return s[Kind] === 'String' && s.patternText ? `${text}, ${s.patternText}` : text;
}

function defaultOf(s: TSchema): string {
  if (s.default !== undefined) return `\`${JSON.stringify(s.default)}\``;
  return typeof s.defaultText === 'string' ? s.defaultText : '—';
}

/** A markdown table of the given fields: `fields` maps each dotted field name to its schema. */
export function fieldTable(fields: [string, TSchema][]): string {
  const head = '| field | type | default | allowed | meaning |\n| --- | --- | --- | --- | --- |';
  const cell = (t: string) => t.replace(/\n/g, ' ');
  const rows = fields.map(
    ([name, s]) =>
      `| \`${name}\` | ${typeName(s)} | ${cell(defaultOf(s))} | ${cell(allowed(s))} | ${cell(s.description ?? '')} |`,
  );
  return [head, ...rows].join('\n');
}

const fieldsOf = (prefix: string, o: TObject, skip: string[] = []): [string, TSchema][] =>
  Object.entries(o.properties)
    .filter(([k]) => !skip.includes(k))
    .map(([k, s]) => [`${prefix}.${k}`, s]);

/** Each generated table by its marker name in docs/JOBS.md. */
export function jobDocTables(): Record<string, string> {
  return {
    name: fieldTable([['name', JobName]]),
    'model.mlp': fieldTable(fieldsOf('model', MlpSpec)),
    'model.gpt': fieldTable(fieldsOf('model', GptSpec, ['type'])),
    data: fieldTable(fieldsOf('data', JobData)),
    train: fieldTable(fieldsOf('train', JobTrain)),
  };
}

/** `doc` with every `<!-- schema:X -->…<!-- /schema:X -->` block replaced by table X; throws on a missing marker. */
export function updateJobDoc(doc: string, tables: Record<string, string> = jobDocTables()): string {
  let out = doc;
  for (const [name, table] of Object.entries(tables)) {
    const open = `<!-- schema:${name} -->`;
    const close = `<!-- /schema:${name} -->`;
    const a = out.indexOf(open);
    const b = out.indexOf(close);
    if (a < 0 || b < a) throw new Error(`docs/JOBS.md lacks the markers ${open} … ${close}`);
    out = `${out.slice(0, a + open.length)}\n${table}\n${out.slice(b)}`;
  }
  return out;
}
