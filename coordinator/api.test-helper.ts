// An express app serving the API router on a free loopback port, for the API's tests.
import type { AddressInfo } from 'node:net';
import express, { type Router } from 'express';
import { apiNotFound } from './api';

export interface ServedApi {
  /** http://127.0.0.1:PORT */
  base: string;
  close(): Promise<void>;
}

export async function serveApi(router: Router): Promise<ServedApi> {
  const app = express();
  app.use(router);
  app.use(apiNotFound);
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
