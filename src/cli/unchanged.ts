import type { AnyTracker } from './config.js';
import { CliError, EXIT } from './errors.js';
import { keyText, printable } from './format.js';

/**
 * The error (exit 3) for a single-item verb that changed nothing: the item does not exist, or
 * its status is not one the verb acts on. The item is read again only to say which; the verb
 * itself was one conditional update, so this read cannot make it act twice.
 */
export async function unchanged(
  name: string,
  tracker: AnyTracker,
  key: Record<string, unknown>,
  verb: string,
  acts: string,
  /** Why `--stage` kept the verb from this item, if it did. */
  stageNote?: (item: { status: string; stage: string | null }) => string | undefined,
): Promise<CliError> {
  const item = await tracker.get(key);
  const why = !item
    ? `no item ${keyText(key)} in tracker \`${name}\``
    : (stageNote?.(item) ?? `item ${keyText(key)} is \`${printable(item.status)}\`, and ${verb} acts only on items ${acts}`);
  return new CliError(`${why}; nothing was changed.`, EXIT.notFound);
}
