import type { Flow } from '../flow/flow.js';

/**
 * Where process facts come from (endpoint telemetry, identity headers). The pipeline asks three things:
 * is this client a managed endpoint (only those are worth waiting for), is there a hint for this flow now,
 * and — when a pending rule needs one — wait a bounded time for it to arrive.
 */
export interface HintSource {
  /** The client sent telemetry recently, so a hint for its flows can still arrive. */
  isManaged(sourceIp: string): boolean;
  /** Fill process.*, user.*, host.* and egress.attribution from a stored hint; true when one was found. */
  attach(flow: Flow): boolean;
  /** Resolve true as soon as a hint for this flow arrives (and was attached), false after `ms`. */
  waitFor(flow: Flow, ms: number): Promise<boolean>;
}

/** No telemetry configured: every client is unmanaged, so no flow ever waits. */
export const noHints: HintSource = {
  isManaged: () => false,
  attach: () => false,
  waitFor: () => Promise.resolve(false),
};
