import { pino, type Logger } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type { Logger };

/** Operational log (not flow records): JSON lines on stderr, so stdout can carry the flow log. */
export function createLogger(level: LogLevel = 'info'): Logger {
  return pino({ level, base: { name: 'egress-inspector' } }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
