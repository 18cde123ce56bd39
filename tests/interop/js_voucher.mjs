// Seals a circuit relay v2 reservation voucher with js-libp2p's own code (@libp2p/peer-record's
// RecordEnvelope and @libp2p/circuit-relay-v2's ReservationVoucherRecord, the class its relay
// server uses), or opens one: the voucher vectors microp2p's tests check against.
//
//   node js_voucher.mjs seal RELAY_SEED_HEX64 PEER_SEED_HEX64 EXPIRATION  -> {"voucher": HEX, ...}
//   node js_voucher.mjs open VOUCHER_HEX                                    -> {"relay","peer","expiration"}
//
// js-libp2p is the install in peers/js (`make setup`), loaded through peers/js/load.mjs.
import '../../peers/js/polyfill.mjs'
import { load } from '../../peers/js/load.mjs'

const { generateKeyPairFromSeed } = await load('@libp2p/crypto', './keys')
const { peerIdFromPrivateKey, peerIdFromMultihash } = await load('@libp2p/peer-id')
const { RecordEnvelope } = await load('@libp2p/peer-record')
const Digest = await load('multiformats', './hashes/digest')
const NM = new URL('../../peers/js/node_modules/', import.meta.url)
const voucherModule = new URL('@libp2p/circuit-relay-v2/dist/src/server/reservation-voucher.js', NM)
const pbModule = new URL('@libp2p/circuit-relay-v2/dist/src/pb/index.js', NM)
const { ReservationVoucherRecord } = await import(voucherModule)
const { ReservationVoucher } = await import(pbModule)

const key = (hex) => generateKeyPairFromSeed('Ed25519', new Uint8Array(Buffer.from(hex, 'hex')))
const [, , cmd, ...args] = process.argv
if (cmd === 'seal') {
  const relayKey = await key(args[0])
  const peer = peerIdFromPrivateKey(await key(args[1]))
  const relay = peerIdFromPrivateKey(relayKey)
  const env = await RecordEnvelope.seal(new ReservationVoucherRecord({ relay, peer, expiration: BigInt(args[2]) }), relayKey)
  process.stdout.write(JSON.stringify({ voucher: Buffer.from(env.marshal()).toString('hex'), relay: relay.toString(), peer: peer.toString() }) + '\n')
} else if (cmd === 'open') {
  const env = await RecordEnvelope.openAndCertify(new Uint8Array(Buffer.from(args[0], 'hex')), 'libp2p-relay-rsvp')
  const v = ReservationVoucher.decode(env.payload)
  process.stdout.write(JSON.stringify({
    relay: peerIdFromMultihash(Digest.decode(v.relay)).toString(),
    peer: peerIdFromMultihash(Digest.decode(v.peer)).toString(),
    expiration: Number(v.expiration),
    payloadType: Buffer.from(env.payloadType).toString('hex')
  }) + '\n')
} else {
  process.stderr.write('usage: js_voucher.mjs seal RELAY_SEED PEER_SEED EXPIRATION | open HEX\n')
  process.exit(2)
}
