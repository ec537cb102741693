//! The offline verifier of the audit ledger: anyone can run it against a live server or an
//! export file, with the pure core's own code (`core::merkle`, `core::checkpoint`,
//! `core::ledger`).
//!
//! ```text
//! audit-verify --server http://127.0.0.1:8787 [--key <verifier key> | --unsigned] [--state FILE]
//! audit-verify --export audit.ndjson --checkpoint checkpoint.txt [--key … | --unsigned] [--state FILE]
//! ```
//!
//! It checks the checkpoint's signature; that every entry is canonical (export lines), that
//! versions run 1..N without a gap, that each `previous_value` is the prior `value` and each
//! `value` follows from its operation; that the root over all N entries is the checkpoint's;
//! and, with `--state`, that the checkpoint extends the one saved there by the last
//! successful run (a consistency proof from the server, and the root of the replayed prefix).
//! On success it saves the new checkpoint to the state file. Each kind of tampering has its
//! own message and exit status (`core::ledger::Tamper::exit_code`); 1 is a usage or I/O error.

use std::io::{BufRead, BufReader};
use std::process::ExitCode;

use number_acidizer::core::checkpoint::{self, Checkpoint, VerifierKey};
use number_acidizer::core::ledger::{self, Auditor, Tamper};
use number_acidizer::core::merkle::Hash;

const USAGE: &str = "usage: audit-verify (--server URL | --export FILE --checkpoint FILE) (--key VERIFIER_KEY | --unsigned) [--state FILE]";

enum Failure {
    Usage(String),
    Io(String),
    Tamper(Tamper),
}

impl From<Tamper> for Failure {
    fn from(t: Tamper) -> Self {
        Failure::Tamper(t)
    }
}

#[derive(Default)]
struct Args {
    server: Option<String>,
    export: Option<String>,
    checkpoint: Option<String>,
    key: Option<String>,
    unsigned: bool,
    state: Option<String>,
}

fn parse_args() -> Result<Args, Failure> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| Failure::Usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--server" => a.server = Some(value()?.trim_end_matches('/').to_owned()),
            "--export" => a.export = Some(value()?),
            "--checkpoint" => a.checkpoint = Some(value()?),
            "--key" => a.key = Some(value()?),
            "--state" => a.state = Some(value()?),
            "--unsigned" => a.unsigned = true,
            other => return Err(Failure::Usage(format!("unknown argument {other}"))),
        }
    }
    let sources = (
        a.server.is_some(),
        a.export.is_some(),
        a.checkpoint.is_some(),
    );
    if !matches!(sources, (true, false, false) | (false, true, true)) {
        return Err(Failure::Usage(
            "give --server, or --export with --checkpoint".into(),
        ));
    }
    if a.key.is_some() == a.unsigned {
        return Err(Failure::Usage("give --key or --unsigned".into()));
    }
    Ok(a)
}

fn get(server: &str, path: &str) -> Result<String, Failure> {
    let url = format!("{server}{path}");
    ureq::get(&url)
        .call()
        .map_err(|e| Failure::Io(format!("GET {url}: {e}")))?
        .into_body()
        .read_to_string()
        .map_err(|e| Failure::Io(format!("GET {url}: {e}")))
}

/// The checkpoint from a note: verified with the key, or taken as it is with `--unsigned`.
fn open_checkpoint(note: &str, args: &Args) -> Result<Checkpoint, Failure> {
    let text = match &args.key {
        Some(k) => {
            let key = VerifierKey::parse(k).map_err(|e| Failure::Usage(format!("--key: {e}")))?;
            key.open(note)
                .map_err(|e| Tamper::BadSignature(e.to_string()))?
                .to_owned()
        }
        None => match checkpoint::split_note(note) {
            Ok((text, _)) => text.to_owned(),
            Err(_) => note.to_owned(),
        },
    };
    Checkpoint::parse(&text).map_err(|e| Failure::Io(format!("checkpoint: {e}")))
}

/// The saved checkpoint, if there is a state file.
fn load_state(args: &Args) -> Result<Option<Checkpoint>, Failure> {
    let Some(path) = &args.state else {
        return Ok(None);
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Checkpoint::parse(&text)
            .map(Some)
            .map_err(|e| Failure::Io(format!("state file {path}: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::Io(format!("state file {path}: {e}"))),
    }
}

/// Replays every entry, remembering the root at `saved_size` on the way.
fn replay(
    args: &Args,
    cp: &Checkpoint,
    saved_size: Option<u64>,
) -> Result<(Auditor, Option<Hash>), Failure> {
    let mut auditor = Auditor::new();
    let mut prefix_root = None;
    let mut note = |a: &Auditor| {
        if Some(a.size()) == saved_size {
            prefix_root = Some(a.root());
        }
    };
    note(&auditor);
    if let Some(server) = &args.server {
        while auditor.size() < cp.size {
            let page = get(
                server,
                &format!("/api/audit?after={}&limit=1000", auditor.size()),
            )?;
            let page: serde_json::Value =
                serde_json::from_str(&page).map_err(|e| Failure::Io(format!("audit page: {e}")))?;
            let entries = page["entries"].as_array().cloned().unwrap_or_default();
            if entries.is_empty() {
                break;
            }
            for v in &entries {
                if auditor.size() == cp.size {
                    break;
                }
                let entry = ledger::entry_from_json(v).ok_or_else(|| Tamper::NotCanonical {
                    line: auditor.size() + 1,
                    why: format!("not an audit entry: {v}"),
                })?;
                auditor.push(&entry)?;
                note(&auditor);
            }
        }
    } else if let Some(path) = &args.export {
        let file = std::fs::File::open(path).map_err(|e| Failure::Io(format!("{path}: {e}")))?;
        for line in BufReader::new(file).split(b'\n') {
            let line = line.map_err(|e| Failure::Io(format!("{path}: {e}")))?;
            let text = String::from_utf8(line).map_err(|_| Tamper::NotCanonical {
                line: auditor.size() + 1,
                why: "not UTF-8".into(),
            })?;
            auditor.push_line(&text)?;
            note(&auditor);
        }
    }
    auditor.finish(cp)?;
    Ok((auditor, prefix_root))
}

fn run() -> Result<String, Failure> {
    let args = parse_args()?;
    let note = match (&args.server, &args.checkpoint) {
        (Some(server), _) => get(server, "/api/audit/checkpoint")?,
        (None, Some(path)) => {
            std::fs::read_to_string(path).map_err(|e| Failure::Io(format!("{path}: {e}")))?
        }
        _ => return Err(Failure::Usage(USAGE.into())),
    };
    let cp = open_checkpoint(&note, &args)?;
    let saved = load_state(&args)?;
    if let Some(s) = &saved {
        if s.size > cp.size {
            return Err(Tamper::RolledBack {
                saved: s.size,
                size: cp.size,
            }
            .into());
        }
        // What a client without the history checks: the log's own consistency proof.
        if let Some(server) = &args.server {
            if s.size > 0 && s.size < cp.size {
                let body = get(
                    server,
                    &format!(
                        "/api/audit/proof/consistency?from={}&to={}",
                        s.size, cp.size
                    ),
                )?;
                let v: serde_json::Value = serde_json::from_str(&body)
                    .map_err(|e| Failure::Io(format!("consistency proof: {e}")))?;
                let proof = ledger::parse_hashes(&v)
                    .ok_or_else(|| Failure::Io("consistency proof: no hashes".into()))?;
                ledger::check_saved(s, &cp, &proof)?;
            }
        }
    }
    let (auditor, prefix_root) = replay(&args, &cp, saved.as_ref().map(|s| s.size))?;
    // And what the history itself says: its prefix must hash to the saved root.
    if let Some(s) = &saved {
        if prefix_root != Some(s.root) {
            return Err(Tamper::Inconsistent {
                saved: s.size,
                size: cp.size,
            }
            .into());
        }
    }
    if let Some(path) = &args.state {
        std::fs::write(path, cp.to_text()).map_err(|e| Failure::Io(format!("{path}: {e}")))?;
    }
    Ok(format!(
        "ok: {} entries, versions 1..{} without a gap, value {}, root {} ({}){}",
        auditor.size(),
        auditor.size(),
        auditor.value(),
        checkpoint::encode_hash(&cp.root),
        if args.unsigned {
            "signature not checked"
        } else {
            "signature verified"
        },
        match &saved {
            Some(s) => format!(", extends the saved checkpoint of size {}", s.size),
            None => String::new(),
        }
    ))
}

fn main() -> ExitCode {
    match run() {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(why)) => {
            eprintln!("audit-verify: {why}\n{USAGE}");
            ExitCode::from(64)
        }
        Err(Failure::Io(why)) => {
            eprintln!("audit-verify: {why}");
            ExitCode::FAILURE
        }
        Err(Failure::Tamper(t)) => {
            eprintln!("audit-verify: TAMPERED ({}): {t}", t.kind());
            ExitCode::from(t.exit_code())
        }
    }
}
