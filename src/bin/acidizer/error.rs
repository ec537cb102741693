//! What can go wrong in the command-line tools, and the exit status of each.
//!
//! | status | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | a local I/O error, or an answer from the server that is not what the API describes |
//! | 2–10 | `verify`: the ledger was tampered with (`core::ledger::Tamper::exit_code`) |
//! | 64 | usage: a bad argument |
//! | 65 | refused by the server: a problem+json 4xx answer (nothing was changed) |
//! | 69 | unavailable: no answer, or 5xx/429 answers until the retries ran out |

use std::process::ExitCode;

use number_acidizer::core::ledger::Tamper;

pub const USAGE: u8 = 64;
pub const REFUSED: u8 = 65;
pub const UNAVAILABLE: u8 = 69;

#[derive(Debug)]
pub enum Error {
    /// A bad argument.
    Usage(String),
    /// A local file, or the terminal, or a server answer that makes no sense.
    Io(String),
    /// The server answered with a problem it will answer again: a 4xx.
    Refused {
        status: u16,
        title: String,
        detail: String,
    },
    /// No usable answer: the network failed, or the server kept answering 5xx or 429.
    Unavailable(String),
    /// The verifier found the ledger tampered with.
    Tamper(Tamper),
}

impl From<Tamper> for Error {
    fn from(t: Tamper) -> Self {
        Error::Tamper(t)
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => USAGE,
            Error::Io(_) => 1,
            Error::Refused { .. } => REFUSED,
            Error::Unavailable(_) => UNAVAILABLE,
            Error::Tamper(t) => t.exit_code(),
        }
    }

    /// Prints the error to stderr as `program: …` and returns its exit status.
    pub fn report(&self, program: &str) -> ExitCode {
        match self {
            Error::Usage(why) => {
                eprintln!("{program}: {why}\n(see `{program} --help`)")
            }
            Error::Io(why) => eprintln!("{program}: {why}"),
            Error::Refused {
                status,
                title,
                detail,
            } => eprintln!("{program}: refused ({status}): {title}: {detail}"),
            Error::Unavailable(why) => eprintln!("{program}: unavailable: {why}"),
            Error::Tamper(t) => eprintln!("{program}: TAMPERED ({}): {t}", t.kind()),
        }
        ExitCode::from(self.exit_code())
    }
}

/// Writes one line to stdout. A closed pipe (`acidizer export | head`) ends the program
/// quietly, as it does for any Unix filter.
pub fn emit(line: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Error::Io(format!("stdout: {e}"))),
    }
}

/// Parses the command line; on a usage error prints it and gives exit status 64 (2 is a
/// verifier's "bad signature"), on `--help`/`--version` prints them and gives 0.
pub fn parse<P: clap::Parser>() -> Result<P, ExitCode> {
    P::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(USAGE)
        } else {
            ExitCode::SUCCESS
        }
    })
}
