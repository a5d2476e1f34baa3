/**
 * @module test/serve/spawn
 * Starts `gpg-rl serve MODEL_DIR --port 0` as a child process (the real CLI, loopback, a free
 * port) and resolves once it prints its URL; collects its stderr (the access log).
 */
import { spawn, type ChildProcess } from 'node:child_process';

const BIN = new URL('../../bin/gpg-rl.mjs', import.meta.url).pathname;

export interface Served {
  url: string;
  child: ChildProcess;
  /** Everything the server wrote on stderr so far. */
  stderr: () => string;
  /** SIGKILL, resolved once the process is gone. */
  kill: () => Promise<void>;
}

export function serve(modelDir: string, extra: string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', modelDir, '--port', '0', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gpg-rl serve did not start in 60 s:\n${err}`)), 60_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      err += d;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1]!,
          child,
          stderr: () => err,
          kill: async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
            await exited;
          },
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gpg-rl serve exited with ${code}:\n${err}`));
    });
  });
}
