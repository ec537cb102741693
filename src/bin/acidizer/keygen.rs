//! Makes a checkpoint signing key pair for the audit ledger (`acidizer keygen`, also built as
//! `audit-keygen`).
//!
//! The signing key is the value of the `AUDIT_SIGNING_KEY` secret,
//! `PRIVATE+KEY+<name>+<key ID>+<base64>`; its verifier key, `<name>+<key ID>+<base64>`, is what
//! `GET /api/audit/key` serves and `verify --key` takes. The name is the log's origin: use
//! something unique, e.g. `acidizer.example.com/log`. Both are Go
//! `golang.org/x/mod/sumdb/note` keys.

use std::io::Read;

use number_acidizer::core::checkpoint::SigningKey;

use crate::error::Error;

/// The hint printed to stderr after the two lines.
pub const HINT: &str = "line 1: the secret (npx wrangler secret put AUDIT_SIGNING_KEY); line 2: the verifier key to publish";

/// A fresh key pair named `name`: (signing key, verifier key), as text.
pub fn generate(name: &str) -> Result<(String, String), Error> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| Error::Io(format!("no randomness: {e}")))?;
    let key = SigningKey::from_seed(name, seed)
        .map_err(|e| Error::Usage(format!("{e} (a name has no spaces and no +)")))?;
    Ok((key.to_text(), key.verifier().to_text()))
}
