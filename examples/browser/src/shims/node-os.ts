/** `node:os` for the browser bundle: what module-level code and thread counts read. */
export const endianness = (): 'LE' | 'BE' => (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 'LE' : 'BE');
export const availableParallelism = (): number => globalThis.navigator?.hardwareConcurrency ?? 1;
export const cpus = (): unknown[] =>
  Array.from({ length: availableParallelism() }, () => ({ model: 'browser', speed: 0 }));
export const homedir = (): string => '/';
export const tmpdir = (): string => '/tmp';
export const platform = (): string => 'browser';
export const arch = (): string => 'unknown';
export const hostname = (): string => 'browser';
export const totalmem = (): number => 0;
export const freemem = (): number => 0;
export const EOL = '\n';
export default {
  endianness,
  availableParallelism,
  cpus,
  homedir,
  tmpdir,
  platform,
  arch,
  hostname,
  totalmem,
  freemem,
  EOL,
};
