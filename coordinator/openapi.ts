// Builds the API's OpenAPI 3.1 document from the route tables (api-researcher.ts, api-donor.ts) and
// their TypeBox schemas (api-schemas.ts), so the document cannot list a route that is not served or
// describe an answer in a shape the handlers' types do not produce. Named schemas become
// components.schemas and are referred to by $ref wherever they appear.
import { Type, type TObject, type TSchema } from '@sinclair/typebox';
import type { ApiRoute } from './api-common';
import { COMPONENTS, ErrorBody, type ResponseDoc } from './api-schemas';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const BEARER = 'bearerToken';

/** Express `/api/jobs/:id` → OpenAPI `/api/jobs/{id}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** Plain JSON Schema of a TypeBox schema (its symbol keys dropped), with named schemas as $refs. */
function jsonSchema(schema: unknown, refs: Map<unknown, string>, root?: unknown): Json {
  const name = schema !== root ? refs.get(schema) : undefined;
  if (name !== undefined) return { $ref: `#/components/schemas/${name}` };
  if (Array.isArray(schema)) return schema.map((s) => jsonSchema(s, refs));
  if (schema === null || typeof schema !== 'object') return schema as Json;
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(schema)) if (v !== undefined) out[k] = jsonSchema(v, refs);
  return out;
}

function parameters(where: 'path' | 'query', obj: TObject | undefined, refs: Map<unknown, string>): Json[] {
  if (!obj) return [];
  return Object.entries(obj.properties).map(([name, schema]: [string, TSchema]) => {
    const p: { [key: string]: Json } = {
      name,
      in: where,
      required: where === 'path' || (obj.required ?? []).includes(name),
      schema: jsonSchema(schema, refs),
    };
    if (typeof schema.description === 'string') p.description = schema.description;
    return p;
  });
}

function response(r: ResponseDoc, refs: Map<unknown, string>): Json {
  const out: { [key: string]: Json } = { description: r.description };
  if (r.schema) out.content = { [r.contentType ?? 'application/json']: { schema: jsonSchema(r.schema, refs) } };
  if (r.headers) {
    const header = (d: { description: string; schema: TSchema }) => ({
      description: d.description,
      schema: jsonSchema(d.schema, refs),
    });
    out.headers = Object.fromEntries(Object.entries(r.headers).map(([h, d]) => [h, header(d)]));
  }
  return out;
}

const UNAUTHORIZED: ResponseDoc = {
  description: 'missing, malformed or wrong bearer token',
  schema: ErrorBody,
  headers: { 'WWW-Authenticate': { description: 'Bearer realm="starling"', schema: Type.String() } },
};

const TOO_MANY: ResponseDoc = {
  description: "over the route class's per-IP request limit (the error names it and when to retry)",
  schema: ErrorBody,
  headers: { 'Retry-After': { description: 'seconds until the window resets', schema: Type.Integer() } },
};

const INTERNAL: ResponseDoc = { description: 'internal error (logged by the coordinator)', schema: ErrorBody };

function operation(route: ApiRoute, refs: Map<unknown, string>): Json {
  const { doc } = route;
  const op: { [key: string]: Json } = { operationId: route.handler.name, summary: doc.summary };
  if (doc.description) op.description = doc.description;
  op.tags = [route.auth ? 'researcher' : 'donor'];
  // An empty list says "no authentication", overriding nothing: the document sets no global security.
  op.security = route.auth ? [{ [BEARER]: [] }] : [];
  const params = [...parameters('path', doc.params, refs), ...parameters('query', doc.query, refs)];
  if (params.length) op.parameters = params;
  if (doc.body) {
    op.requestBody = {
      description: doc.body.description,
      required: doc.body.required,
      content: { [doc.body.contentType]: { schema: jsonSchema(doc.body.schema, refs) } },
    };
  }
  // Any route can fail unexpectedly; the error handler answers 500 with the message then.
  const responses: Record<number, ResponseDoc> = { 500: INTERNAL, ...doc.responses };
  if (route.auth) responses[401] = UNAUTHORIZED;
  responses[429] = TOO_MANY;
  op.responses = Object.fromEntries(
    Object.keys(responses)
      .map(Number)
      .sort((a, b) => a - b)
      .map((status) => [String(status), response(responses[status], refs)]),
  );
  return op;
}

export function buildOpenApi(routes: readonly ApiRoute[]): { [key: string]: Json } {
  const refs = new Map<unknown, string>(Object.entries(COMPONENTS).map(([name, s]) => [s, name]));
  const paths: { [path: string]: { [method: string]: Json } } = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    paths[path] ??= {};
    if (paths[path][route.method]) throw new Error(`route ${route.method.toUpperCase()} ${route.path} is listed twice`);
    paths[path][route.method] = operation(route, refs);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Starling coordinator API',
      version: '1',
      description:
        'Researcher routes need "Authorization: Bearer <token>"; donor routes (/api/donor/...) need none. ' +
        'Every failure answers JSON { "error": "<what went wrong>" }. See docs/JOBS.md and docs/API.md.',
    },
    tags: [
      { name: 'researcher', description: 'create and watch jobs (token required)' },
      { name: 'donor', description: 'what a donor browser needs to train (no token)' },
    ],
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(COMPONENTS).map(([name, s]) => [name, jsonSchema(s, refs, s)])),
      securitySchemes: {
        [BEARER]: {
          type: 'http',
          scheme: 'bearer',
          description: 'the researcher token: STARLING_TOKEN, or the one in <dataDir>/token',
        },
      },
    },
  };
}
