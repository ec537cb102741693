//! The platform's one error type: what failed in the Worker or an object, with its cause.
//!
//! Each layer has one error type. The pure core answers clients with
//! [`Problem`](crate::core::problem::Problem) and refuses internal calls it cannot decode with
//! [`CallError`]; the platform modules (the edge, the objects, the glue around them) return
//! [`Error`], whose variants say what failed and keep what caused it: the value JavaScript
//! threw, R2's error, the call that did not decode. An error reaches a client only as a
//! problem, converted in one place ([`Error::problem`], then `http::problem_response`), with
//! its cause logged ([`Error::logged`]), never sent.
//!
//! JavaScript values stay at the boundary (`ffi.rs`, the callbacks and promises handed to the
//! runtime, the objects' exported methods): a JavaScript error enters as [`Thrown`] with what
//! was being done ([`Context`]), and an [`Error`] leaves as a thrown value (`From<Error> for
//! JsValue`), the original one when it came from JavaScript.

use std::fmt;

use wasm_bindgen::JsValue;

use crate::core::problem::Problem;
use crate::core::wire::CallError;
use crate::ffi::error_text;

/// A platform result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What failed, by where it failed.
#[derive(Debug)]
pub enum Error {
    /// An SQL statement, a transaction or a storage call of a Durable Object threw.
    Storage { what: &'static str, cause: Thrown },
    /// A schema migration failed; its transaction was rolled back.
    Migration {
        version: u32,
        name: &'static str,
        cause: Box<Error>,
    },
    /// The database is at a schema newer than this release, which leaves it alone.
    NewerSchema { found: u32, latest: u32 },
    /// Stored rows that are not what this release writes: what is wrong with them.
    Corrupt(String),
    /// A call to the archive's bucket failed.
    R2 {
        op: &'static str,
        key: String,
        cause: worker::Error,
    },
    /// The archive in R2 is not what the counter's records say (a segment missing, or bytes
    /// that fail their checks): what is wrong.
    Archive(String),
    /// A binding the code needs is not configured: its name.
    Unbound(&'static str),
    /// `AUDIT_SIGNING_KEY` cannot be used: why.
    Key(String),
    /// An internal call (a URL, a batch or its answer) that does not decode.
    Call(CallError),
    /// Another object (the counter, a relay) answered with something this side cannot use.
    Answer(String),
    /// A runtime or JavaScript call threw.
    Js { what: &'static str, cause: Thrown },
    /// A step already decided what the client is told.
    Problem(Problem),
    /// Something this code relies on did not hold (a bug): what.
    Invariant(&'static str),
}

impl Error {
    /// What a client is told of this error: the problem a step decided, and otherwise an
    /// internal error (the cause is for the log, not for the client).
    pub fn problem(&self) -> Problem {
        match self {
            Error::Problem(p) => p.clone(),
            Error::Call(e) => e.problem(),
            _ => Problem::Internal,
        }
    }

    /// Logs this error as an `error` event `msg` with its cause in the field `error`, and
    /// returns what the client is told ([`Error::problem`]).
    pub fn logged(&self, msg: &str) -> Problem {
        self.log(msg);
        self.problem()
    }

    /// Logs this error as an `error` event `msg` with its cause in the field `error`.
    pub fn log(&self, msg: &str) {
        crate::log::log_event("error", msg, |w| {
            w.string("error", &self.to_string());
        });
    }

    /// This error as a value to throw, leaving it in place: what JavaScript threw when it
    /// came from there, else an `Error` with this message.
    pub fn to_js(&self) -> JsValue {
        match self {
            Error::Storage { cause, .. } | Error::Js { cause, .. } => cause.0.clone(),
            other => js_sys::Error::new(&other.to_string()).into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Storage { what, cause } | Error::Js { what, cause } => {
                write!(f, "{what}: {cause}")
            }
            Error::Migration {
                version,
                name,
                cause,
            } => write!(f, "migration {version} ({name}) failed: {cause}"),
            Error::NewerSchema { found, latest } => write!(
                f,
                "the database is at schema {found}, newer than this release ({latest}); refusing to touch it"
            ),
            Error::Corrupt(why) | Error::Archive(why) | Error::Key(why) | Error::Answer(why) => {
                f.write_str(why)
            }
            Error::R2 { op, key, cause } => write!(f, "R2 {op} of {key} failed: {cause}"),
            Error::Unbound(name) => write!(f, "the binding {name} is missing"),
            Error::Call(e) => e.fmt(f),
            Error::Problem(p) => p.fmt(f),
            Error::Invariant(what) => write!(f, "a broken invariant: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Storage { cause, .. } | Error::Js { cause, .. } => Some(cause),
            Error::Migration { cause, .. } => Some(cause.as_ref()),
            Error::R2 { cause, .. } => Some(cause),
            // Shown as the error itself: its own cause, if any, comes next.
            Error::Call(e) => e.source(),
            _ => None,
        }
    }
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        Error::Call(e)
    }
}

impl From<Problem> for Error {
    fn from(p: Problem) -> Self {
        Error::Problem(p)
    }
}

/// An error leaving for JavaScript (a rejected promise, an exception of an exported method):
/// the value JavaScript threw when it came from there, else an `Error` with this message.
impl From<Error> for JsValue {
    fn from(e: Error) -> Self {
        match e {
            Error::Storage { cause, .. } | Error::Js { cause, .. } => cause.0,
            other => other.to_js(),
        }
    }
}

/// A value JavaScript threw, kept as it was; shown as its message.
#[derive(Debug)]
pub struct Thrown(pub JsValue);

impl fmt::Display for Thrown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&error_text(&self.0))
    }
}

impl std::error::Error for Thrown {}

/// What was being done when a JavaScript call threw, for its error: `.js("…")?` on the result
/// of a runtime call, `.storage("…")?` on a storage call's (SQL or not).
pub trait Context<T> {
    /// A runtime call threw: [`Error::Js`].
    fn js(self, what: &'static str) -> Result<T>;
    /// A storage call threw: [`Error::Storage`].
    fn storage(self, what: &'static str) -> Result<T>;
}

impl<T, E: Into<JsValue>> Context<T> for std::result::Result<T, E> {
    fn js(self, what: &'static str) -> Result<T> {
        self.map_err(|e| Error::Js {
            what,
            cause: Thrown(e.into()),
        })
    }

    fn storage(self, what: &'static str) -> Result<T> {
        self.map_err(|e| Error::Storage {
            what,
            cause: Thrown(e.into()),
        })
    }
}
