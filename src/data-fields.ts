/**
 * Which stored data fields a write keeps that its schema does not declare: fields another version
 * of the definition wrote, which a rolling deploy must not lose. Internal.
 * @module
 */

/**
 * `stored` with the fields of `base` (the stored data a patch merged over) that the schema does
 * not declare (`declared`: another version of the definition wrote them) and the patch (`given`)
 * does not name. A field the schema declares is never brought back (a union variant that no
 * longer applies stays stripped). Where the declared fields cannot be told (`undefined`: a
 * schema of a shape read nowhere below), every field the schema's output left out is kept.
 */
export function withUndeclared(base: Record<string, unknown>, stored: Record<string, unknown>, given: Record<string, unknown>, declared: ReadonlySet<string> | undefined): Record<string, unknown> {
  const kept = Object.entries(base).filter(([field]) => !declared?.has(field) && !Object.hasOwn(stored, field) && !Object.hasOwn(given, field));
  // fromEntries, not assignment: a field named `__proto__` stays a field
  return kept.length === 0 ? stored : { ...Object.fromEntries(kept), ...stored };
}

/** Schema types whose values are never objects: they declare no field (a union member of one, say). */
const NOT_OBJECTS = new Set([
  'null', 'undefined', 'void', 'never', 'literal', 'enum', 'string', 'number', 'int', 'boolean', 'bigint', 'symbol', 'date', 'nan',
  'template_literal', 'array', 'tuple', 'map', 'set', 'file', 'success', 'function', 'promise',
]);

/**
 * Every top-level field a data schema can declare (each object, each member of a union or
 * intersection, either side of a pipe or codec, a lazy schema's), or `undefined` where it cannot
 * tell (a record, `any`, a custom type, a lazy schema whose getter fails).
 */
export function declaredFields(schema: unknown): Set<string> | undefined {
  const into = new Set<string>();
  // per schema: its answer, or `true` while it is being read (a recursive lazy schema)
  const seen = new Map<unknown, boolean>();
  const read = (s: unknown): boolean => {
    const known = seen.get(s);
    if (known !== undefined) return known;
    seen.set(s, true);
    const answer = readOne(s, read, into);
    seen.set(s, answer);
    return answer;
  };
  return read(schema) ? into : undefined;
}

function readOne(schema: unknown, read: (s: unknown) => boolean, into: Set<string>): boolean {
  const def = (schema as { _zod?: { def?: Record<string, unknown> } } | undefined)?._zod?.def;
  const type = String(def?.type);
  if (!def) return false;
  if (NOT_OBJECTS.has(type)) return true;
  switch (type) {
    case 'object':
      for (const field of Object.keys(def.shape as object)) into.add(field);
      return true;
    case 'union':
      return (def.options as unknown[]).every(read);
    case 'intersection':
      return read(def.left) && read(def.right);
    case 'pipe':
      // a codec or a transform: the input side (what is stored); a preprocess step or `any` there: the output side
      return read(def.in) || read(def.out);
    case 'lazy':
      try {
        return read((def.getter as () => unknown)());
      } catch {
        return false;
      }
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      return read(def.innerType);
    default:
      return false;
  }
}
