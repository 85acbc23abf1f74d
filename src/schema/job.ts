// PLACEHOLDER on branch wt-api: the job spec schema is written on another branch, and on merge that
// file replaces this one. Until then the API documents the job spec body as any JSON object.
import { Type } from '@sinclair/typebox';

export const JobSpecInput = Type.Object(
  {},
  { additionalProperties: true, description: 'placeholder: replaced by the job spec schema' },
);
