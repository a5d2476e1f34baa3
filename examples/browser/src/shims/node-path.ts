/**
 * `node:path` (POSIX) for the browser bundle: module-level code of the library joins paths (e.g. the
 * MPI addon's location), which must not throw at load; nothing the page runs touches a file.
 */
export const sep = '/';
export const delimiter = ':';
function normalizeParts(parts: string[], abs: boolean): string {
  const out: string[] = [];
  for (const p of parts.join('/').split('/')) {
    if (!p || p === '.') continue;
    if (p === '..') {
      if (out.length && out[out.length - 1] !== '..') out.pop();
      else if (!abs) out.push('..');
    } else out.push(p);
  }
  return (abs ? '/' : '') + out.join('/') || (abs ? '/' : '.');
}
export const isAbsolute = (p: string): boolean => p.startsWith('/');
export const normalize = (p: string): string => normalizeParts([p], isAbsolute(p));
export const join = (...ps: string[]): string => normalizeParts(ps, isAbsolute(ps[0] ?? ''));
export function resolve(...ps: string[]): string {
  let acc: string[] = [];
  for (const p of ps) acc = isAbsolute(p) ? [p] : [...acc, p];
  return normalizeParts(acc[0] && isAbsolute(acc[0]) ? acc : ['/', ...acc], true);
}
export function dirname(p: string): string {
  const n = p.replace(/\/+$/, '');
  const i = n.lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : n.slice(0, i);
}
export function basename(p: string, ext?: string): string {
  const b = p.replace(/\/+$/, '').split('/').pop() ?? '';
  return ext && b.endsWith(ext) ? b.slice(0, -ext.length) : b;
}
export function extname(p: string): string {
  const b = basename(p);
  const i = b.lastIndexOf('.');
  return i <= 0 ? '' : b.slice(i);
}
export function relative(from: string, to: string): string {
  const a = resolve(from).split('/').filter(Boolean);
  const b = resolve(to).split('/').filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...Array(a.length - i).fill('..'), ...b.slice(i)].join('/');
}
export const posix = { sep, delimiter, isAbsolute, normalize, join, resolve, dirname, basename, extname, relative };
export default posix;
