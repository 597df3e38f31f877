// Blobs: content-addressed files the node keeps beside the state, which an
// app references by id. An id is the SHA-256 of the blob's bytes, written
// as the node's HTTP API writes it (base58): keep it in state as a string
// and pass on the `blob_id` a client got from
// `PUT /admin-api/blobs?context_id=<CONTEXT>`. A call reads the blobs of its
// context (uploaded with its id, made by `create` in it, or fetched for
// it); a node that lacks one fetches it from the members that hold it. A
// blob still arriving when the call nears its deadline fails the read with
// a StorageError saying so, and a later call reads it.

import { backend, host } from './host.js';
import { SdkError } from './collections.js';

/** Most bytes one `read` returns. */
export const MAX_BLOB_READ = 1 << 20;

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** Bytes as base58 (Bitcoin's alphabet, as the node writes ids). */
export function toBase58(bytes) {
  let n = 0n;
  for (const b of bytes) n = n * 256n + BigInt(b);
  let out = '';
  while (n > 0n) {
    out = ALPHABET[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = `1${out}`;
  }
  return out;
}

/** A blob id (base58 string, or its 32 bytes) as 32 bytes; throws SdkError
 * for anything else. */
export function blobIdBytes(id) {
  if (id instanceof Uint8Array) {
    if (id.length !== 32) throw new SdkError(`a blob id is 32 bytes, not ${id.length}`);
    return id;
  }
  if (typeof id !== 'string') throw new SdkError('a blob id is a base58 string');
  let n = 0n;
  for (const c of id) {
    const d = ALPHABET.indexOf(c);
    if (d < 0) throw new SdkError(`a blob id is base58: ${JSON.stringify(c)} is not a base58 digit`);
    n = n * 58n + BigInt(d);
  }
  const out = [];
  while (n > 0n) {
    out.unshift(Number(n % 256n));
    n /= 256n;
  }
  for (const c of id) {
    if (c !== '1') break;
    out.unshift(0);
  }
  if (out.length !== 32) throw new SdkError(`a blob id is 32 bytes, not ${out.length}`);
  return Uint8Array.from(out);
}

export const blobs = {
  /** The size of blob `id` in bytes, or undefined if neither this node nor
   * a connected member holds it for the context. */
  size(id) {
    const v = host(() => backend().blobs.size(blobIdBytes(id)));
    return v === undefined ? undefined : Number(v);
  },
  /** Up to `len` bytes of blob `id` from `offset` (fewer at its end, at most
   * MAX_BLOB_READ), or undefined as for `size`. */
  read(id, offset = 0, len = MAX_BLOB_READ) {
    return host(() => backend().blobs.read(blobIdBytes(id), BigInt(offset), len));
  },
  /** The whole blob, read piece by piece, or undefined as for `size`: for
   * blobs of a few MiB (it is held in the call's memory). */
  readAll(id) {
    const size = this.size(id);
    if (size === undefined) return undefined;
    const out = new Uint8Array(size);
    let at = 0;
    while (at < size) {
      const part = this.read(id, at, MAX_BLOB_READ);
      if (part === undefined || part.length === 0) {
        throw new SdkError(`blob ${typeof id === 'string' ? id : toBase58(id)} ended at ${at} of its ${size} bytes`);
      }
      out.set(part, at);
      at += part.length;
    }
    return out;
  },
  /** Stores `data` (bytes, or a string as UTF-8) as a blob on this node and
   * returns its id (base58); only in a mutating method. It is stored at
   * once: a call that then fails leaves it on the node, unreferenced. */
  create(data) {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    return toBase58(host(() => backend().blobs.create(bytes)));
  },
};
