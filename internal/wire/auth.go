package wire

import "encoding/binary"

// authDomain separates the auth signature from every other use of the
// device key.
const authDomain = "numeribus-sync-auth-v1"

// AuthMessage returns what an agent signs to answer a Challenge: the
// domain-separation prefix, the hub's nonce, the SHA-256 fingerprint of
// the hub's TLS certificate as the agent saw it (channel binding: a
// signature made through a man in the middle is worthless to the real
// hub), the device id and the session mode. Each part is prefixed with its
// length (8 bytes, big endian), so no two different inputs give the same
// message.
func AuthMessage(nonce, certFingerprint []byte, device string, mode uint8) []byte {
	parts := [...][]byte{[]byte(authDomain), nonce, certFingerprint, []byte(device), {mode}}
	size := 0
	for _, p := range parts {
		size += 8 + len(p)
	}
	out := make([]byte, 0, size)
	for _, p := range parts {
		out = binary.BigEndian.AppendUint64(out, uint64(len(p)))
		out = append(out, p...)
	}
	return out
}
