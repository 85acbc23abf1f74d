#!/usr/bin/env node
// `npx starling …` / an installed `starling`: runs the TypeScript CLI (cli/cli.ts) through tsx's
// loader, so a checkout needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/cli.ts');
