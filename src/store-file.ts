/**
 * The SQLite files of the stores kept on disk (the baseline's, src/enrich/baseline/baseline-sqlite.ts; the console
 * history's, src/console/history.ts): their directory is created 0700 and the file 0600 before SQLite opens it
 * (SQLite would create it 0644; its -wal and -shm files copy the database file's mode), and both are checked to be
 * usable, so that a wrong path or permission is refused at start with the path named.
 */
import { constants } from 'node:fs';
import { access, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { messageOf } from './errors.js';

/** Prepares `file` for SQLite; on failure throws what `fail` builds from a message prefixed with `store` ("history:"). */
export async function prepareStoreFile(file: string, store: string, fail: (message: string, cause: unknown) => Error): Promise<void> {
  const dir = dirname(file);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await access(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    throw fail(`${store} cannot use the directory ${dir} (${messageOf(err)}); it must be a writable directory`, err);
  }
  try {
    const fh = await open(file, 'a', 0o600);
    await fh.close();
    await access(file, constants.R_OK | constants.W_OK);
  } catch (err) {
    throw fail(`${store} cannot open ${file} for reading and writing (${messageOf(err)})`, err);
  }
}
