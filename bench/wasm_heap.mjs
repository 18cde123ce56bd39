// Retained heap on the 32-bit MicroPython (the WebAssembly port) for `import MODULES`, measured
// the only honest way that port allows: its gc.collect() frees only once control has returned
// to JavaScript, so every step (import, collect, measure) is a separate call in from JS.
//
//   node bench/wasm_heap.mjs DIR MODULE [MODULE ...]      (DIR holds the .py / .mpy tree)
// prints one JSON line: {"base": B, "retained": {"MODULE": bytes, ...}, "total": bytes, "word": 32,
//   "qstr": {pools, count, str_data_bytes, total_bytes}, "loaded": [every module in sys.modules]}
//   (qstr and loaded are read after measuring)
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const HERE = dirname(fileURLToPath(import.meta.url))
const require = createRequire(join(HERE, '..', 'peers', 'js', 'package.json'))
const { loadMicroPython } = await import(require.resolve('@micropython/micropython-webassembly-pyscript'))

const [dir, ...modules] = process.argv.slice(2)
if (!dir || !modules.length) {
  console.error('usage: node bench/wasm_heap.mjs DIR MODULE...')
  process.exit(2)
}
let captured = null // lines of MicroPython's stdout while capturing (qstr_info)
const mp = await loadMicroPython({
  heapsize: 8 * 1048576,
  pystack: 16 * 1024,
  stdout: (l) => { if (captured) captured.push(l); else console.log(l) },
  stderr: (l) => console.error(l)
})
function copyTree (src, dst) {
  try { mp.FS.mkdir(dst) } catch (e) {}
  for (const name of readdirSync(src)) {
    const s = join(src, name)
    if (statSync(s).isDirectory()) copyTree(s, dst + '/' + name)
    else if (name.endsWith('.py') || name.endsWith('.mpy')) mp.FS.writeFile(dst + '/' + name, readFileSync(s))
  }
}
copyTree(resolve(dir), '/lib')
mp.runPython("import sys, gc\nsys.path.insert(0, '/lib')")
const measure = () => { mp.runPython('gc.collect()'); mp.runPython('_m = gc.mem_alloc()'); return mp.globals.get('_m') }
const base = measure()
const retained = {}
let last = base
for (const m of modules) {
  mp.runPython(`import ${m}`)
  const now = measure()
  retained[m] = now - last
  last = now
}
// After measuring: what was loaded, and the interned-string pools (they grow by doubling, so the
// last pool is often mostly empty; frozen code keeps its qstrs in flash instead).
captured = []
mp.runPython("import micropython\nmicropython.qstr_info()\n_l = ' '.join(sorted(sys.modules))")
const q = /n_pool=(\d+), n_qstr=(\d+), n_str_data_bytes=(\d+), n_total_bytes=(\d+)/.exec(captured.join(' '))
captured = null
const qstr = q ? { pools: +q[1], count: +q[2], str_data_bytes: +q[3], total_bytes: +q[4] } : null
const loaded = String(mp.globals.get('_l')).split(' ').filter(Boolean)
console.log(JSON.stringify({ base, retained, total: last - base, word: 32, qstr, loaded }))
