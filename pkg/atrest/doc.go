// Package atrest encrypts perfleet's data at rest with AES-256-GCM under
// 32-byte data keys.
//
// A [Keyring] holds the data keys, each named by a key ID, with one of them
// active. [Keyring.Seal] writes a self-describing envelope that names the key
// it was sealed with, so after a rotation (a new active key) data written
// under older keys stays readable while new writes use the new key.
// [IsSealed] recognises an envelope, so callers can still read plaintext that
// was written before encryption was turned on.
//
// Keyrings come from a [KeySource]: a local keyring file ([FileKeySource]) or
// data keys wrapped by AWS KMS ([KMSKeySource]).
//
// On top of the keyring the package provides:
//
//   - [NewLogStore], a raft.LogStore wrapper that seals Log.Data and
//     Log.Extensions (the associated data is the log index, so entries cannot
//     be moved to another index);
//   - [NewSnapshotStore], a raft.SnapshotStore wrapper that seals snapshot
//     streams in authenticated chunks;
//   - [SealWriter] and [OpenReader] for other files (benchmark results), with
//     the same chunked stream format.
//
// # Formats
//
// A sealed value (envelope, version 1) is
//
//	"\x00PFE" | 0x01 | len(keyID) | keyID | aadTag[4] | nonce[12] | GCM ciphertext and tag
//
// where aadTag is the first four bytes of SHA-256 over the caller's associated
// data. The tag lets Open tell "wrong associated data" apart from "tampered
// ciphertext"; the associated data is not secret (log indexes, snapshot IDs),
// so the tag reveals nothing worth hiding. The GCM associated data is the
// header (everything before the nonce) followed by the caller's associated
// data, so the key ID and version are authenticated too. Nonces are random;
// as for any random-nonce GCM scheme, rotate the data key well before it has
// sealed 2^32 values.
//
// A sealed stream (version 1) is a fixed 106-byte header
//
//	"\x00PFS" | 0x01 | len(keyID) | keyID zero-padded to 64 bytes | aadTag[4] | salt[32]
//
// followed by chunks of 64 KiB of plaintext, each sealed as ciphertext plus a
// 16-byte GCM tag. Every chunk but the last is full; the last holds 0 to
// 64 KiB-1 bytes, so a stream always ends with a short chunk. Each stream
// derives its own key with HKDF-SHA256 from the data key and the random salt,
// and uses the chunk number as the GCM nonce; the chunk's associated data is
// the header, the chunk number, a final-chunk flag and the caller's
// associated data. Reordered, dropped, or appended chunks, and a stream cut
// short at any point, fail authentication. Because the framing is fixed, the
// plaintext size follows from the sealed size alone (see [PlaintextSize]),
// which is how the snapshot wrapper keeps raft's SnapshotMeta.Size exact.
//
// Both formats start with a zero byte, which neither perfleet's Raft commands
// (a non-zero message type byte), raft's msgpack-encoded configuration
// entries, nor perfleet's state snapshots ("perfleet-state v1") do, so old
// plaintext is never mistaken for a sealed value.
//
// What is not encrypted: the Raft log's index, term, type and AppendedAt,
// raft's stable store (current term and vote), and snapshot metadata
// (index, term, cluster configuration). Snapshots streamed to a follower
// travel in plaintext over the Raft transport (protect that with TLS) and
// are sealed again by the follower's wrapped store.
package atrest
