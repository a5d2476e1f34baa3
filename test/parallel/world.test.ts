/**
 * src/parallel/mpi.ts without MPI: the rank count a launcher gives (Open MPI, MPICH/Hydra, Slurm
 * with PMIx), the collective time limit, and one process staying one process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collectiveTimeoutS, openWorld, worldSizeFromEnv } from '../../src/parallel/mpi.ts';

test('worldSizeFromEnv: Open MPI, MPICH, srun with PMIx; 1 otherwise', () => {
  assert.equal(worldSizeFromEnv({ OMPI_COMM_WORLD_SIZE: '4' }), 4);
  assert.equal(worldSizeFromEnv({ PMI_SIZE: '3' }), 3);
  assert.equal(worldSizeFromEnv({ PMIX_RANK: '0', SLURM_NTASKS: '8' }), 8);
  assert.equal(worldSizeFromEnv({ SLURM_NTASKS: '8' }), 1); // an sbatch script's own shell is no rank
  assert.equal(worldSizeFromEnv({}), 1);
  assert.equal(worldSizeFromEnv({ OMPI_COMM_WORLD_SIZE: 'x' }), 1);
});

test('collectiveTimeoutS: GPG_RL_MPI_TIMEOUT_S, default 900 s', () => {
  assert.equal(collectiveTimeoutS({}), 900);
  assert.equal(collectiveTimeoutS({ GPG_RL_MPI_TIMEOUT_S: '30' }), 30);
  assert.equal(collectiveTimeoutS({ GPG_RL_MPI_TIMEOUT_S: '-1' }), 900);
});

test(
  'openWorld: null for one process (no MPI is loaded)',
  { skip: worldSizeFromEnv() > 1 && 'run under mpirun' },
  () => {
    assert.equal(openWorld(), null);
  },
);
