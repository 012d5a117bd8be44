import type Database from 'better-sqlite3';

/** A better-sqlite3 database that reports every statement it runs (text and bound values). */
export function recordingDatabase(db: Database.Database, onStatement: (text: string, values: unknown[]) => void): Database.Database {
  return new Proxy(db, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop !== 'prepare') return typeof value === 'function' ? value.bind(target) : value;
      return (text: string) => {
        const stmt = target.prepare(text);
        return new Proxy(stmt, {
          get(s, p) {
            const v = Reflect.get(s, p);
            if (p === 'run' || p === 'get' || p === 'all') {
              return (...values: unknown[]) => (onStatement(text, values), (v as (...a: unknown[]) => unknown).apply(s, values));
            }
            return typeof v === 'function' ? v.bind(s) : v;
          },
        });
      };
    },
  });
}
