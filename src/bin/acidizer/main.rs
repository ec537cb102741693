//! `acidizer`: the command-line client of a Number Acidizer server.
//!
//! ```text
//! acidizer [--url URL] [--json] value
//! acidizer [--url URL] [--json] increment [--amount N] [--key K]
//! acidizer [--url URL] [--json] decrement [--amount N] [--key K]
//! acidizer [--url URL] [--json] watch [--since VERSION]
//! acidizer [--url URL] [--json] audit [--after N] [--limit N] [--all]
//! acidizer [--url URL] export [--format ndjson|csv] [--after N] [--until N] [--checkpoint FILE]
//! acidizer [--url URL] [--json] verify (--key VERIFIER_KEY | --unsigned) [--state FILE]
//!                                      [--export FILE --checkpoint FILE]
//! acidizer [--json] keygen NAME
//! ```
//!
//! `--json` prints the API's JSON bodies, one per line, instead of text. A change carries an
//! idempotency key (a random UUID v4 unless `--key`) and is sent again with the same key after
//! a network error, a 5xx or a 429, so it is applied once however many times it is sent.
//! Exit statuses: see `error.rs`.

mod client;
mod error;
mod keygen;
mod render;
mod verify;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

use client::Client;
use error::{emit, Error};

#[derive(Parser, Debug)]
#[command(
    name = "acidizer",
    version,
    about = "The command-line client of a Number Acidizer server: read, change, watch and audit the counter.",
    after_help = "Exit status: 0 done; 1 local I/O error or an answer the API does not describe; \
                  2-10 verify found tampering; 64 usage; 65 refused by the server (a 4xx problem, \
                  nothing changed); 69 server unavailable (network errors, 5xx or 429 after retries)."
)]
struct Cli {
    /// The server's base URL.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8787")]
    url: String,
    /// Print the API's JSON bodies, one per line, instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the counter's value and version.
    Value,
    /// Add to the counter, exactly once.
    Increment(ChangeArgs),
    /// Subtract from the counter, exactly once.
    Decrement(ChangeArgs),
    /// Print the value, then every change live, until interrupted; reconnects without a gap.
    Watch {
        /// Start after this version (the changes since it first), instead of a snapshot.
        #[arg(long, value_name = "VERSION")]
        since: Option<u64>,
    },
    /// Print the audit trail: one page, or every page with --all.
    Audit {
        /// Entries with a version greater than this.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Entries per page (the server's default is 100, its maximum 1000).
        #[arg(long)]
        limit: Option<u32>,
        /// Follow the pages to the end of the trail.
        #[arg(long)]
        all: bool,
    },
    /// Stream the audit export to stdout (NDJSON: each line an entry's Merkle leaf bytes).
    Export {
        #[arg(long, value_enum, default_value_t = Format::Ndjson)]
        format: Format,
        /// Entries with a version greater than this.
        #[arg(long)]
        after: Option<u64>,
        /// Up to and including this version (default: the tree size when the export starts).
        #[arg(long)]
        until: Option<u64>,
        /// Save the export's checkpoint note (its `Audit-Checkpoint`) to FILE, for
        /// `verify --export … --checkpoint FILE`.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<String>,
    },
    /// Verify the audit ledger of the server at --url (or of an export file).
    Verify(verify::VerifyArgs),
    /// Make a checkpoint signing key pair: the secret, then the verifier key to publish.
    Keygen {
        /// The log's origin, e.g. acidizer.example.com/log (no spaces, no +).
        name: String,
    },
}

#[derive(clap::Args, Debug)]
struct ChangeArgs {
    /// By how much (the server takes 1 to 1000000).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    amount: i64,
    /// The idempotency key: the same key and amount are applied once, however often sent.
    /// Default: a random UUID.
    #[arg(long)]
    key: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Ndjson,
    Csv,
}

fn main() -> ExitCode {
    let cli: Cli = match error::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report("acidizer"),
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    let json = cli.json;
    match cli.command {
        Command::Keygen { name } => {
            let (secret, verifier) = keygen::generate(&name)?;
            if json {
                emit(&json!({"signing_key": secret, "verifier_key": verifier}).to_string())
            } else {
                emit(&secret)?;
                emit(&verifier)?;
                eprintln!("{}", keygen::HINT);
                Ok(())
            }
        }
        Command::Verify(args) => {
            let done = verify::run(&args, Some(&cli.url))?;
            emit(&if json { done.json() } else { done.text() })
        }
        command => {
            let client = Client::new(&cli.url)?;
            match command {
                Command::Value => {
                    let v = client.get("/api/value")?.json("value")?;
                    emit(&if json {
                        v.to_string()
                    } else {
                        render::value(&v)
                    })
                }
                Command::Increment(a) => change(&client, "increment", a, json),
                Command::Decrement(a) => change(&client, "decrement", a, json),
                Command::Watch { since } => watch::run(&client, since, json),
                Command::Audit { after, limit, all } => audit(&client, after, limit, all, json),
                Command::Export {
                    format,
                    after,
                    until,
                    checkpoint,
                } => export(&client, format, after, until, checkpoint.as_deref()),
                Command::Keygen { .. } | Command::Verify(_) => unreachable!("handled above"),
            }
        }
    }
}

/// `POST /api/increment` or `/api/decrement` with an idempotency key, retried with that key.
fn change(client: &Client, op: &str, a: ChangeArgs, json: bool) -> Result<(), Error> {
    let key = a.key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let body = json!({ "amount": a.amount }).to_string();
    let answer = client
        .post_json(&format!("/api/{op}"), &[("idempotency-key", &key)], &body)
        .map_err(|e| match e {
            Error::Unavailable(why) => Error::Unavailable(format!(
                "{why}\nwhether the {op} was applied is unknown: run the same command with \
                 --key {key} to find out; it is applied at most once"
            )),
            e => e,
        })?;
    let replayed = answer
        .header("idempotent-replayed")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let v = answer.json(op)?;
    if json {
        if replayed {
            eprintln!(
                "replayed: a request with key {key} was already applied; nothing changed now"
            );
        }
        emit(&v.to_string())
    } else {
        emit(&render::change(&v, &key, replayed))
    }
}

/// `GET /api/audit`: one page, or all of them from `after` on.
fn audit(
    client: &Client,
    mut after: u64,
    limit: Option<u32>,
    all: bool,
    json: bool,
) -> Result<(), Error> {
    loop {
        let mut path = format!("/api/audit?after={after}");
        if let Some(n) = limit {
            path.push_str(&format!("&limit={n}"));
        }
        let page = client.get(&path)?.json("audit page")?;
        let Some(entries) = page.get("entries").and_then(Value::as_array) else {
            return Err(Error::Io(format!("audit page: no entries: {page}")));
        };
        if json {
            emit(&page.to_string())?;
        } else {
            for e in entries {
                emit(&render::entry(e))?;
            }
        }
        let next = page.get("next_after").and_then(Value::as_u64);
        match next {
            // A next page that does not move on would loop forever.
            Some(n) if all && n > after => after = n,
            Some(n) if !all => {
                if !json {
                    eprintln!("more: acidizer audit --after {n} (or --all)");
                }
                return Ok(());
            }
            Some(n) => {
                return Err(Error::Io(format!(
                    "audit page after {after} points back to {n}"
                )))
            }
            None => return Ok(()),
        }
    }
}

/// `GET /api/audit/export`, streamed to stdout.
fn export(
    client: &Client,
    format: Format,
    after: Option<u64>,
    until: Option<u64>,
    checkpoint: Option<&str>,
) -> Result<(), Error> {
    let mut query = vec![format!(
        "format={}",
        match format {
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
        }
    )];
    if let Some(a) = after {
        query.push(format!("after={a}"));
    }
    if let Some(u) = until {
        query.push(format!("until={u}"));
    }
    let path = format!("/api/audit/export?{}", query.join("&"));
    client.stream(&path, |headers, body| {
        if let Some(file) = checkpoint {
            use base64::Engine;
            let header = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("audit-checkpoint"))
                .map(|(_, v)| v.trim())
                .ok_or_else(|| Error::Io("the export has no Audit-Checkpoint header".into()))?;
            let note = base64::engine::general_purpose::STANDARD
                .decode(header)
                .map_err(|e| Error::Io(format!("Audit-Checkpoint is not base64: {e}")))?;
            std::fs::write(file, note).map_err(|e| Error::Io(format!("{file}: {e}")))?;
        }
        let mut out = std::io::stdout().lock();
        match std::io::copy(body, &mut out).and_then(|_| std::io::Write::flush(&mut out)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            Err(e) => Err(Error::Io(format!("export: {e}"))),
        }
    })
}
