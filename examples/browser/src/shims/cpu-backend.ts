/**
 * The browser bundle's src/backend/cpu: the native engine is a Node addon, so in a tab the registry's
 * `cpu` entry says so instead of loading it (the page trains on `webgpu`).
 */
export async function createCpuBackend(): Promise<never> {
  throw new Error('the cpu backend is the native (Node addon) engine; in the browser gpg-rl runs on webgpu');
}
