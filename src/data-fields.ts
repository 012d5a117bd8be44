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

/** Schema types whose values are never objects: a union member of one of these declares no field. */
const NOT_OBJECTS = new Set(['null', 'undefined', 'void', 'never', 'literal', 'enum', 'string', 'number', 'int', 'boolean', 'bigint', 'symbol', 'date', 'nan', 'template_literal', 'array', 'tuple']);

/**
 * Every top-level field a data schema can declare (each object, each member of a union or
 * intersection, either side of a pipe or codec, a lazy schema's), or `undefined` where it cannot
 * tell (a record, `any`, a custom type).
 */
export function declaredFields(schema: unknown, into = new Set<string>(), seen = new Set<unknown>()): Set<string> | undefined {
  const def = (schema as { _zod?: { def?: Record<string, unknown> } } | undefined)?._zod?.def;
  if (!def || seen.has(schema)) return seen.has(schema) ? into : undefined;
  seen.add(schema);
  switch (def.type) {
    case 'object':
      for (const field of Object.keys(def.shape as object)) into.add(field);
      return into;
    case 'union':
      return (def.options as unknown[]).every((option) => NOT_OBJECTS.has(String(typeOf(option))) || declaredFields(option, into, seen)) ? into : undefined;
    case 'intersection':
      return declaredFields(def.left, into, seen) && declaredFields(def.right, into, seen);
    case 'pipe':
      // a codec or a transform: the input side (what is stored); a preprocess step or `any` there: the output side
      return declaredFields(def.in, into, seen) ?? declaredFields(def.out, into, seen);
    case 'lazy':
      return declaredFields((def.getter as () => unknown)(), into, seen);
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      return declaredFields(def.innerType, into, seen);
    default:
      return undefined;
  }
}

const typeOf = (schema: unknown): unknown => (schema as { _zod?: { def?: { type?: unknown } } } | undefined)?._zod?.def?.type;
