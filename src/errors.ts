/**
 * @module errors
 * Every failure gpg-rl reports is one of these classes: a one-line message that names the file,
 * field or op, the value, and the fix, plus a stable `code` for programs.
 */

/** Base class: all gpg-rl errors carry a stable code. */
export class GpgRlError extends Error {
  readonly code: string;
  constructor(message: string, code = 'GPG_ERROR') {
    super(message);
    this.name = 'GpgRlError';
    this.code = code;
  }
}

/** A native kernel rejected its arguments or failed; the message starts with the op name. */
export class NativeOpError extends GpgRlError {
  readonly op: string;
  constructor(message: string, op = 'native') {
    super(message, 'GPG_NATIVE_OP');
    this.name = 'NativeOpError';
    this.op = op;
  }
}

/** Shape, dtype or lifetime misuse of a tensor op, detected in TypeScript before any native call. */
export class TensorOpError extends GpgRlError {
  readonly op: string;
  constructor(op: string, message: string) {
    super(`${op}: ${message}`, 'GPG_TENSOR_OP');
    this.name = 'TensorOpError';
    this.op = op;
  }
}

/**
 * A library function was called with arguments it cannot work with (wrong lengths, a group size
 * that does not divide the batch, a loss setting the method does not define). Named after the
 * function: `computeLoss(gpg): beta must be 0 (got 0.04); …`.
 */
export class InvalidArgumentError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_INVALID_ARGUMENT');
    this.name = 'InvalidArgumentError';
  }
}

/** A recipe / config field is invalid. Message: `recipe.yaml: field: problem (got x)`. */
export class ConfigError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_CONFIG_INVALID');
    this.name = 'ConfigError';
  }
}

/** A dataset file or row is unusable. */
export class DataError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_DATA_INVALID');
    this.name = 'DataError';
  }
}

/** A model folder (config.json, weights, generation_config.json) cannot be loaded. */
export class ModelLoadError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_MODEL_LOAD');
    this.name = 'ModelLoadError';
  }
}

/** A safetensors file is truncated, malformed or hostile. */
export class SafetensorsError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_SAFETENSORS');
    this.name = 'SafetensorsError';
  }
}

/** tokenizer.json / tokenizer_config.json / chat template problems. */
export class TokenizerError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_TOKENIZER');
    this.name = 'TokenizerError';
  }
}

/** A checkpoint is partial, corrupted, or does not match the run. */
export class CheckpointError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_CHECKPOINT');
    this.name = 'CheckpointError';
  }
}

/** A verifier comparison exceeded its time or memory limit. */
export class VerifierTimeoutError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_VERIFIER_TIMEOUT');
    this.name = 'VerifierTimeoutError';
  }
}

/** A reward function threw, timed out or returned the wrong shape. */
export class RewardError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_REWARD');
    this.name = 'RewardError';
  }
}

/** Command-line usage errors (unknown flag, missing argument). */
export class UsageError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_USAGE');
    this.name = 'UsageError';
  }
}

/**
 * The command line itself is malformed: an unknown command or flag, a flag without its value, a
 * missing or extra argument. The CLI exits 2 for these (1 for every other error).
 */
export class FlagError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

/** A file or folder cannot be created, written or read (read-only mount, a file where a folder should be). */
export class FileSystemError extends GpgRlError {
  readonly path: string;
  constructor(message: string, path: string) {
    super(message, 'GPG_FS');
    this.name = 'FileSystemError';
    this.path = path;
  }
}

/** Another process holds the run folder (its run lock). */
export class RunLockedError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_RUN_LOCKED');
    this.name = 'RunLockedError';
  }
}

/** The run stopped on purpose (Ctrl-C / SIGTERM) or because it cannot make progress. */
export class RunStoppedError extends GpgRlError {
  constructor(message: string, code = 'GPG_RUN_STOPPED') {
    super(message, code);
    this.name = 'RunStoppedError';
  }
}

/** No WebGPU adapter here (the `webgpu` package, a Vulkan/Metal/D3D12 driver); the message says what to install. */
export class WebGpuUnavailableError extends GpgRlError {
  constructor(message: string) {
    super(message, 'GPG_WEBGPU_UNAVAILABLE');
    this.name = 'WebGpuUnavailableError';
  }
}
