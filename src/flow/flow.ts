import type { Facts } from './facts.js';
import { isoTime } from './iso-time.js';
import { eventId } from './event-id.js';
import { FIELD_BY_SLOT, FIELD_COUNT, FIELD_SLOT, FIELDS, fieldStages, isDerivedField, type FieldName, type FieldValue, type FieldValueOf, type Stage } from './fields.js';
import type { Decision } from '../policy/decision.js';
import type { ErrorCode } from '../errors.js';

/** What kind of flow this is; it fixes which stages can happen. */
export type FlowKind = 'http' | 'connect' | 'dns';

const STAGE_BIT: Readonly<Record<Stage, number>> = {
  connect: 1,
  'client-hello': 2,
  'http-request': 4,
  'dns-query': 8,
  hint: 16,
  end: 32,
};

/** Stages each kind of flow can go through (docs/architecture.md). `hint` is added for managed clients. */
const KIND_STAGES: Readonly<Record<FlowKind, number>> = {
  http: STAGE_BIT['http-request'] | STAGE_BIT.end,
  connect: STAGE_BIT.connect | STAGE_BIT['client-hello'] | STAGE_BIT.end,
  dns: STAGE_BIT['dns-query'] | STAGE_BIT.end,
};

/** Per field, the bits of every stage its value depends on (its own stage and `also`), computed once. */
const FIELD_STAGE_BITS: ReadonlyMap<FieldName, number> = new Map(
  (Object.keys(FIELDS) as FieldName[]).map((name) => [name, fieldStages(name).reduce((bits, stage) => bits | STAGE_BIT[stage], 0)]),
);

const DERIVED_FIELDS: ReadonlySet<FieldName> = new Set((Object.keys(FIELDS) as FieldName[]).filter(isDerivedField));

/** Fields that stay pending while the destination name is being resolved. */
const RESOLUTION_FIELDS: ReadonlySet<FieldName> = new Set<FieldName>([
  'destination.ip',
  'egress.destination.internal',
  'egress.destination.resolved_before',
  'destination.geo.country_iso_code',
  'destination.as.number',
  'destination.as.organization.name',
  'egress.features.prevalence',
]);

export type FlowOutcome = 'success' | 'failure';

/** A flow's empty value array, copied (one allocation, no growth) for each new flow. */
const NO_VALUES: readonly (FieldValue | undefined)[] = Array.from({ length: FIELD_COUNT }, () => undefined);
const TIMESTAMP_SLOT = FIELD_SLOT.get('@timestamp') as number;
const EVENT_ID_SLOT = FIELD_SLOT.get('event.id') as number;

/** The slot of a field name; a name outside the catalogue is a programming error, never client input. */
function slotOf(name: FieldName): number {
  const slot = FIELD_SLOT.get(name);
  if (slot === undefined) throw new TypeError(`unknown flow field ${String(name)}`);
  return slot;
}

/**
 * One flow: plain data named by ECS fields, filled in stage by stage. No sockets in here (mitmproxy's
 * connection objects hold metadata only), so the pipeline and the policy can be tested without any I/O.
 */
export class Flow implements Facts {
  readonly kind: FlowKind;
  /** Field values by slot (FIELD_SLOT). Not an object with dotted keys: those added flow by flow made every
   * property access megamorphic; not a Map: it grew and rehashed ~5 times a flow (issue 9, allocation). */
  private readonly values: (FieldValue | undefined)[] = NO_VALUES.slice();
  /** process.hrtime.bigint() at the start, for event.duration. */
  readonly startedNs: bigint = process.hrtime.bigint();
  readonly startedMs: number = Date.now();
  /** event.id: a UUIDv7 of the start (time-ordered: src/flow/event-id.ts). */
  readonly id: string = eventId(this.startedMs);
  /** The latest policy decision (final once decided). */
  decision: Decision | null = null;
  outcome: FlowOutcome = 'success';
  errorCode: ErrorCode | null = null;
  errorMessage: string | null = null;
  /** Bytes from the client and from the destination. */
  sourceBytes = 0;
  destinationBytes = 0;
  /** True while destination.* address facts are being looked up. */
  resolving = false;
  ended = false;
  /** Bit set of stages that can still happen. */
  private possible: number;
  /** Bit set of the feature families already computed for this flow (src/scoring/features.ts). */
  computedFeatures = 0;
  /** Request-body sample for the body features (first bytes only), filled while the body is forwarded. */
  bodySample: Buffer | null = null;
  bodySampleLength = 0;
  /** The Host header of a plain HTTP request as sent (before the proxy rewrites it), for host_mismatch. */
  requestHost: string | null = null;

  constructor(kind: FlowKind, managed: boolean) {
    this.kind = kind;
    this.possible = KIND_STAGES[kind] | (managed ? STAGE_BIT.hint : 0);
    this.values[TIMESTAMP_SLOT] = isoTime(this.startedMs);
    this.values[EVENT_ID_SLOT] = this.id;
  }

  set<K extends FieldName>(name: K, value: FieldValueOf<K> | undefined): void {
    if (value === undefined) return;
    this.values[slotOf(name)] = value;
  }

  get<K extends FieldName>(name: K): FieldValueOf<K> | undefined {
    const slot = FIELD_SLOT.get(name);
    return slot === undefined ? undefined : (this.values[slot] as FieldValueOf<K> | undefined);
  }

  has(name: FieldName): boolean {
    return this.get(name) !== undefined;
  }

  /**
   * A field without a value is pending while a stage it depends on can still happen (SPEC: pending rules).
   * A derived total (egress.score) has a value early, but stays pending while any input stage can happen.
   */
  isPending(name: FieldName): boolean {
    const known = this.has(name);
    if (known && !DERIVED_FIELDS.has(name)) return false;
    if (!known && this.resolving && RESOLUTION_FIELDS.has(name)) return true;
    return (this.possible & (FIELD_STAGE_BITS.get(name) ?? 0)) !== 0;
  }

  /** Every known field with its value, in catalogue order (a new array: callers may set fields meanwhile). */
  fields(): [FieldName, FieldValue][] {
    const out: [FieldName, FieldValue][] = [];
    for (let slot = 0; slot < FIELD_COUNT; slot++) {
      const value = this.values[slot];
      if (value !== undefined) out.push([FIELD_BY_SLOT[slot] as FieldName, value]);
    }
    return out;
  }

  /** The value array by slot (FIELD_SLOT), read-only: for the record writer, which walks it in its own order. */
  slotValues(): readonly (FieldValue | undefined)[] {
    return this.values;
  }

  /** The stage has happened (or can no longer happen): its fields are now known or absent for good. */
  closeStage(stage: Stage): void {
    this.possible &= ~STAGE_BIT[stage];
  }

  canStillReach(stage: Stage): boolean {
    return (this.possible & STAGE_BIT[stage]) !== 0;
  }

  fail(code: ErrorCode, message: string): void {
    this.outcome = 'failure';
    // The first error is the cause; later ones (a close after a reset) are consequences.
    if (this.errorCode === null) {
      this.errorCode = code;
      this.errorMessage = message;
    }
  }

  /** Nanoseconds since the flow started. */
  elapsedNs(): bigint {
    return process.hrtime.bigint() - this.startedNs;
  }
}
