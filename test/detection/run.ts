/**
 * The detection corpus CLI: plays every scenario through one live proxy and prints TPR/FPR per class.
 *
 *   npx tsx test/detection/run.ts [--json] [--only <id-or-class-substring>] [--concurrency <n>] [--verbose]
 *   npx tsx test/detection/run.ts --sources     (the per-scenario sources table for README.md; runs nothing)
 *
 * Exit code 0 when it ran (whatever the rates); 1 when the corpus could not run.
 */
import { SCENARIOS } from './scenarios/index.js';

function argValue(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--sources')) {
    process.stdout.write('| scenario | class | sources |\n|---|---|---|\n');
    const cell = (t: string): string => t.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    for (const s of SCENARIOS) process.stdout.write(`| \`${s.id}\` | ${s.cls} | ${cell(s.sources.join('; '))} |\n`);
    return;
  }
  const json = args.includes('--json');
  const only = argValue(args, '--only');
  const concurrency = Number(argValue(args, '--concurrency') ?? 8);
  const scenarios = only === undefined ? SCENARIOS : SCENARIOS.filter((s) => s.id.includes(only) || s.cls.includes(only));
  if (scenarios.length === 0) throw new Error(`no scenario matches ${only ?? ''}`);
  // Loaded here so that --sources works even when the proxy's sources do not load.
  const { runCorpus } = await import('./corpus.js');
  const { formatJson, formatReport } = await import('./report.js');
  const log = args.includes('--verbose') ? (l: string) => process.stderr.write(`${l}\n`) : undefined;
  const result = await runCorpus({ scenarios, concurrency, ...(log === undefined ? {} : { log }) });
  process.stdout.write(`${json ? formatJson(result) : formatReport(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`detection corpus failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
