import type { Flow } from '../flow/flow.js';
import type { HintSource } from './hints.js';
import { noteNeutralized } from './neutralize.js';

/**
 * Telemetry first, then the endpoint agent's signed process claim: a verified X-Egress-Process header
 * attributes a flow (egress.attribution: header) only once telemetry can no longer do it, so a disagreement
 * between the two stays visible instead of being papered over. Unverified claims never attribute.
 */
export function withProcessClaims(telemetry: HintSource): HintSource {
  const applyClaim = (flow: Flow): boolean => {
    if (flow.canStillReach('hint') || flow.get('process.name') !== undefined) return false;
    const name = flow.get('egress.claim.process_name');
    if (name === undefined || flow.get('egress.claim.verified') !== true) return false;
    flow.set('process.name', name); // neutralised when the claim was parsed (identity.ts)
    flow.set('egress.neutralized', noteNeutralized(flow.get('egress.neutralized'), 'process.name', name));
    flow.set('process.pid', flow.get('egress.claim.pid'));
    flow.set('egress.attribution', 'header');
    return true;
  };
  return {
    isManaged: (ip) => telemetry.isManaged(ip),
    attach: (flow) => telemetry.attach(flow) || applyClaim(flow),
    waitFor: (flow, ms) => telemetry.waitFor(flow, ms),
  };
}
