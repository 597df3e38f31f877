// Signs chain identity proofs with NEAR's (@near-js/signers, NEP-413) and
// ICP's (@dfinity/identity) own libraries. Reads {scope, member, expires}
// on stdin, prints {generated_by, cases} (see gen.py).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KeyPair } from '@near-js/crypto';
import { KeyPairSigner } from '@near-js/signers';
import { Ed25519KeyIdentity } from '@dfinity/identity';

const { scope, member, expires } = JSON.parse(readFileSync(0, 'utf8'));
const hex = (b) => Buffer.from(b).toString('hex');
const b64 = (b) => Buffer.from(b).toString('base64');
const message = (chain, account, nonce) => {
  const [kind, id] = [scope.slice(0, scope.indexOf(':')), scope.slice(scope.indexOf(':') + 1)];
  return `mero chain identity proof\nchain: ${chain}\naccount: ${account}\n${kind}: ${id}\nmember: ${member}\nnonce: ${nonce}\nexpires: ${expires}`;
};
const kase = (name, chain, scheme, account, nonce, msg, signature, expect, publicKey) => ({
  name, chain, scheme, scope, member, account, nonce, expires, message: msg,
  public_key: publicKey ?? null, signature, expect,
});

async function near() {
  const out = [];
  const kp = KeyPair.fromRandom('ed25519');
  const other = KeyPair.fromRandom('ed25519');
  const implicit = hex(kp.getPublicKey().data);
  const sign = async (pair, msg, account, nonce) =>
    (await new KeyPairSigner(pair).signNep413Message(msg, account, 'mero', Buffer.from(nonce, 'hex'))).signature;
  let nonce = hex(randomBytes(32));
  let msg = message('near', implicit, nonce);
  out.push(kase('near NEP-413, implicit account', 'near', 'nep413', implicit, nonce, msg,
    b64(await sign(kp, msg, implicit, nonce)), 'accept'));
  nonce = hex(randomBytes(32));
  msg = message('near', 'alice.near', nonce);
  out.push(kase('near NEP-413, named account (unverified on chain)', 'near', 'nep413', 'alice.near',
    nonce, msg, hex(await sign(kp, msg, 'alice.near', nonce)), 'accept', kp.getPublicKey().toString()));
  nonce = hex(randomBytes(32));
  msg = message('near', implicit, nonce);
  out.push(kase('near NEP-413 by another key, implicit account', 'near', 'nep413', implicit, nonce, msg,
    b64(await sign(other, msg, implicit, nonce)), 'reject'));
  nonce = hex(randomBytes(32));
  msg = message('near', 'alice.near', nonce);
  out.push(kase('near NEP-413 by another key than the one given', 'near', 'nep413', 'alice.near', nonce,
    msg, b64(await sign(other, msg, 'alice.near', nonce)), 'reject', kp.getPublicKey().toString()));
  return out;
}

async function icp() {
  const out = [];
  const id = Ed25519KeyIdentity.generate();
  const other = Ed25519KeyIdentity.generate();
  const principal = id.getPrincipal().toText();
  const sign = async (ident, msg) => new Uint8Array(await ident.sign(new TextEncoder().encode(msg)));
  let nonce = hex(randomBytes(32));
  let msg = message('icp', principal, nonce);
  out.push(kase('icp ed25519, DER key, hex signature', 'icp', 'icp-ed25519', principal, nonce, msg,
    hex(await sign(id, msg)), 'accept', hex(new Uint8Array(id.getPublicKey().toDer()))));
  nonce = hex(randomBytes(32));
  msg = message('icp', principal, nonce);
  out.push(kase('icp ed25519, raw key, base64 signature', 'icp', 'icp-ed25519', principal, nonce, msg,
    b64(await sign(id, msg)), 'accept', b64(new Uint8Array(id.getPublicKey().toRaw()))));
  nonce = hex(randomBytes(32));
  msg = message('icp', principal, nonce);
  out.push(kase("icp another identity's key and signature", 'icp', 'icp-ed25519', principal, nonce, msg,
    hex(await sign(other, msg)), 'reject', hex(new Uint8Array(other.getPublicKey().toRaw()))));
  nonce = hex(randomBytes(32));
  msg = message('icp', principal, nonce);
  out.push(kase('icp signed by another identity', 'icp', 'icp-ed25519', principal, nonce, msg,
    hex(await sign(other, msg)), 'reject', hex(new Uint8Array(id.getPublicKey().toRaw()))));
  return out;
}

// Read directly: some of these packages' `exports` hide package.json.
const versionOf = (pkg) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url), 'utf8')).version;
const generated_by = {};
for (const pkg of ['@near-js/crypto', '@near-js/signers', '@dfinity/identity', '@dfinity/principal']) {
  try { generated_by[pkg] = versionOf(pkg); } catch { generated_by[pkg] = 'installed'; }
}
process.stdout.write(JSON.stringify({ generated_by, cases: [...(await near()), ...(await icp())] }));
