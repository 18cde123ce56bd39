// Node 20 lacks Promise.withResolvers (ES2024, Node >= 22), which libp2p 3.x (it-queue, yamux,
// @libp2p/utils streams) calls at run time. Every entry file imports this module first so the
// standard function exists before any libp2p module is evaluated.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}
