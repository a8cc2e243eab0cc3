/**
 * The facts of a DNS question that policies and scorers read: the name split at its registrable domain
 * (public-suffix aware, through tldts, never a hand list), its entropy and its label shape.
 */
import { parse } from 'tldts';
import type { Flow } from '../flow/flow.js';
import { typeName, type DnsQuestion } from '../parsers/dns-message.js';

export interface QuestionFacts {
  readonly name: string;
  readonly type: string;
  /** Registrable domain (eTLD+1), e.g. `example.co.uk`; null for a bare suffix, a single label or an IP. */
  readonly registeredDomain: string | null;
  /** Labels left of the registrable domain, e.g. `a.b` in `a.b.example.com`; '' when none. */
  readonly subdomain: string;
  /** The registrable domain's own label (`example` in `www.example.co.uk`); '' when there is none. */
  readonly domainLabel: string;
  /** Shannon entropy, bits per character, of the name without its public suffix (dots left out). */
  readonly entropy: number;
  readonly labelCount: number;
  readonly longestLabel: number;
}

// tldts: the input is already a host name (no URL to pick apart); private suffixes (github.io, s3.amazonaws.com …)
// count as suffixes, so every tenant of a shared platform is its own registrable domain.
export const TLDTS_OPTIONS = { allowPrivateDomains: true, extractHostname: false, validateHostname: false, detectIp: true, mixedInputs: false } as const;

/** Shannon entropy in bits per character of `text`, skipping dots; 0 for ''. */
export function shannonEntropy(text: string): number {
  const counts = new Map<number, number>();
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) continue;
    counts.set(c, (counts.get(c) ?? 0) + 1);
    n++;
  }
  if (n === 0) return 0;
  let h = 0;
  for (const count of counts.values()) {
    const p = count / n;
    h -= p * Math.log2(p);
  }
  return h;
}

export function questionFacts(question: DnsQuestion): QuestionFacts {
  const name = question.name;
  let labelCount = 0;
  let longest = 0;
  if (name !== '.') {
    let start = 0;
    for (let i = 0; i <= name.length; i++) {
      if (i === name.length || name.charCodeAt(i) === 0x2e) {
        labelCount++;
        longest = Math.max(longest, i - start);
        start = i + 1;
      }
    }
  }
  const parsed = name === '.' ? null : parse(name, TLDTS_OPTIONS);
  const registeredDomain = parsed?.domain ?? null;
  const subdomain = registeredDomain === null ? '' : (parsed?.subdomain ?? '');
  const domainLabel = registeredDomain === null ? '' : (parsed?.domainWithoutSuffix ?? '');
  const suffix = parsed?.publicSuffix ?? null;
  // Without a known suffix the whole name is "ours" to measure.
  const measured = registeredDomain !== null && suffix !== null ? name.slice(0, name.length - suffix.length - 1) : name === '.' ? '' : name;
  return {
    name,
    type: typeName(question.type),
    registeredDomain,
    subdomain,
    domainLabel,
    entropy: Math.round(shannonEntropy(measured) * 1000) / 1000,
    labelCount,
    longestLabel: longest,
  };
}

/** Sets the dns-query facts of a flow (SPEC: the DNS query stage). */
export function setQuestionFacts(flow: Flow, facts: QuestionFacts): void {
  flow.set('dns.question.name', facts.name);
  flow.set('dns.question.type', facts.type);
  if (facts.registeredDomain !== null) flow.set('dns.question.registered_domain', facts.registeredDomain);
  if (facts.subdomain !== '') flow.set('dns.question.subdomain', facts.subdomain);
  flow.set('egress.dns.question_entropy', facts.entropy);
  flow.set('egress.dns.label_count', facts.labelCount);
  flow.set('egress.dns.longest_label', facts.longestLabel);
}
