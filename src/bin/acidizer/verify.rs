//! The offline verifier of the audit ledger (`acidizer verify`, also built as `audit-verify`):
//! anyone can run it against a live server or an export file, with the pure core's own code
//! (`core::merkle`, `core::checkpoint`, `core::ledger`).
//!
//! It checks the checkpoint's signature; that every entry is canonical (export lines), that
//! versions run 1..N without a gap, that each `previous_value` is the prior `value` and each
//! `value` follows from its operation; that the root over all N entries is the checkpoint's;
//! and, with `--state`, that the checkpoint extends the one saved there by the last
//! successful run (a consistency proof from the server, and the root of the replayed prefix).
//! On success it saves the new checkpoint to the state file. Each kind of tampering has its
//! own message and exit status (`core::ledger::Tamper::exit_code`); see `error.rs` for the
//! others.

use std::io::{BufRead, BufReader};

use number_acidizer::core::checkpoint::{self, Checkpoint, VerifierKey};
use number_acidizer::core::ledger::{self, Auditor, Tamper};
use number_acidizer::core::merkle::Hash;
use serde_json::json;

use crate::client::Client;
use crate::error::Error;

/// What to verify, and against which key.
#[derive(clap::Args, Debug, Default)]
pub struct VerifyArgs {
    /// Verify the live server at URL (the default with `acidizer`: its `--url`).
    #[arg(long, value_name = "URL", conflicts_with_all = ["export", "checkpoint"])]
    pub server: Option<String>,
    /// Verify an NDJSON export file (`acidizer export`) instead of a server...
    #[arg(long, value_name = "FILE", requires = "checkpoint")]
    pub export: Option<String>,
    /// ...against this checkpoint note (the export's `Audit-Checkpoint`).
    #[arg(long, value_name = "FILE", requires = "export")]
    pub checkpoint: Option<String>,
    /// The log's verifier key (`GET /api/audit/key`): the checkpoint's signature must verify.
    #[arg(
        long,
        value_name = "VERIFIER_KEY",
        required_unless_present = "unsigned"
    )]
    pub key: Option<String>,
    /// Do not check the checkpoint's signature (a log without a signing key).
    #[arg(long, conflicts_with = "key")]
    pub unsigned: bool,
    /// Keep the last verified checkpoint here, and require the next one to extend it.
    #[arg(long, value_name = "FILE")]
    pub state: Option<String>,
}

/// What a successful run found.
pub struct Verified {
    entries: u64,
    value: i64,
    root: String,
    signed: bool,
    extends: Option<u64>,
}

impl Verified {
    pub fn text(&self) -> String {
        format!(
            "ok: {} entries, versions 1..{} without a gap, value {}, root {} ({}){}",
            self.entries,
            self.entries,
            self.value,
            self.root,
            if self.signed {
                "signature verified"
            } else {
                "signature not checked"
            },
            match self.extends {
                Some(size) => format!(", extends the saved checkpoint of size {size}"),
                None => String::new(),
            }
        )
    }

    pub fn json(&self) -> String {
        json!({
            "ok": true,
            "entries": self.entries,
            "value": self.value,
            "root": self.root,
            "signature_verified": self.signed,
            "extends": self.extends,
        })
        .to_string()
    }
}

/// Where the entries come from.
enum Source<'a> {
    Server(&'a Client),
    Export(&'a str),
}

/// Verifies; `default_server` is the server when neither `--server` nor `--export` is given.
pub fn run(args: &VerifyArgs, default_server: Option<&str>) -> Result<Verified, Error> {
    if args.key.is_some() == args.unsigned {
        return Err(Error::Usage("give --key or --unsigned".into()));
    }
    let client = match (args.server.as_deref(), &args.export, default_server) {
        (Some(url), None, _) | (None, None, Some(url)) => {
            let mut c = Client::new(url)?;
            c.quiet = true;
            Some(c)
        }
        (None, Some(_), _) if args.checkpoint.is_some() => None,
        _ => {
            return Err(Error::Usage(
                "give --server, or --export with --checkpoint".into(),
            ))
        }
    };
    let source = match (&client, &args.export) {
        (Some(c), _) => Source::Server(c),
        (None, Some(path)) => Source::Export(path),
        (None, None) => unreachable!("checked above"),
    };
    let note = match (&source, &args.checkpoint) {
        (Source::Server(c), _) => c.get("/api/audit/checkpoint")?.body,
        (Source::Export(_), Some(path)) => {
            std::fs::read_to_string(path).map_err(|e| Error::Io(format!("{path}: {e}")))?
        }
        (Source::Export(_), None) => unreachable!("checked above"),
    };
    let cp = open_checkpoint(&note, args)?;
    let saved = load_state(args)?;
    if let Some(s) = &saved {
        if s.size > cp.size {
            return Err(Tamper::RolledBack {
                saved: s.size,
                size: cp.size,
            }
            .into());
        }
        // What a client without the history checks: the log's own consistency proof.
        if let Source::Server(c) = &source {
            if s.size > 0 && s.size < cp.size {
                let v = c
                    .get(&format!(
                        "/api/audit/proof/consistency?from={}&to={}",
                        s.size, cp.size
                    ))?
                    .json("consistency proof")?;
                let proof = ledger::parse_hashes(&v)
                    .ok_or_else(|| Error::Io("consistency proof: no hashes".into()))?;
                ledger::check_saved(s, &cp, &proof)?;
            }
        }
    }
    let (auditor, prefix_root) = replay(&source, &cp, saved.as_ref().map(|s| s.size))?;
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
        std::fs::write(path, cp.to_text()).map_err(|e| Error::Io(format!("{path}: {e}")))?;
    }
    Ok(Verified {
        entries: auditor.size(),
        value: auditor.value(),
        root: checkpoint::encode_hash(&cp.root),
        signed: !args.unsigned,
        extends: saved.map(|s| s.size),
    })
}

/// The checkpoint from a note: verified with the key, or taken as it is with `--unsigned`.
fn open_checkpoint(note: &str, args: &VerifyArgs) -> Result<Checkpoint, Error> {
    let text = match &args.key {
        Some(k) => {
            let key = VerifierKey::parse(k).map_err(|e| Error::Usage(format!("--key: {e}")))?;
            key.open(note)
                .map_err(|e| Tamper::BadSignature(e.to_string()))?
                .to_owned()
        }
        None => match checkpoint::split_note(note) {
            Ok((text, _)) => text.to_owned(),
            Err(_) => note.to_owned(),
        },
    };
    Checkpoint::parse(&text).map_err(|e| Error::Io(format!("checkpoint: {e}")))
}

/// The saved checkpoint, if there is a state file.
fn load_state(args: &VerifyArgs) -> Result<Option<Checkpoint>, Error> {
    let Some(path) = &args.state else {
        return Ok(None);
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Checkpoint::parse(&text)
            .map(Some)
            .map_err(|e| Error::Io(format!("state file {path}: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io(format!("state file {path}: {e}"))),
    }
}

/// Replays every entry, remembering the root at `saved_size` on the way.
fn replay(
    source: &Source,
    cp: &Checkpoint,
    saved_size: Option<u64>,
) -> Result<(Auditor, Option<Hash>), Error> {
    let mut auditor = Auditor::new();
    let mut prefix_root = None;
    let mut note = |a: &Auditor| {
        if Some(a.size()) == saved_size {
            prefix_root = Some(a.root());
        }
    };
    note(&auditor);
    match source {
        Source::Server(client) => {
            while auditor.size() < cp.size {
                let page = client
                    .get(&format!("/api/audit?after={}&limit=1000", auditor.size()))?
                    .json("audit page")?;
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
        }
        Source::Export(path) => {
            let file = std::fs::File::open(path).map_err(|e| Error::Io(format!("{path}: {e}")))?;
            for line in BufReader::new(file).split(b'\n') {
                let line = line.map_err(|e| Error::Io(format!("{path}: {e}")))?;
                let text = String::from_utf8(line).map_err(|_| Tamper::NotCanonical {
                    line: auditor.size() + 1,
                    why: "not UTF-8".into(),
                })?;
                auditor.push_line(&text)?;
                note(&auditor);
            }
        }
    }
    auditor.finish(cp)?;
    Ok((auditor, prefix_root))
}
