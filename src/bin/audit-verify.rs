//! `audit-verify`: the ledger verifier under its own name, the same code as `acidizer verify`
//! (src/bin/acidizer/verify.rs), taking the server with `--server`.
//!
//! ```text
//! audit-verify --server http://127.0.0.1:8787 [--key <verifier key> | --unsigned] [--state FILE]
//! audit-verify --export audit.ndjson --checkpoint checkpoint.txt [--key … | --unsigned] [--state FILE]
//! ```
//!
//! Each kind of tampering has its own exit status (`core::ledger::Tamper::exit_code`, 2–10);
//! 64 is a usage error, 1 an I/O error, 65/69 a server that refused or was unavailable.

use std::process::ExitCode;

#[allow(dead_code)]
#[path = "acidizer/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "acidizer/error.rs"]
mod error;
#[allow(dead_code)]
#[path = "acidizer/verify.rs"]
mod verify;

/// Verify the audit ledger of a server or of an export file.
#[derive(clap::Parser)]
#[command(name = "audit-verify", version)]
struct Cli {
    #[command(flatten)]
    args: verify::VerifyArgs,
}

fn main() -> ExitCode {
    let cli: Cli = match error::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match verify::run(&cli.args, None) {
        Ok(done) => {
            println!("{}", done.text());
            ExitCode::SUCCESS
        }
        Err(e) => e.report("audit-verify"),
    }
}
