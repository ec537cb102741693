//! Makes a checkpoint signing key pair for the audit ledger.
//!
//! `cargo run --bin audit-keygen -- <name>` prints two lines: the signing key (the value of
//! the `AUDIT_SIGNING_KEY` secret: `PRIVATE+KEY+<name>+<key ID>+<base64>`) and its verifier
//! key (`<name>+<key ID>+<base64>`, what `GET /api/audit/key` serves and `audit-verify --key`
//! takes). The name is the log's origin: use something unique, e.g. `acidizer.example.com/log`.
//! Both are Go `golang.org/x/mod/sumdb/note` keys.

use std::io::Read;
use std::process::ExitCode;

use number_acidizer::core::checkpoint::SigningKey;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name] = args.as_slice() else {
        eprintln!("usage: audit-keygen <name>   (e.g. acidizer.example.com/log)");
        return ExitCode::from(64);
    };
    let mut seed = [0u8; 32];
    if let Err(e) = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed)) {
        eprintln!("audit-keygen: no randomness: {e}");
        return ExitCode::FAILURE;
    }
    let key = match SigningKey::from_seed(name, seed) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("audit-keygen: {e} (a name has no spaces and no +)");
            return ExitCode::from(64);
        }
    };
    println!("{}", key.to_text());
    println!("{}", key.verifier().to_text());
    eprintln!(
        "line 1: the secret (npx wrangler secret put AUDIT_SIGNING_KEY); line 2: the verifier key to publish"
    );
    ExitCode::SUCCESS
}
