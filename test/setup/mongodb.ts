import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A MongoDB URI, or '' when the suite must use the in-process double. */
    mongoUri: string;
    mongoSource: string;
  }
}

const banner = (line: string) => console.log(`\n${'='.repeat(100)}\n${line}\n${'='.repeat(100)}\n`);

/**
 * Gives the MongoDB tests a server, preferring `MONGODB_URI`, then mongodb-memory-server (a
 * `mongod` on PATH or downloaded). Where neither can give one, the suite runs against the
 * mingo-based Collection double and says so loudly.
 */
export default async function setup(project: TestProject) {
  if (process.env.MONGODB_URI) {
    project.provide('mongoUri', process.env.MONGODB_URI);
    project.provide('mongoSource', 'MONGODB_URI');
    banner(`[leasehold tests] MongoDB: the server at MONGODB_URI`);
    return;
  }
  try {
    const systemBinary = (() => {
      try {
        return execFileSync('sh', ['-c', 'command -v mongod'], { encoding: 'utf8' }).trim();
      } catch {
        return '';
      }
    })();
    if (systemBinary) process.env.MONGOMS_SYSTEM_BINARY ??= systemBinary;
    const { MongoMemoryReplSet } = await import('mongodb-memory-server-core');
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out after 30 s')), 30_000).unref());
    // mongodb-memory-server prints its own stack traces on a failed download; the banner says it all
    const { error: loudError, warn: loudWarn } = console;
    console.error = console.warn = () => {};
    const server = await Promise.race([MongoMemoryReplSet.create({ replSet: { count: 1 } }), timeout]).finally(() => {
      console.error = loudError;
      console.warn = loudWarn;
    });
    project.provide('mongoUri', server.getUri());
    project.provide('mongoSource', 'mongodb-memory-server (single-node replica set)');
    banner(`[leasehold tests] MongoDB: mongodb-memory-server at ${server.getUri()}`);
    return () => server.stop();
  } catch (error) {
    project.provide('mongoUri', '');
    project.provide('mongoSource', 'in-process mingo double (NO REAL MONGODB SERVER)');
    banner(
      '[leasehold tests] MongoDB: NO REAL SERVER. MONGODB_URI is not set and mongodb-memory-server could not start\n' +
        `  (${String((error as Error).message).split('\n')[0]?.slice(0, 160)}).\n` +
        '  The MongoStore contract suite runs against the in-process mingo Collection double instead;\n' +
        '  multi-client, multi-process and explain() tests, which need a real server, are SKIPPED.\n' +
        '  Set MONGODB_URI=mongodb://... to run them.',
    );
    return undefined;
  }
}
