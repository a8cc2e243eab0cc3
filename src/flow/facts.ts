import type { FieldName, FieldValueOf } from './fields.js';

/**
 * What the policy engine sees of a flow: the value of a field, and whether a field that has no value yet
 * may still get one (its stage can still happen). Pure view — no sockets, no I/O.
 */
export interface Facts {
  get<K extends FieldName>(name: K): FieldValueOf<K> | undefined;
  /** true when the field has no value yet but its stage can still arrive for this flow. */
  isPending(name: FieldName): boolean;
}
