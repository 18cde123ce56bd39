// Run the portable core's tests under the official MicroPython WebAssembly port (31-bit small
// ints, no socket/viper) in Node: `make test-wasm` == `node tests/interop/wasm_runner.mjs`.
//
//   node tests/interop/wasm_runner.mjs [-k=NAME] [tests/core/test_x.py ...]
//        [--core-dir DIR]   take the test files from DIR instead of tests/core
//        [--heapsize 4M]    MicroPython heap (default: $MP_HEAP or 2M, as `make test-micropython`)
//        [--timeout 600]    seconds before the run is abandoned as failed (default: $WASM_TIMEOUT_S)
//
// The port runs in a worker thread so a test stuck inside wasm (a busy loop never returns to the
// event loop) cannot hang CI: the main thread ends the worker after the timeout. Note the port's
// GC heap grows by itself past `heapsize` (split heap), up to wasm's 2 GiB; only the time is capped.
//
// The package firmware/microp2p, the test files and tests/mp_runner.py are copied into the port's
// in-memory file system under /repo (the same layout as the repo), then mp_runner.main() runs
// there. Its output streams to stdout; the exit status is mp_runner's (1 when anything failed).
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker, isMainThread, workerData } from 'node:worker_threads'
import { load } from '../../peers/js/load.mjs' // the npm install lives in peers/js (`make setup`)

const { loadMicroPython } = await load('@micropython/micropython-webassembly-pyscript')

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(HERE, '..', '..')
const VROOT = '/repo' // where the repo layout lives inside the wasm file system
const PYSTACK_WORDS = 16 * 1024 // deep protocol code + test runner; the package default (2048) is small
const TIMEOUT_S_DEFAULT = 600

function parseSize (s) {
  const m = /^(\d+)([kKmM]?)$/.exec(String(s))
  if (!m) throw new Error(`bad heap size ${s}`)
  return Number(m[1]) * ({ k: 1024, K: 1024, m: 1048576, M: 1048576 }[m[2]] ?? 1)
}

if (isMainThread) {
  let coreDir = join(ROOT, 'tests', 'core')
  let heap = process.env.MP_HEAP || '2M'
  let timeoutS = Number(process.env.WASM_TIMEOUT_S || TIMEOUT_S_DEFAULT)
  const runnerArgs = []
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--core-dir') coreDir = resolve(argv[++i])
    else if (argv[i] === '--heapsize') heap = argv[++i]
    else if (argv[i] === '--timeout') timeoutS = Number(argv[++i])
    else runnerArgs.push(argv[i])
  }

  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { coreDir, heap, runnerArgs } })
  const timer = setTimeout(() => {
    process.stdout.write(`wasm runner: no result after ${timeoutS} s, stopping the port\n0 passed, 1 failed\n`)
    worker.terminate().finally(() => process.exit(1))
  }, timeoutS * 1000)
  worker.on('error', (e) => {
    process.stdout.write(`wasm runner: ${e && e.message ? e.message : e}\n0 passed, 1 failed\n`)
  })
  worker.on('exit', (code) => {
    clearTimeout(timer)
    process.stdout.write('', () => process.exit(code === 0 ? 0 : 1))
  })
} else {
  await runTests(workerData)
}

async function runTests ({ coreDir, heap, runnerArgs }) {
  const mp = await loadMicroPython({
    heapsize: parseSize(heap),
    pystack: PYSTACK_WORDS,
    linebuffer: true,
    stdout: (line) => process.stdout.write(line + '\n'),
    stderr: (line) => process.stderr.write(line + '\n')
  })
  const FS = mp.FS

  function mkdirs (path) {
    let cur = ''
    for (const part of path.split('/').filter(Boolean)) {
      cur += '/' + part
      try { FS.mkdir(cur) } catch (e) { /* exists */ }
    }
  }

  function copyFile (src, dst) {
    mkdirs(dirname(dst))
    FS.writeFile(dst, readFileSync(src))
  }

  // Python sources only: caches and editor files stay outside.
  function copyTree (src, dst) {
    for (const name of readdirSync(src)) {
      if (name === '__pycache__' || name.startsWith('.')) continue
      const s = join(src, name)
      if (statSync(s).isDirectory()) copyTree(s, dst + '/' + name)
      else if (name.endsWith('.py')) copyFile(s, dst + '/' + name)
    }
  }

  copyTree(join(ROOT, 'firmware', 'microp2p'), `${VROOT}/firmware/microp2p`)
  copyTree(join(ROOT, 'host', 'microp2p_sim'), `${VROOT}/host/microp2p_sim`)
  mkdirs(`${VROOT}/tests/core`)
  for (const name of readdirSync(coreDir)) {
    if (name.endsWith('.py')) copyFile(join(coreDir, name), `${VROOT}/tests/core/${name}`)
  }
  copyFile(join(ROOT, 'tests', 'mp_runner.py'), `${VROOT}/tests/mp_runner.py`)
  // the fuzz corpus (seeds and saved crashes, any file name) that test_fuzz_corpus.py replays
  const corpus = join(ROOT, 'tests', 'fuzz', 'corpus')
  try {
    for (const t of readdirSync(corpus)) {
      for (const f of readdirSync(join(corpus, t))) {
        if (!f.startsWith('.')) copyFile(join(corpus, t, f), `${VROOT}/tests/fuzz/corpus/${t}/${f}`)
      }
    }
  } catch (e) { /* no corpus: the replay test says so */ }

  // Test files named on the command line, as paths in the repo (or in --core-dir): map them to
  // their copies inside the wasm file system.
  const mapped = runnerArgs.map((a) => {
    if (a.startsWith('-')) return a
    const abs = resolve(a)
    const inCore = relative(coreDir, abs)
    if (!inCore.startsWith('..') && !inCore.includes(sep)) return `${VROOT}/tests/core/${inCore}`
    throw new Error(`${a}: only test files from ${coreDir} are copied into the wasm file system`)
  })

  let status = 1
  try {
    mp.globals.set('_runner_argv', [`${VROOT}/tests/mp_runner.py`, ...mapped])
    mp.runPython(`
  import sys
  sys.path.insert(0, "${VROOT}/tests")
  import mp_runner
  _runner_status = mp_runner.main([str(a) for a in _runner_argv])
  `)
    status = Number(mp.globals.get('_runner_status'))
  } catch (e) {
    process.stdout.write(`wasm runner: ${e && e.message ? e.message : e}\n`)
    process.stdout.write('0 passed, 1 failed\n')
    status = 1
  }
  process.exit(status)
}
