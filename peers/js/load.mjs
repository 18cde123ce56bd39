// Import a package of this folder's npm install (peers/js/node_modules, `make setup`) from a script
// that lives elsewhere in the repo (tests/interop, bench): ESM resolves bare names only from the
// importing file's folder upwards, so such a script loads the package's entry file by path; that
// package's own imports then resolve from here.
//
//   import { load } from '../../peers/js/load.mjs'
//   const { generateKeyPairFromSeed } = await load('@libp2p/crypto', './keys')
import { readFileSync } from 'node:fs'

const NM = new URL('./node_modules/', import.meta.url)

// The file a package's "exports" (or, without them, "main") names for `sub` ('.' or './keys').
function entryFile (meta, sub) {
  let e = meta.exports
  if (e == null) return sub === '.' ? (meta.main ?? 'index.js') : sub
  if (typeof e !== 'string' && e[sub] !== undefined) e = e[sub]
  else if (typeof e !== 'string' || sub !== '.') return null
  return typeof e === 'string' ? e : (e.import ?? e.default ?? null)
}

export async function load (name, sub = '.') {
  const dir = new URL(name + '/', NM)
  const meta = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8'))
  const file = entryFile(meta, sub)
  if (file == null) throw new Error(`${name}: no ES module entry for ${sub}`)
  return import(new URL(file, dir).href)
}
