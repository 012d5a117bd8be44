import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../scripts/embedded-postgres.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
    postgresSource: string;
  }
}

/** Gives the PostgreSQL tests a server: `TEST_POSTGRES_URL`, or an embedded one for this run. */
export default async function setup(project: TestProject) {
  const given = process.env.TEST_POSTGRES_URL;
  if (given) {
    project.provide('postgresUrl', given);
    project.provide('postgresSource', 'TEST_POSTGRES_URL');
    return;
  }
  const started = Date.now();
  const pg = await startEmbeddedPostgres();
  console.log(`[leasehold tests] PostgreSQL: embedded-postgres on 127.0.0.1:${pg.port}, started in ${Date.now() - started} ms`);
  project.provide('postgresUrl', pg.url);
  project.provide('postgresSource', `embedded-postgres on port ${pg.port}`);
  return () => pg.stop();
}
