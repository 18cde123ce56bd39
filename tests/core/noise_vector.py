# A fixed-key noise-libp2p XX transcript (both sides' identity, static and ephemeral keys fixed;
# Ed25519 signatures are deterministic). Expected values computed by an independent Noise
# implementation on CPython's `cryptography` (tests/host/test_noise_vector.py), not by microp2p.
I_IDENTITY_SEED = bytes(range(1, 33))
R_IDENTITY_SEED = bytes(range(101, 133))
I_STATIC = bytes(range(201, 233))
R_STATIC = bytes(range(11, 43))
I_EPHEMERAL = bytes(range(51, 83))
R_EPHEMERAL = bytes(range(151, 183))
I_MUXERS = ("/yamux/1.0.0", "/mplex/6.7.0")
R_MUXERS = ("/mplex/6.7.0", "/yamux/1.0.0")
TRANSPORT_PLAINTEXT = b"microp2p noise vector"

MSG1_HEX = "0020c15d2265459455c9ff156e6c1da6bfb7910bb8af50f2b2f9f853ea9325259d4d"
MSG2_HEX = (
    "00e6153864612f5c5d47f684d66899a9de4f7c30b5f74a8ebd699642212bce00d938294230b52096c2c7d64c"
    "2d126abe58722b0545cf20aae842a8a77d4136be9cc6abd7de6fc862ed33c39b0d4463c9d654993672c85892"
    "a245ef50061efbf9a6413768d1a0e0c0bc5e496f4ece65d08b1b760f71794bdab1e04542a59fd0b1df4664ba"
    "403a2056ff6a43a88ade25b669b2c394030cc8f37edf73b2f5d98ae0f22e804ecd42544cf94773bcd3deac45"
    "c0b4128c6f55ddbbdb51467cb3b53d044dfa606c06939b631abc302b7b11156c7129b50b89ef0733323b08ad"
    "3fee24da6600c28e4dccdbfb"
)
MSG3_HEX = (
    "00c6839d94e92665b2166cc8729dbe1544e0a969ddc22479af387dddd9439a898db535dbcb709dede33d1aa6"
    "cfa5e3a894daf350b3d09c169423c3c62cfdf613614f40189e4536b2b1bc8e8fa8f74ebd6bcddbab58b6c51a"
    "b105a903f2f0eac38adb2a5c5e823f351a44a44b3bfb8d434e3772b1f5d8d24d343da2b8dc9c3f25f42318ce"
    "44321225d76639d18a4c1c08765c37acb256411ea22b442fd6d79d25c4c96f25ef067b99c8f25f7057877357"
    "3ebe988fbd961582960f9de9183426e744b8d9694d6ead36"
)
HANDSHAKE_HASH_HEX = "ec437ce815c93ba3c47be2855d5ba7a785a5c5356445b429a174a1f1d43c92f2"
TRANSPORT_I2R_HEX = "0025207b94d90545e01543adbe2469fb28f95d6df55d9a4ffc46e74d336b6d6112486f8da47da6"
