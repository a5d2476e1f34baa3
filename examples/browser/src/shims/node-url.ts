/** `node:url` for the browser bundle: file URLs ↔ paths (module-level code computes paths from import.meta.url). */
export const fileURLToPath = (u: string | URL): string => decodeURIComponent(new URL(String(u)).pathname);
export const pathToFileURL = (p: string): URL => new URL(`file://${encodeURI(p)}`);
export default { fileURLToPath, pathToFileURL };
