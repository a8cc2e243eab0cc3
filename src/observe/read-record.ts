/**
 * Reading a field back from a flow record parsed from the flow log: nested as the proxy writes it
 * (`{"destination":{"port":443}}`) or flattened as some exports write it (`{"destination.port":443}`). Only own
 * properties count, so a record can never reach Object.prototype through a key like `constructor`.
 */
export function readRecordField(record: Record<string, unknown>, dotted: string): unknown {
  if (Object.prototype.hasOwnProperty.call(record, dotted)) return record[dotted];
  let node: unknown = record;
  for (const key of dotted.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}
