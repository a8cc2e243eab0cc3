import type http from 'node:http';
import { ingestHints, type IngestResult } from '../enrich/hint-ingest.js';
import type { HintStore } from '../enrich/hint-store.js';
import { sendJson, type ApiHandler } from './admin.js';

export interface HintsApiOptions {
  store: HintStore;
  maxBodyBytes: number;
  /** Called with each answer (metrics). */
  onIngested?: (result: IngestResult) => void;
}

/** Read a request body up to `max` bytes; null (and the connection is closed) when it is larger. */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > max) return resolve(null);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.destroy();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

/**
 * POST /v1/hints (SPEC "Endpoint process hints"): NDJSON or a JSON array of Sysmon events, raw or as
 * Winlogbeat ships them. Answers 202 with the counts and a reason per rejected event; one bad event never
 * loses the good ones. The bearer token is checked by the admin listener before this runs.
 */
export function createHintsApi(opts: HintsApiOptions): ApiHandler {
  return async (req, res) => {
    const body = await readBody(req, opts.maxBodyBytes).catch(() => null);
    if (body === null) {
      res.setHeader('connection', 'close');
      return sendJson(res, 413, { error: `body larger than hints.max_body_bytes (${opts.maxBodyBytes} bytes)`, code: 'BODY_TOO_LARGE' });
    }
    const result = await ingestHints(body, req.headers['content-type'], opts.store, Date.now());
    opts.onIngested?.(result);
    sendJson(res, 202, result);
  };
}
