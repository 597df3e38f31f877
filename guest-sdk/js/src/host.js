// The host the SDK talks to: the WIT bindings (installed by `wit.js` inside
// a component) or a fake (`testing.js`). Everything else reaches the host
// only through `backend()` and `host()`.

let current = null;

/** A storage, private-storage or events operation failed. */
export class StorageError extends Error {
  /**
   * @param {string} tag the WIT `storage-error` case (`read-only`, `too-large`, ...)
   * @param {string} detail its text, if any
   * @param {unknown} raw the host's own value, handed back unchanged
   */
  constructor(tag, detail, raw) {
    super(detail ? `${tag}: ${detail}` : tag);
    this.tag = tag;
    this.detail = detail ?? '';
    this.raw = raw ?? { tag, val: detail };
  }

  /** The same words the Rust SDK uses for this error. */
  describe() {
    if (this.tag === 'read-only') return 'read-only: a view cannot change state';
    if (this.tag === 'other') return this.detail;
    return `${this.tag.replace('-', ' ')}: ${this.detail}`;
  }
}

/** Installs a host: `{ storage, privateStorage, events, context }`. */
export function setBackend(b) {
  current = b;
}

export function backend() {
  if (current === null) {
    throw new Error('no host: run inside a component, or install the FakeHost of testing.js');
  }
  return current;
}

/** Calls a host function, turning a thrown `storage-error` into StorageError. */
export function host(f, ...args) {
  try {
    return f(...args);
  } catch (e) {
    // The bindings throw an error whose `payload` is the WIT variant.
    const v = e && typeof e === 'object' && 'payload' in e ? e.payload : e;
    if (v && typeof v === 'object' && typeof v.tag === 'string') {
      throw new StorageError(v.tag, typeof v.val === 'string' ? v.val : '', v);
    }
    throw e;
  }
}
