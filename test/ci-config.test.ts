import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// The CI workflow and docker-compose.yml cannot run here (no docker): they are parsed and
// checked against each other, so that a typo or a drifted port or password fails a test.

const root = resolve(import.meta.dirname, '..');
const read = (path: string) => readFileSync(resolve(root, path), 'utf8');
const workflow = parse(read('.github/workflows/ci.yml'));
const compose = parse(read('docker-compose.yml'));
const job = workflow.jobs.test;
const steps = job.steps as Array<{ run?: string; uses?: string; with?: Record<string, unknown>; if?: string }>;

describe('.github/workflows/ci.yml', () => {
  it('runs npm test on Node 20, 22, 24 x MongoDB 7, 8 x PostgreSQL 16, 18, every combination to the end', () => {
    expect(job.strategy.matrix).toEqual({ node: [20, 22, 24], mongodb: [7, 8], postgres: [16, 18] });
    expect(job.strategy['fail-fast']).toBe(false);
    expect(workflow.on).toHaveProperty('pull_request');
    const setup = steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
    expect(setup?.with?.['node-version']).toBe('${{ matrix.node }}');
    const runs = steps.map((s) => s.run ?? '');
    const at = (command: string) => runs.findIndex((r) => r.trim() === command);
    expect(at('npm ci')).toBeGreaterThan(-1);
    expect(at('npm test')).toBeGreaterThan(at('npm ci'));
  });

  it('installs the system tools whose suites would otherwise skip (redis-server, spin) before the tests', () => {
    const runs = steps.map((s) => s.run ?? '');
    const install = runs.findIndex((r) => /apt-get install\b/.test(r));
    expect(install).toBeGreaterThan(-1);
    for (const tool of ['redis-server', 'spin']) expect(runs[install]).toMatch(new RegExp(`\\b${tool}\\b`));
    expect(install).toBeLessThan(runs.findIndex((r) => r.trim() === 'npm test'));
    expect(job.env.CHROMIUM_PATH).toMatch(/^\/usr\/bin\//);
  });

  it('starts the servers from docker-compose.yml with the matrix versions before the tests, and points the tests at them', () => {
    expect(job.env).toMatchObject({ MONGODB_VERSION: '${{ matrix.mongodb }}', POSTGRES_VERSION: '${{ matrix.postgres }}' });
    const runs = steps.map((s) => s.run ?? '');
    const up = runs.findIndex((r) => /docker compose up\b.*--wait\b/.test(r));
    expect(up).toBeGreaterThan(-1);
    expect(up).toBeLessThan(runs.findIndex((r) => r.trim() === 'npm test'));
    const mongo = new URL(job.env.MONGODB_URI);
    expect(mongo.searchParams.get('replicaSet')).toBe('rs0');
    expect(compose.services.mongodb.ports).toContain(`127.0.0.1:${mongo.port || 27017}:27017`);
    const pg = new URL(job.env.TEST_POSTGRES_URL);
    expect(compose.services.postgres.ports).toContain(`127.0.0.1:${pg.port}:5432`);
    expect(pg.password).toBe(compose.services.postgres.environment.POSTGRES_PASSWORD);
    expect(pg.pathname).toBe(`/${compose.services.postgres.environment.POSTGRES_DB}`);
    expect(steps.find((s) => s.run?.includes('docker compose down'))?.if).toBe('always()');
  });
});

describe('docker-compose.yml', () => {
  it('runs MongoDB (default 8) as a one-node replica set whose healthcheck initiates it and waits for a writable primary', () => {
    const mongodb = compose.services.mongodb;
    expect(mongodb.image).toBe('mongo:${MONGODB_VERSION:-8}');
    const command = mongodb.command as string[];
    expect(command[command.indexOf('--replSet') + 1]).toBe('rs0');
    const check = (mongodb.healthcheck.test as string[]).join(' ');
    expect(check).toMatch(/^CMD mongosh /);
    expect(check).toContain("rs.initiate({ _id: 'rs0', members: [{ _id: 0, host: 'localhost:27017' }] })");
    expect(check).toContain('isWritablePrimary) quit(1)');
  });

  it('runs PostgreSQL (default 18) with a readiness healthcheck', () => {
    const postgres = compose.services.postgres;
    expect(postgres.image).toBe('postgres:${POSTGRES_VERSION:-18}');
    expect(postgres.healthcheck.test).toContain('pg_isready');
  });

  it('README gives the same command and URIs', () => {
    const readme = read('README.md');
    expect(readme).toContain('docker compose up --detach --wait');
    expect(readme).toContain(job.env.MONGODB_URI);
    expect(readme).toContain(job.env.TEST_POSTGRES_URL);
  });
});
