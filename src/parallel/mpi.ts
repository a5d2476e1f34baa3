/**
 * @module parallel/mpi
 * Data-parallel training over MPI (issue 16): which rank this process is, and the collectives the
 * trainer needs, on the optional `gpg_mpi` addon (native/mpi/mpi.cc; built by `npm ci` when Open
 * MPI is installed, Debian `libopenmpi-dev openmpi-bin`).
 *
 *   worldSizeFromEnv()   the rank count a launcher gave us: Open MPI's OMPI_COMM_WORLD_SIZE,
 *                        MPICH/Hydra's PMI_SIZE, or Slurm's SLURM_NTASKS under a PMIx `srun`
 *   openWorld()          null for one process; else MPI_Init and a Comm
 *   Comm                 allreduceSum (Float32/Float64, in place), bcast, barrier, allgather of
 *                        JSON values (typed arrays travel bit for bit), abort
 *
 * Every collective runs under a watchdog (GPG_RL_MPI_TIMEOUT_S, default 900 s): a rank that waits
 * longer prints one line naming itself and the collective, and ends, and mpirun ends the others;
 * a rank that dies is mpirun's to notice (it ends the job).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GpgRlError } from '../errors.ts';

interface MpiAddon {
  init(): { rank: number; size: number };
  finalize(): void;
  allreduceSum(buf: Float32Array | Float64Array, timeoutS: number): void;
  bcast(buf: ArrayBufferView, root: number, timeoutS: number): void;
  barrier(timeoutS: number): void;
  abort(code: number): never;
}

/** MPI is needed (launched with several ranks) but unusable, or a collective failed. */
export class MpiError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_MPI');
    this.name = 'MpiError';
  }
}

/** The number of ranks the launcher started (1 when not launched by mpirun / srun). */
export function worldSizeFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const n = env.OMPI_COMM_WORLD_SIZE ?? env.PMI_SIZE ?? (env.PMIX_RANK !== undefined ? env.SLURM_NTASKS : undefined);
  const v = n === undefined ? 1 : Number(n);
  return Number.isInteger(v) && v > 0 ? v : 1;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MPI_ADDON = join(root, 'build', 'mpi', 'gpg_mpi.node');

/** Seconds a collective may wait for the other ranks before this rank ends the run. */
export function collectiveTimeoutS(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.GPG_RL_MPI_TIMEOUT_S ?? 900);
  return Number.isFinite(v) && v > 0 ? v : 900;
}

let opened: Comm | null = null;

/** The MPI world when launched with more than one rank (initialised once per process), else null. */
export function openWorld(): Comm | null {
  if (opened) return opened;
  const size = worldSizeFromEnv();
  if (size <= 1) return null;
  if (!existsSync(MPI_ADDON))
    throw new MpiError(
      `launched as ${size} MPI ranks, but the MPI binding is not built (${MPI_ADDON} missing): install Open MPI (\`apt-get install -y libopenmpi-dev openmpi-bin\`), then run \`npm run build:native -- --mpi-only\` (or \`npm ci\`)`,
    );
  const addon = createRequire(import.meta.url)(MPI_ADDON) as MpiAddon;
  const w = addon.init();
  if (w.size !== size)
    throw new MpiError(
      `the launcher says ${size} ranks but MPI_COMM_WORLD has ${w.size}; gpg-rl and mpirun must come from the same MPI`,
    );
  opened = new Comm(addon, w.rank, w.size, collectiveTimeoutS());
  return opened;
}

export class Comm {
  constructor(
    private readonly addon: MpiAddon,
    readonly rank: number,
    readonly size: number,
    readonly timeoutS: number,
  ) {}

  /** Elementwise sum over ranks, in place (every rank gets the result). */
  allreduceSum<T extends Float32Array | Float64Array>(buf: T): T {
    this.addon.allreduceSum(buf, this.timeoutS);
    return buf;
  }

  /** Root's bytes into every rank's `buf` (same length everywhere). */
  bcast<T extends ArrayBufferView>(buf: T, root: number): T {
    this.addon.bcast(buf, root, this.timeoutS);
    return buf;
  }

  barrier(): void {
    this.addon.barrier(this.timeoutS);
  }

  /** Every rank's value, in rank order, on every rank (JSON; typed arrays and NaN kept bit for bit). */
  allgather<T>(value: T): T[] {
    const mine = new TextEncoder().encode(JSON.stringify(value, replacer));
    const lengths = new Float64Array(this.size);
    lengths[this.rank] = mine.length;
    this.allreduceSum(lengths);
    const out: T[] = [];
    for (let r = 0; r < this.size; r++) {
      const buf = r === this.rank ? mine : new Uint8Array(lengths[r]!);
      this.bcast(buf, r);
      out.push(r === this.rank ? value : (JSON.parse(new TextDecoder().decode(buf), reviver) as T));
    }
    return out;
  }

  /** Prints nothing; ends every rank (MPI_Abort). */
  abort(code = 1): never {
    return this.addon.abort(code);
  }

  finalize(): void {
    this.addon.finalize();
    opened = null;
  }
}

const TYPED = { Float64Array, Float32Array, Int32Array, Uint8Array } as const;
type TypedName = keyof typeof TYPED;

function replacer(this: unknown, _key: string, v: unknown): unknown {
  if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0)))
    return { $num: Object.is(v, -0) ? '-0' : String(v) };
  if (typeof v === 'bigint') return { $big: v.toString() };
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const name = v.constructor.name as TypedName;
    if (name in TYPED) return { $t: name, b: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  }
  return v;
}

function reviver(_key: string, v: unknown): unknown {
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.$num === 'string') return Number(o.$num);
    if (typeof o.$big === 'string') return BigInt(o.$big);
    if (typeof o.$t === 'string' && typeof o.b === 'string' && o.$t in TYPED) {
      const bytes = Buffer.from(o.b, 'base64');
      const C = TYPED[o.$t as TypedName];
      const copy = new Uint8Array(bytes.length);
      copy.set(bytes);
      return new C(copy.buffer, 0, bytes.length / C.BYTES_PER_ELEMENT);
    }
  }
  return v;
}
