import type { Application } from 'typedoc';

/** Where the site puts a guide's page: `docs/stores/postgres.md` → `documents/stores.postgres.html`. */
export function guidePage(file: string): string;

/** Loads the plugin into a TypeDoc application (typedoc.json names it in `plugin`). */
export function load(app: Application): void;
