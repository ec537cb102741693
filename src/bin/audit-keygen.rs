//! `audit-keygen <name>`: `acidizer keygen` under its own name (src/bin/acidizer/keygen.rs).
//! Prints the signing key (the `AUDIT_SIGNING_KEY` secret), then its verifier key.

use std::process::ExitCode;

#[allow(dead_code)]
#[path = "acidizer/error.rs"]
mod error;
#[path = "acidizer/keygen.rs"]
mod keygen;

/// Make a checkpoint signing key pair: the secret, then the verifier key to publish.
#[derive(clap::Parser)]
#[command(name = "audit-keygen", version)]
struct Cli {
    /// The log's origin, e.g. acidizer.example.com/log (no spaces, no +).
    name: String,
}

fn main() -> ExitCode {
    let cli: Cli = match error::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match keygen::generate(&cli.name) {
        Ok((secret, verifier)) => {
            println!("{secret}\n{verifier}");
            eprintln!("{}", keygen::HINT);
            ExitCode::SUCCESS
        }
        Err(e) => e.report("audit-keygen"),
    }
}
