# Multiaddr vectors. Everything marked "go" is taken from go-multiaddr's multiaddr_test.go
# (TestConstructFails, the `good` list of TestConstructSucceeds, TestStringToBytes,
# TestRoundTrip, TestIPFSvP2P, TestInvalidP2PAddrBytes/String, TestDNS, TestEqual,
# TestDecapsulate); protocol codes from multiformats/multiaddr protocols.csv.
#
# GO_SUCCEED   go accepts and so do we.
# UNSUPPORTED  go accepts, but they use protocols microp2p does not implement (ipcidr, ip6zone,
#              onion, onion3, garlic, sctp, udt, utp, unix, webtransport, certhash, webrtc,
#              http-path, memory): we must raise DecodeError, never misparse them.
# GO_FAIL      go rejects: so must we (DecodeError).
# OUR_FAIL     deliberate strictness beyond go, plus our own protocol (/serial).

# The i2p base64 destination used throughout go's garlic64 vectors (kept once, not 14 times).
GARLIC64 = (
    "jT~IyXaoauTni6N4517EG8mrFUKpy0IlgZh-EY9csMAk82Odatmzr~YTZy8Hv7u~wvkg75EFNOyqb~nAPg-khyp2TS~"
    "ObUz8WlqYAM2VlEzJ7wJB91P-cUlKF18zSzVoJFmsrcQHZCirSbWoOknS6iNmsGRh5KVZsBEfp1Dg3gwTipTRIx7Vl5"
    "Vy~1OSKQVjYiGZS9q8RL0MF~7xFiKxZDLbPxk0AK9TzGGqm~wMTI2HS0Gm4Ycy8LYPVmLvGonIBYndg2bJC7WLuF6tVj"
    "VquiokSVDKFwq70BCUU5AU-EvdOD5KEOAM7mPfw-gJUG4tm1TtvcobrObqoRnmhXPTBTN5H7qDD12AvlwFGnfAlBXjuP4"
    "xOUAISL5SRLiulrsMSiT4GcugSI80mF6sdB0zWRgL1yyvoVWeTBn1TqjO27alr95DGTluuSqrNAxgpQzCKEWAyzrQkBfo"
    "2avGAmmz2NaHaAvYbOg0QSJz1PLjv2jdPW~ofiQmrGWM1cd~1cCqAAAA"
)
GARLIC32 = "566niximlxdzpanmn4qouucvua3k7neniwss47li5r6ugoertzu"

QM = "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC"
K2 = "k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7"  # same peer as QM, base36 CID
KOOW = "12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV"

GO_SUCCEED = [
    "/ip4/1.2.3.4",
    "/ip4/0.0.0.0",
    "/ip6/::1",
    "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21",
    "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21/udp/1234/quic",
    "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21/udp/1234/quic-v1",
    "/udp/0",
    "/tcp/0",
    "/udp/1234",
    "/tcp/1234",
    "/udp/65535",
    "/tcp/65535",
    "/ipfs/" + QM,
    "/ipfs/" + K2,
    "/p2p/" + QM,
    "/p2p/" + K2,
    "/p2p/bafzbeigvf25ytwc3akrijfecaotc74udrhcxzh2cx3we5qqnw5vgrei4bm",
    "/p2p/" + KOOW,
    "/p2p/k51qzi5uqu5dhb6l8spkdx7yxafegfkee5by8h7lmjh2ehc2sgg34z7c15vzqs",
    "/p2p/bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u",
    "/tcp/1234/http",
    "/tcp/1234/tls/http",
    "/tcp/1234/https",
    "/ipfs/" + QM + "/tcp/1234",
    "/ipfs/" + K2 + "/tcp/1234",
    "/p2p/" + QM + "/tcp/1234",
    "/p2p/" + K2 + "/tcp/1234",
    "/ip4/127.0.0.1/udp/1234",
    "/ip4/127.0.0.1/udp/0",
    "/ip4/127.0.0.1/tcp/1234",
    "/ip4/127.0.0.1/tcp/1234/",
    "/ip4/127.0.0.1/udp/1234/quic",
    "/ip4/127.0.0.1/udp/1234/quic-v1",
    "/ip4/127.0.0.1/ipfs/" + QM,
    "/ip4/127.0.0.1/ipfs/" + QM + "/tcp/1234",
    "/ip4/127.0.0.1/ipfs/" + K2,
    "/ip4/127.0.0.1/ipfs/" + K2 + "/tcp/1234",
    "/ip4/127.0.0.1/p2p/" + QM,
    "/ip4/127.0.0.1/p2p/" + QM + "/tcp/1234",
    "/ip4/127.0.0.1/p2p/" + K2,
    "/ip4/127.0.0.1/p2p/" + K2 + "/tcp/1234",
    "/ip4/127.0.0.1/tcp/127/ws",
    "/ip4/127.0.0.1/tcp/127/tls",
    "/ip4/127.0.0.1/tcp/127/tls/ws",
    "/ip4/127.0.0.1/tcp/127/noise",
    "/ip4/127.0.0.1/tcp/127/wss",
    # TestGetValue / TestEncapsulate / TestDecapsulate inputs
    "/ip4/0.0.0.0/ip4/0.0.0.0/ip4/0.0.0.0",
    "/dnsaddr/wss.com/tcp/4001/ws",
    "/dnsaddr/wss.com/tcp/4001/wss",
    "/ip4/1.2.3.5/udp/1234/quic-v1",
]

UNSUPPORTED = [
    "/ip4/192.0.2.0/ipcidr/24",
    "/ip6/2001:db8::/ipcidr/32",
    "/ip6zone/x/ip6/fe80::1",
    "/ip6zone/x%y/ip6/fe80::1",
    "/ip6zone/x%y/ip6/::",
    "/ip6zone/x/ip6/fe80::1/udp/1234/quic",
    "/ip6zone/x/ip6/fe80::1/udp/1234/quic-v1",
    "/onion/timaq4ygg2iegci7:1234",
    "/onion/timaq4ygg2iegci7:80/http",
    "/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:1234",
    "/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:80/http",
    "/garlic64/" + GARLIC64,
    "/garlic64/" + GARLIC64 + "/http",
    "/garlic64/" + GARLIC64 + "/udp/8080",
    "/garlic64/" + GARLIC64 + "/tcp/8080",
    "/garlic32/" + GARLIC32 + "q",
    "/garlic32/" + GARLIC32 + "qzwas",
    "/garlic32/" + GARLIC32 + "qzwassw",
    "/garlic32/" + GARLIC32 + "q/http",
    "/garlic32/" + GARLIC32 + "q/tcp/8080",
    "/garlic32/" + GARLIC32 + "q/udp/8080",
    "/sctp/0",
    "/sctp/1234",
    "/udp/1234/sctp/1234",
    "/udp/1234/udt",
    "/udp/1234/utp",
    "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport",
    "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/b2uaraocy6yrdblb4sfptaddgimjmmpy",
    "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/b2uaraocy6yrdblb4sfptaddgimjmmpy"
    "/certhash/zQmbWTwYGcmdyK9CYfNBcfs9nhZs17a6FQ4Y8oea278xx41",
    "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g",
    "/unix/a/b/c/d/e",
    "/unix/stdio",
    "/ip4/1.2.3.4/tcp/80/unix/a/b/c/d/e/f",
    "/ip4/127.0.0.1/ipfs/" + QM + "/tcp/1234/unix/stdio",
    "/ip4/127.0.0.1/ipfs/" + K2 + "/tcp/1234/unix/stdio",
    "/ip4/127.0.0.1/p2p/" + QM + "/tcp/1234/unix/stdio",
    "/ip4/127.0.0.1/p2p/" + K2 + "/tcp/1234/unix/stdio",
    "/p2p/QmbHVEEepCi7rn7VL7Exxpd2Ci9NNB6ifvqwhsrbRMgQFP/unix/a/b/c",
    "/unix/a/b/c/d",
    "/ip4/127.0.0.1/tcp/9090/http/p2p-webrtc-direct",
    "/ip4/127.0.0.1/tcp/127/webrtc-direct",
    "/ip4/127.0.0.1/tcp/127/webrtc",
    "/http-path/tmp%2Fbar",
    "/http-path/tmp%2Fbar%2Fbaz",
    "/http-path/foo",
    "/http-path/tmp%2Fbar/p2p-circuit",
    "/ip4/127.0.0.1/tcp/0/p2p/" + KOOW + "/http-path/foo",
    "/ip4/127.0.0.1/tcp/443/tls/sni/example.com/http/http-path/foo",
    "/memory/4",
    "/ip6zone/eth0/ip6/::1",
]

# go's unknownCodecCID: CIDv1, codec md5 (0xd5), sha2-256("test") -- computed once, base32.
_MD5_CODEC_CID = "bahkqcerat6dnbamijr6wlgrp5kqmkwwqcwr36ty3fmfyelgrlvwblmhqbiea"

GO_FAIL = [
    "/ip4",
    "/ip4/::1",
    "/ip4/fdpsofodsajfdoisa",
    "/ip4/::/ipcidr/256",
    "/ip6/::/ipcidr/1026",
    "/ip6",
    "/ip6zone",
    "/ip6zone/",
    "/ip6zone//ip6/fe80::1",
    "/udp",
    "/tcp",
    "/sctp",
    "/udp/65536",
    "/tcp/65536",
    "/quic/65536",
    "/quic-v1/65536",
    "/onion/9imaq4ygg2iegci7:80",
    "/onion/aaimaq4ygg2iegci7:80",
    "/onion/timaq4ygg2iegci7:0",
    "/onion/timaq4ygg2iegci7:-1",
    "/onion/timaq4ygg2iegci7",
    "/onion/timaq4ygg2iegci@:666",
    "/onion3/9ww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:80",
    "/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd7:80",
    "/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:0",
    "/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:-1",
    "/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd",
    "/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyy@:666",
    "/garlic64/" + GARLIC64 + "7:80",
    "/garlic64/" + GARLIC64 + ":0",
    "/garlic64/" + GARLIC64 + ":-1",
    "/garlic64/" + GARLIC64 + "@:666",
    "/garlic32/" + GARLIC32,
    "/garlic32/" + GARLIC32 + "77",
    "/garlic32/" + GARLIC32 + ":80",
    "/garlic32/" + GARLIC32 + "q:-1",
    "/garlic32/" + GARLIC32 + "@",
    "/udp/1234/sctp",
    "/udp/1234/udt/1234",
    "/udp/1234/utp/1234",
    "/ip4/127.0.0.1/udp/jfodsajfidosajfoidsa",
    "/ip4/127.0.0.1/udp",
    "/ip4/127.0.0.1/tcp/jfodsajfidosajfoidsa",
    "/ip4/127.0.0.1/tcp",
    "/ip4/127.0.0.1/quic/1234",
    "/ip4/127.0.0.1/quic-v1/1234",
    "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash",
    "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/b2uaraocy6yrdblb4sfptaddgimjmmp",
    "/ip4/127.0.0.1/ipfs",
    "/ip4/127.0.0.1/ipfs/tcp",
    "/ip4/127.0.0.1/p2p",
    "/ip4/127.0.0.1/p2p/tcp",
    "/unix",
    "/ip4/1.2.3.4/tcp/80/unix",
    "/ip4/1.2.3.4/tcp/-1",
    "/ip4/127.0.0.1/tcp/9090/http/p2p-webcrt-direct",
    "/memory/92233720368547758081",
    "/",
    "",
    "/p2p/QmxoHT6iViN5xAjoz1VZ553cL31U9F94ht3QvWR1FrEbZY",  # sha2-256 digest longer than 32
    # TestInvalidP2PAddrString
    "/p2p/k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl-",
    "/p2p/?unknownmultibase",
    "/p2p/k2jmtxwoe2phm1hbqp0e7nufqf6umvuu2e9qd7ana7h411a0haqj6i2z",  # not libp2p-key
    "/p2p/" + _MD5_CODEC_CID,
    "/http-path/thisIsMissingAfullByte%f",
]

OUR_FAIL = [
    "/ip4/01.2.3.4",  # leading zero (modern Go rejects too)
    "/ip4/1.2.3",
    "/ip4/1.2.3.4.5",
    "/ip4/256.1.1.1",
    "/ip4/1.2.3.-4",
    "/ip4/::ffff:1.2.3.4",  # go takes IPv4-mapped text for ip4; we want dotted quads only
    "/tcp/080",  # non-canonical port
    "/tcp/+80",
    "/tcp/ 80",
    "/tcp/99999999999999999999",
    "/ip6/1.2.3.4",  # go maps bare IPv4 into ip6; we do not
    "/ip6/fe80::1%eth0",
    "/ip6/1::2::3",
    "/ip6/1:2:3:4:5:6:7:8:9",
    "/ip6/1:2:3:4:5:6:7",
    "/ip6/1:2:3:4:5:6:7:8::",
    "/ip6/12345::",
    "/ip6/:1:2:3:4:5:6:7",
    "/ip6/g::",
    "/ip6/::1.2.3",
    "/ip6/::1.2.3.4:5",
    "/dns",
    "/dns4/",
    "/dnsaddr",
    "/serial",
    "/serial/%zz",
    "/serial/%2",
    "/serial/%",
    "//ip4/1.2.3.4",
    "ip4/1.2.3.4",
    "/ip4/1.2.3.4//tcp/1",
    "/IP4/1.2.3.4",
    "/p2p/bafkqaaa",  # CIDv1 with codec raw, not libp2p-key
    "/p2p/1",
    "/p2p/Qm",
    "/p2p/12D3KooW",
]

# (text, hex) -- go TestStringToBytes/TestBytesToString (supported ones) plus our own.
STRING_BYTES = [
    ("/ip4/127.0.0.1/udp/1234", "047f000001910204d2"),
    ("/ip4/127.0.0.1/tcp/4321", "047f0000010610e1"),
    ("/ip4/127.0.0.1/udp/1234/ip4/127.0.0.1/tcp/4321", "047f000001910204d2047f0000010610e1"),
    ("/ip6/::1/tcp/4001", "2900000000000000000000000000000001060fa1"),
    ("/dns4/example.com/tcp/443/wss", "360b6578616d706c652e636f6d0601bbde03"),
    ("/p2p-circuit", "a202"),
    ("/ip4/1.2.3.4/tcp/1/p2p/" + QM + "/p2p-circuit",
     "0401020304060001a503221220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0ba202"),
    ("/serial/%2Fdev%2FttyUSB0", "8180c0010c2f6465762f74747955534230"),
]

# (input text, canonical output text)
CANONICAL = [
    ("/ipfs/QmbHVEEepCi7rn7VL7Exxpd2Ci9NNB6ifvqwhsrbRMgQFP", "/p2p/QmbHVEEepCi7rn7VL7Exxpd2Ci9NNB6ifvqwhsrbRMgQFP"),
    ("/p2p/" + K2, "/p2p/" + QM),
    ("/p2p/bafzbeigvf25ytwc3akrijfecaotc74udrhcxzh2cx3we5qqnw5vgrei4bm", "/p2p/" + QM),
    ("/p2p/k51qzi5uqu5dhb6l8spkdx7yxafegfkee5by8h7lmjh2ehc2sgg34z7c15vzqs", "/p2p/" + KOOW),
    ("/p2p/bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u", "/p2p/" + KOOW),
    ("/ip4/127.0.0.1/tcp/1234/", "/ip4/127.0.0.1/tcp/1234"),
    ("/ip4/127.0.0.1/tcp/1234///", "/ip4/127.0.0.1/tcp/1234"),
    ("/ip6/1:0:0:2:0:0:0:3", "/ip6/1:0:0:2::3"),
    ("/ip6/2001:DB8:0:0:0:0:0:1", "/ip6/2001:db8::1"),
    ("/ip6/0:0:0:0:0:0:0:0", "/ip6/::"),
    ("/ip6/1:0:0:0:1:0:0:0", "/ip6/1::1:0:0:0"),
    ("/ip6/2001:db8:0:1:1:1:1:1", "/ip6/2001:db8:0:1:1:1:1:1"),
    ("/ip6/0001:0db8::0001", "/ip6/1:db8::1"),
    ("/ip6/::1.2.3.4", "/ip6/::102:304"),
    ("/ip6/::FFFF:7f00:1", "/ip6/::ffff:127.0.0.1"),
    ("/ip6/1:2:3:4:5:6:1.2.3.4", "/ip6/1:2:3:4:5:6:102:304"),
    ("/ip6/fe80::", "/ip6/fe80::"),
    ("/serial/%2fdev%2Fpts%2F3", "/serial/%2Fdev%2Fpts%2F3"),
    ("/serial/COM3", "/serial/COM3"),
]

# go TestRoundTrip (supported ones): text -> bytes -> text is identical.
ROUND_TRIP = [
    "/ip6/::ffff:127.0.0.1/tcp/111",
    "/ip4/127.0.0.1/tcp/123",
    "/ip4/127.0.0.1/tcp/123/tls",
    "/ip4/127.0.0.1/udp/123",
    "/ip4/127.0.0.1/udp/123/ip6/::",
    "/p2p/QmbHVEEepCi7rn7VL7Exxpd2Ci9NNB6ifvqwhsrbRMgQFP",
    "/dns/example.com/tcp/4001/p2p/" + KOOW + "/p2p-circuit/p2p/" + KOOW,
    "/ip4/127.0.0.1/tcp/443/tls/sni/example.com/http",
    "/serial/%2Fdev%2FttyUSB0/p2p/" + KOOW,
]

# hex of binary multiaddrs that must not decode
BYTES_FAIL = [
    "",
    "a503221221c05877cbae039d70a5e600ea02c6f9f2942439285c9e344e26f8d280c850fad6",  # go
    "04",
    "047f0000",
    "047f000001910204",  # udp port truncated
    "0600",
    "a503",
    "a50300",  # empty p2p value
    "a5032212",  # p2p value truncated
    "ff01",  # unknown code 0xff
    "047f00000100",  # trailing code 0
    "8400" "7f000001",  # ip4 code as a non-minimal varint
    "3503612f62",  # dns with '/'
    "3500",  # empty dns
    "35ff",  # dns length beyond the data
    "8180c00100",  # empty serial
    "36" + "8002" + "61" * 256,  # dns4 name over MAX_NAME_LEN (255)
    "a5030300ff00",  # identity multihash with a length beyond the digest
    "a50326002408011220" + "00" * 31,  # identity multihash one byte short
    "ffffffffffffffffffff01",  # code varint too long
]

# go TestDNS: dns6 (0x37) with a 42-byte value of ASCII zeros.
DNS6_BYTES = b"7*" + b"0" * 42

# (left, right, expected text or None) -- go TestDecapsulate
DECAPSULATE = [
    ("/ip4/1.2.3.4/tcp/1234", "/ip4/1.2.3.4", None),
    ("/ip4/1.2.3.4", "/ip4/1.2.3.4/tcp/1234", "/ip4/1.2.3.4"),
    ("/ip4/1.2.3.5/tcp/1234", "/ip4/5.3.2.1", "/ip4/1.2.3.5/tcp/1234"),
    ("/ip4/1.2.3.5/udp/1234/quic-v1", "/udp/1234", "/ip4/1.2.3.5"),
    ("/ip4/1.2.3.6/udp/1234/quic-v1", "/udp/1234/quic-v1", "/ip4/1.2.3.6"),
    ("/ip4/1.2.3.7/tcp/1234", "/ws", "/ip4/1.2.3.7/tcp/1234"),
    ("/dnsaddr/wss.com/tcp/4001", "/ws", "/dnsaddr/wss.com/tcp/4001"),
    ("/dnsaddr/wss.com/tcp/4001/ws", "/wss", "/dnsaddr/wss.com/tcp/4001/ws"),
    ("/dnsaddr/wss.com/ws", "/wss", "/dnsaddr/wss.com/ws"),
    ("/dnsaddr/wss.com/ws", "/dnsaddr/wss.com", None),
    ("/dnsaddr/wss.com/tcp/4001/wss", "/wss", "/dnsaddr/wss.com/tcp/4001"),
    ("/ip4/1.2.3.4/tcp/80", "/tcp/80", "/ip4/1.2.3.4"),
    ("/ip4/1.2.3.4/tcp/80", "/udp/80", "/ip4/1.2.3.4/tcp/80"),
]
