//! Checkpoints of the audit log in the C2SP `tlog-checkpoint` format, signed as C2SP
//! `signed-note`s with Ed25519, interoperable with Go's `golang.org/x/mod/sumdb/note`.
//!
//! - A checkpoint is three lines: the log's origin, the tree size in decimal, the root hash in
//!   standard base64, each ending in `\n`.
//! - A signed note is that text, an empty line, and one line per signature:
//!   `— <name> <base64(key ID ‖ signature)>`, where the key ID is the first four bytes of
//!   `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)` and the signature is Ed25519 over the text.
//! - Keys are written as note keys: the signer `PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 ‖
//!   seed)>` (the `AUDIT_SIGNING_KEY` secret) and the verifier `<name>+<key ID hex>+<base64(0x01
//!   ‖ public key)>` (served at `/api/audit/key`).
//!
//! Ed25519 signatures are deterministic, so the log signs each tree size with one signature,
//! and the tree of a size is fixed by its leaves: it can never sign two roots for one size
//! unless its stored history was changed, which is what the proofs expose.
//!
//! The Worker signs with the platform's WebCrypto (`crypto.subtle`, off the mutation path), so
//! the Ed25519 arithmetic ([`SigningKey`], [`VerifierKey`], with `ed25519-dalek`) is only
//! compiled natively: for the key generator, the offline verifier and the tests. What both
//! sides share (key text, key IDs, note and checkpoint text) is here, pure.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
#[cfg(not(target_arch = "wasm32"))]
use ed25519_dalek::{Signer, Verifier};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// The algorithm byte of Ed25519 note keys.
const ALG_ED25519: u8 = 1;
/// The prefix of a note signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a key, note or checkpoint was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoteError {
    /// The key text is not a well-formed note key of this kind.
    MalformedKey(&'static str),
    /// The note or checkpoint text is not well formed.
    Malformed(&'static str),
    /// No signature line by the expected key.
    NotSigned,
    /// A signature line by the expected key that does not verify.
    BadSignature,
}

impl std::fmt::Display for NoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoteError::MalformedKey(why) => write!(f, "malformed key: {why}"),
            NoteError::Malformed(why) => write!(f, "malformed note: {why}"),
            NoteError::NotSigned => f.write_str("the note carries no signature by this key"),
            NoteError::BadSignature => f.write_str("the note's signature does not verify"),
        }
    }
}

/// A key name as note keys allow it: not empty, no white space, no `+`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

/// The key ID: the first four bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`.
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let h = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([ALG_ED25519])
        .chain_update(public)
        .finalize();
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

/// `<name>+<key ID>+<base64>`: splits and checks a key's text. Returns the name, the key ID
/// and the 32 key bytes after the algorithm byte.
fn split_key(text: &str) -> Result<(&str, u32, [u8; 32]), NoteError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::MalformedKey("expected <name>+<key ID>+<key>"));
    };
    if !valid_name(name) {
        return Err(NoteError::MalformedKey(
            "the name is empty or has a space or +",
        ));
    }
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NoteError::MalformedKey("the key ID is not 8 hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| NoteError::MalformedKey("key ID"))?;
    let bytes = B64
        .decode(key)
        .map_err(|_| NoteError::MalformedKey("the key is not base64"))?;
    let [alg, rest @ ..] = bytes.as_slice() else {
        return Err(NoteError::MalformedKey("the key is empty"));
    };
    if *alg != ALG_ED25519 {
        return Err(NoteError::MalformedKey("not an Ed25519 key"));
    }
    let key: [u8; 32] = rest
        .try_into()
        .map_err(|_| NoteError::MalformedKey("an Ed25519 key has 32 bytes"))?;
    Ok((name, id, key))
}

/// `PRIVATE+KEY+<name>+<key ID>+<base64(0x01 ‖ seed)>` → `(name, key ID, seed)`. The key ID
/// can only be checked against the public key, which the caller derives from the seed.
pub fn parse_private_key(text: &str) -> Result<(&str, u32, [u8; 32]), NoteError> {
    let rest = text
        .trim()
        .strip_prefix("PRIVATE+KEY+")
        .ok_or(NoteError::MalformedKey(
            "a signing key starts with PRIVATE+KEY+",
        ))?;
    split_key(rest)
}

/// The verifier key text `<name>+<key ID>+<base64(0x01 ‖ public key)>`.
pub fn verifier_key_text(name: &str, public: &[u8; 32]) -> String {
    let mut raw = vec![ALG_ED25519];
    raw.extend_from_slice(public);
    format!("{name}+{:08x}+{}", key_id(name, public), B64.encode(raw))
}

/// `text` (ending in a newline) as a signed note with one signature line.
pub fn signed_note(text: &str, name: &str, id: u32, signature: &[u8; 64]) -> String {
    let mut raw = Vec::with_capacity(68);
    raw.extend_from_slice(&id.to_be_bytes());
    raw.extend_from_slice(signature);
    format!("{text}\n{SIG_PREFIX}{name} {}\n", B64.encode(raw))
}

/// The PKCS #8 (RFC 8410) form of an Ed25519 seed, which WebCrypto imports.
pub fn pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(seed);
    der
}

/// The log's signing key (the `AUDIT_SIGNING_KEY` secret).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    id: u32,
    key: ed25519_dalek::SigningKey,
}

#[cfg(not(target_arch = "wasm32"))]
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}+{:08x})", self.name, self.id)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl SigningKey {
    /// A key named `name` from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::MalformedKey(
                "the name is empty or has a space or +",
            ));
        }
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(SigningKey {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<key ID>+<base64(0x01 ‖ seed)>`; the key ID must match.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, seed) = parse_private_key(text)?;
        let key = Self::from_seed(name, seed)?;
        if key.id != id {
            return Err(NoteError::MalformedKey("the key ID does not match the key"));
        }
        Ok(key)
    }

    /// The key's text form.
    pub fn to_text(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            B64.encode(raw)
        )
    }

    /// The key's name (also the log's origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// `text` (which must end in `\n`) as a signed note with this key's signature.
    pub fn sign_note(&self, text: &str) -> String {
        debug_assert!(text.ends_with('\n'));
        let sig = self.key.sign(text.as_bytes());
        signed_note(text, &self.name, self.id, &sig.to_bytes())
    }

    /// The 32-byte seed.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

/// A verifier key: `<name>+<key ID>+<base64(0x01 ‖ public key)>`.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

#[cfg(not(target_arch = "wasm32"))]
impl VerifierKey {
    /// Parses a verifier key; the key ID must match.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, public) = split_key(text.trim())?;
        if key_id(name, &public) != id {
            return Err(NoteError::MalformedKey("the key ID does not match the key"));
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
            .map_err(|_| NoteError::MalformedKey("not an Ed25519 public key"))?;
        Ok(VerifierKey {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// The key's text form.
    pub fn to_text(&self) -> String {
        verifier_key_text(&self.name, self.key.as_bytes())
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Opens a signed note: its text if a signature line by this key verifies over it.
    /// Signatures by other keys are ignored, as Go's `note.Open` does.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let (text, sigs) = split_note(note)?;
        let mut seen = false;
        for line in sigs.split_terminator('\n') {
            let (name, id, sig) = parse_sig_line(line)?;
            if name != self.name || id != self.id {
                continue;
            }
            seen = true;
            let sig =
                ed25519_dalek::Signature::from_slice(&sig).map_err(|_| NoteError::BadSignature)?;
            self.key
                .verify(text.as_bytes(), &sig)
                .map_err(|_| NoteError::BadSignature)?;
        }
        if seen {
            Ok(text)
        } else {
            Err(NoteError::NotSigned)
        }
    }
}

/// `(text, signature lines)` of a note: split at the last empty line.
pub fn split_note(note: &str) -> Result<(&str, &str), NoteError> {
    let at = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no empty line before the signatures"))?;
    let (text, sigs) = (&note[..at + 1], &note[at + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the signature block must end in a newline",
        ));
    }
    Ok((text, sigs))
}

/// `— <name> <base64(key ID ‖ signature)>` → `(name, key ID, signature bytes)`.
pub fn parse_sig_line(line: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
        "a signature line starts with an em dash",
    ))?;
    let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
        "a signature line is `— <name> <signature>`",
    ))?;
    if !valid_name(name) {
        return Err(NoteError::Malformed("a signature's key name is invalid"));
    }
    let raw = B64
        .decode(b64)
        .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
    if raw.len() < 5 {
        return Err(NoteError::Malformed("a signature is too short"));
    }
    let id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    Ok((name, id, raw[4..].to_vec()))
}

/// A checkpoint: the log's state at one tree size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique name.
    pub origin: String,
    /// The number of leaves (the counter's version).
    pub size: u64,
    /// The tree's root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint body: `<origin>\n<size>\n<base64 root>\n`.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint body (extension lines after the third are allowed and ignored).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        if !text.ends_with('\n') {
            return Err(NoteError::Malformed("a checkpoint ends in a newline"));
        }
        let mut lines = text.split_terminator('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(NoteError::Malformed("no origin line"))?;
        let size = lines
            .next()
            .filter(|s| {
                !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && (s.len() == 1 || !s.starts_with('0'))
            })
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(NoteError::Malformed(
                "the tree size is not a decimal number",
            ))?;
        let root: Hash = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::Malformed("the root is not 32 bytes of base64"))?;
        if lines.any(str::is_empty) {
            return Err(NoteError::Malformed("an empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// Base64 of a hash, as checkpoints and proofs write it.
pub fn encode_hash(h: &Hash) -> String {
    B64.encode(h)
}

/// A hash from base64.
pub fn decode_hash(s: &str) -> Option<Hash> {
    B64.decode(s).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // golang.org/x/mod/sumdb/note/note_test.go
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    #[test]
    fn go_note_key_pair_and_signature() {
        let signer = SigningKey::parse(PETER_SKEY).unwrap();
        assert_eq!(signer.to_text(), PETER_SKEY);
        assert_eq!(signer.verifier().to_text(), PETER_VKEY);
        assert_eq!(signer.name(), "PeterNeumann");
        let signed = signer.sign_note(TEXT);
        assert_eq!(signed, format!("{TEXT}\n{PETER_SIG}"));
        let v = VerifierKey::parse(PETER_VKEY).unwrap();
        assert_eq!(v.open(&signed), Ok(TEXT));
        // Another key's signature is ignored; its own still counts.
        assert_eq!(v.open(&format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}")), Ok(TEXT));
        let enoch = VerifierKey::parse(ENOCH_VKEY).unwrap();
        assert_eq!(
            enoch.open(&format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}")),
            Ok(TEXT)
        );
        assert_eq!(enoch.open(&signed), Err(NoteError::NotSigned));
    }

    #[test]
    fn tampered_notes_and_keys_are_refused() {
        let v = VerifierKey::parse(PETER_VKEY).unwrap();
        let other_text = TEXT.replace("answer", "ANSWER");
        assert_eq!(
            v.open(&format!("{other_text}\n{PETER_SIG}")),
            Err(NoteError::BadSignature)
        );
        let bad_sig = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        assert!(v.open(&format!("{TEXT}\n{bad_sig}")).is_err());
        for bad in [
            TEXT.to_string(),
            format!("{TEXT}\n"),
            format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
            format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
        ] {
            assert!(v.open(&bad).is_err(), "{bad:?}");
        }
        // Every single-byte change of a key is refused (as Go's tests check).
        for key in [PETER_VKEY, PETER_SKEY] {
            let b = key.as_bytes().to_vec();
            for i in 0..b.len() {
                let mut c = b.clone();
                c[i] = c[i].wrapping_add(1);
                let Ok(s) = String::from_utf8(c) else {
                    continue;
                };
                assert!(
                    VerifierKey::parse(&s).is_err() && SigningKey::parse(&s).is_err(),
                    "{s}"
                );
            }
            for cut in 1..b.len() {
                assert!(VerifierKey::parse(&key[..cut]).is_err());
                assert!(SigningKey::parse(&key[..cut]).is_err());
            }
        }
        assert!(VerifierKey::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        .is_err());
        assert!(SigningKey::from_seed("a b", [7; 32]).is_err());
        assert!(SigningKey::from_seed("a+b", [7; 32]).is_err());
    }

    #[test]
    fn the_pure_halves_agree_with_the_signer() {
        let k = SigningKey::parse(PETER_SKEY).unwrap();
        let (name, id, seed) = parse_private_key(PETER_SKEY).unwrap();
        assert_eq!((name, id, seed), ("PeterNeumann", 0xc74f20a3, k.seed()));
        let public = *k.verifier().key.as_bytes();
        assert_eq!(verifier_key_text(name, &public), PETER_VKEY);
        let sig: [u8; 64] = k.key.sign(TEXT.as_bytes()).to_bytes();
        assert_eq!(
            signed_note(TEXT, name, id, &sig),
            format!("{TEXT}\n{PETER_SIG}")
        );
        // RFC 8410's PKCS #8 wrapping: 48 bytes, the seed last.
        let der = pkcs8(&seed);
        assert_eq!(der.len(), 48);
        assert_eq!(&der[16..], &seed);
    }

    #[test]
    fn generated_keys_round_trip() {
        let k = SigningKey::from_seed("ledger.example/log", [42; 32]).unwrap();
        let again = SigningKey::parse(&k.to_text()).unwrap();
        assert_eq!(again.to_text(), k.to_text());
        let v = VerifierKey::parse(&k.verifier().to_text()).unwrap();
        assert_eq!(v, k.verifier());
        let note = k.sign_note("hello\n");
        assert_eq!(v.open(&note), Ok("hello\n"));
        // Deterministic: one size, one signature.
        assert_eq!(k.sign_note("hello\n"), note);
    }

    #[test]
    fn checkpoints() {
        let c = Checkpoint {
            origin: "ledger.example/log".into(),
            size: 12,
            root: [9; 32],
        };
        let text = c.to_text();
        assert_eq!(
            text,
            "ledger.example/log\n12\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n"
        );
        assert_eq!(Checkpoint::parse(&text), Ok(c.clone()));
        assert_eq!(Checkpoint::parse(&format!("{text}ext\n")), Ok(c));
        for bad in [
            "o\n12\nCQkJ\n",
            "o\n012\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "o\n-1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "o\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=",
            "o\n1\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }
}
