// A run folder: its specc.json and graph files, read from the file system (Node) or by URL
// (a browser, or Node with a URL), and ONNX Runtime sessions made from them.

import { ModelLoadError } from './errors.js';

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
const SUPPORTED = 1; // the specc.json format this runtime reads

/** Where a folder's files come from: a path (Node), a URL or URL string, or {read(name)}. */
function reader(source) {
  if (source && typeof source.read === 'function') return source;
  const text = String(source);
  if (isNode && !/^(https?|file|blob|data):/.test(text)) {
    return {
      where: text,
      async read(name) {
        const { readFile } = await import('node:fs/promises');
        const { join } = await import('node:path');
        return new Uint8Array(await readFile(join(text, name)));
      },
    };
  }
  const base = new URL(text.endsWith('/') ? text : text + '/', globalThis.location?.href);
  return {
    where: base.href,
    async read(name) {
      const response = await fetch(new URL(name, base));
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}

/** The ONNX Runtime module to use: the one given, else onnxruntime-node under Node. */
async function runtime(ort) {
  if (ort) return ort;
  if (isNode) {
    try {
      return await import('onnxruntime-node');
    } catch (e) {
      throw new ModelLoadError(
        `onnxruntime-node is not installed (npm install onnxruntime-node), or pass {ort}: ${e.message}`,
      );
    }
  }
  throw new ModelLoadError(
    "pass the ONNX Runtime module: open(url, {ort}) with `import * as ort from 'onnxruntime-web'`",
  );
}

export class Folder {
  /** Read specc.json from `source`; options: {ort, sessionOptions}. */
  static async open(source, options = {}) {
    const files = reader(source);
    let description;
    try {
      description = JSON.parse(new TextDecoder().decode(await files.read('specc.json')));
    } catch (e) {
      throw new ModelLoadError(
        `cannot read specc.json in ${files.where ?? source}: ${e.message} (specc train and ` +
          'specc export write it next to the graphs)',
      );
    }
    if (description.specc_json !== SUPPORTED) {
      throw new ModelLoadError(
        `specc.json format ${description.specc_json}; this runtime reads format ${SUPPORTED}`,
      );
    }
    return new Folder(files, description, await runtime(options.ort), options.sessionOptions);
  }

  constructor(files, description, ort, sessionOptions) {
    this.files = files;
    this.description = description;
    this.ort = ort;
    this.sessionOptions = sessionOptions ?? {};
    this.sessions = new Map();
  }

  get task() {
    return this.description.task;
  }

  /** An ONNX Runtime session for a graph of the folder ("model", "step", "encoder", ...). */
  async session(graph) {
    if (!this.sessions.has(graph)) {
      const info = this.description.graphs[graph];
      if (!info) {
        throw new ModelLoadError(
          `this ${this.task} folder has no ${graph}.onnx (it has: ${Object.keys(this.description.graphs).join(', ')})`,
        );
      }
      this.sessions.set(
        graph,
        (async () => {
          let bytes;
          try {
            bytes = await this.files.read(info.file);
          } catch (e) {
            throw new ModelLoadError(`cannot read ${info.file}: ${e.message}`);
          }
          return this.ort.InferenceSession.create(bytes, this.sessionOptions);
        })(),
      );
    }
    return this.sessions.get(graph);
  }

  /** Every session this folder opened, released. */
  async release() {
    for (const s of this.sessions.values()) await (await s).release?.();
    this.sessions.clear();
  }
}
