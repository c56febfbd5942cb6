// Errors an application can catch, as in specc.runtime (runtime/errors.py): each message says
// what to fix.

export class SpeccRuntimeError extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}

/** The folder or a graph is missing, unreadable, or not written by specc. */
export class ModelLoadError extends SpeccRuntimeError {}

/** Inputs do not match what the model reads (names, shapes, tokens, options). */
export class InputError extends SpeccRuntimeError {}
