/** Every scenario of the corpus, C2 first. Add a scenario to one of these files; ids must stay unique. */
import type { Scenario } from '../types.js';
import { benignAppScenarios } from './benign-apps.js';
import { benignDevScenarios } from './benign-dev.js';
import { benignDnsScenarios } from './benign-dns.js';
import { benignWebScenarios } from './benign-web.js';
import { benignWindowsScenarios } from './benign-windows.js';
import { c2DnsScenarios } from './c2-dns.js';
import { c2HttpScenarios } from './c2-http.js';
import { c2TlsScenarios } from './c2-tls.js';

export const SCENARIOS: readonly Scenario[] = [
  ...c2HttpScenarios,
  ...c2TlsScenarios,
  ...c2DnsScenarios,
  ...benignWebScenarios,
  ...benignWindowsScenarios,
  ...benignAppScenarios,
  ...benignDevScenarios,
  ...benignDnsScenarios,
];
