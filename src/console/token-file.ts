/**
 * The console's sign-in secret when `admin.token` is not set: a random token kept in `console.token_file`, so
 * that `npm start` gives a working console without putting a default password in the product. The file is
 * created once (0600, in a 0700 directory) and read at every start; the token is never logged, only the file's
 * path (like Jupyter's token file or Grafana's generated admin password).
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EgressError } from '../errors.js';

/** Shortest token accepted from the file (the same floor as admin.token). */
const MIN_TOKEN_LENGTH = 16;

export interface TokenFile {
  readonly token: string;
  /** true when this start created the file. */
  readonly created: boolean;
}

export async function readOrCreateTokenFile(path: string): Promise<TokenFile> {
  const existing = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw new EgressError('CONFIG_INVALID', `console.token_file ${path}: cannot read it (${err.code ?? err.message})`);
  });
  if (existing !== null) {
    const token = existing.trim();
    if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
      throw new EgressError('CONFIG_INVALID', `console.token_file ${path}: expected one token of at least ${MIN_TOKEN_LENGTH} characters without spaces; delete the file to have a new one made`);
    }
    // A token others can read is not a secret: tighten it rather than refuse to start.
    if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
    return { token, created: false };
  }
  const token = randomBytes(24).toString('base64url');
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Another process (a second start) made it between our read and write: use theirs.
    if (code === 'EEXIST') return readOrCreateTokenFile(path);
    throw new EgressError('CONFIG_INVALID', `console.token_file ${path}: cannot create it (${code ?? String(err)}); set admin.token or console.enabled: false`);
  }
  return { token, created: true };
}
