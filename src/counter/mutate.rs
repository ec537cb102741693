//! The mutation path: one change alone, or many in one call (group commit), each through the
//! same step (rate limit, the rule, the commit), and the answer for a key seen before.

use web_sys::Response;

use crate::core::audit::AuditEntry;
use crate::core::batch::{self, Call, Reply};
use crate::core::command::Mutation;
use crate::core::idempotency::{self, Seen};
use crate::core::problem::Problem;
use crate::core::state::Snapshot;
use crate::core::time::rfc3339_millis;
use crate::core::vocab::Operation;
use crate::error::Result;
use crate::http::{self, now_ms};
use crate::log::log_event;
use crate::sockets;

use super::Counter;

/// What one mutation's [`Counter::step`] came to.
enum Step {
    /// Committed: the caller adopts the state after it and broadcasts it.
    Applied(AuditEntry),
    /// Nothing changed: a replay, or a refusal.
    Answered(Reply),
}

impl Counter {
    /// One mutation sent alone: [`Counter::step`], then adopt, broadcast and answer.
    pub(super) fn mutate(
        &self,
        current: &Snapshot,
        m: &Mutation,
        client: &str,
    ) -> Result<Response> {
        self.sizes.borrow_mut().record(1);
        http::reply_response(&self.mutate_alone(current, m, client))
    }

    /// [`Counter::mutate`]'s answer as a [`Reply`] (the same bytes whichever way it leaves).
    fn mutate_alone(&self, current: &Snapshot, m: &Mutation, client: &str) -> Reply {
        match self.step(current, m, client, now_ms()) {
            Step::Applied(entry) => {
                *self.current.borrow_mut() = Ok(Snapshot::after(&entry));
                sockets::broadcast(&self.state, &entry.update_message());
                Reply::applied(&entry)
            }
            Step::Answered(reply) => reply,
        }
    }

    /// One mutation, the same whether it came alone or in a batch: its rate-limit decision,
    /// the rule (precondition, range, new version) against `current`, and the commit of the
    /// counter row and its audit entry (the key's record) in one `transactionSync`, which is
    /// a savepoint when a batch's transaction is open. A commit that fails rolls back this
    /// mutation's writes only. On success the entry is committed (or, in a batch, released
    /// into the batch's transaction) and the client's change is counted; the caller adopts
    /// the new state and broadcasts.
    fn step(&self, current: &Snapshot, m: &Mutation, client: &str, now: i64) -> Step {
        // Admin changes are authenticated operator actions and not limited.
        let limited = matches!(m.op, Operation::Increment | Operation::Decrement);
        if limited {
            if let Err(retry_after_secs) = self.limiter.borrow_mut().check(client, now) {
                // A retry of a change applied earlier is still answered: replays are free.
                return Step::Answered(self.seen_before(m).unwrap_or_else(|| {
                    self.count(|t| t.rate_limited_changes += 1);
                    Reply::problem(&Problem::TooManyRequests {
                        retry_after_secs,
                        detail: format!(
                            "This client made more changes than allowed in 10 seconds; nothing was changed. Retry after {retry_after_secs} s."
                        ),
                    })
                }));
            }
        }
        let entry = match current.apply(m, rfc3339_millis(now)) {
            Ok(entry) => entry,
            // A retry of a change that was applied when it was still valid must get its
            // original answer, not this refusal: the key decides before the rule does.
            Err(problem) => {
                return Step::Answered(
                    self.seen_before(m)
                        .unwrap_or_else(|| Reply::problem(&problem)),
                )
            }
        };
        let appended = self.ledger.prepare(&entry);
        let merkle_row = appended.as_ref().map(|(_, row)| row.as_slice());
        let mut committed = self.store.commit(&entry, merkle_row);
        // A key past its retention is new again: its old record goes and the change commits.
        if committed.is_err() && self.forget_expired_key(m) {
            committed = self.store.commit(&entry, merkle_row);
        }
        match committed {
            Ok(()) => {
                if let Some((frontier, _)) = appended {
                    self.ledger.adopt(frontier);
                }
                self.archive.after_commit(entry.version);
                if limited {
                    self.limiter.borrow_mut().record(client, now);
                }
                self.count(|t| t.commits += 1);
                Step::Applied(entry)
            }
            // Rolled back. The usual cause is that the key is already stored (a replay);
            // anything else is a storage fault, and the client may retry the same key.
            Err(why) => Step::Answered(self.seen_before(m).unwrap_or_else(|| {
                log_event("error", "commit failed", |w| {
                    w.string("request_id", m.key.as_str())
                        .string("error", &why.to_string());
                });
                Reply::problem(&Problem::Internal)
            })),
        }
    }

    /// Many requests in one call (group commit, see [`crate::core::batch`]): one outer
    /// `transactionSync` around every mutation's own [`Counter::step`], reads answered at
    /// their place in the order. One mutation's refusal or rolled-back commit never touches
    /// another. Only after the outer transaction committed is the new state adopted and each
    /// change broadcast, in version order. If the outer transaction fails, nothing of the
    /// batch happened: its rate-limit counts, metric counts and the Merkle tree's right edge are
    /// put back and the whole call gets 500, which
    /// the edge answers by sending each request again alone, with the same key. So does a
    /// batch that does not decode, logged with its cause.
    pub(super) fn batch_replies(&self, json: &str) -> Result<String, Problem> {
        let calls = batch::decode(json).map_err(|e| {
            log_event("error", "counter batch refused", |w| {
                w.uint("bytes", json.len() as u64)
                    .string("error", &e.to_string());
            });
            e.problem()
        })?;
        let current = match &*self.current.borrow() {
            Ok(s) => s.clone(),
            Err(_) => {
                return Err(Problem::Unavailable {
                    retry_after_secs: 5,
                })
            }
        };
        self.sizes.borrow_mut().record(calls.len());
        // Reads alone change nothing: no transaction to open and commit.
        if calls.iter().all(|c| matches!(c, Call::Value)) {
            let reply = Reply::value(&current);
            return Ok(batch::encode_replies(&vec![reply; calls.len()]));
        }
        // A change alone: exactly the single call's step, in its own transaction.
        if let [Call::Mutate { mutation, client }] = calls.as_slice() {
            let reply = self.mutate_alone(&current, mutation, client);
            return Ok(batch::encode_replies(std::slice::from_ref(&reply)));
        }
        self.batch(&current, &calls)
    }

    fn batch(&self, current: &Snapshot, calls: &[Call]) -> Result<String, Problem> {
        let now = now_ms();
        let mut working = current.clone();
        // What to put back should the whole transaction fail.
        let (tally, tree) = (self.tally.get(), self.ledger.saved());
        let mut applied: Vec<(AuditEntry, &str)> = Vec::new();
        let mut replies: Vec<Reply> = Vec::with_capacity(calls.len());
        let outcome = self.store.transaction(&mut || {
            for call in calls {
                let reply = match call {
                    Call::Mutate { mutation, client } => {
                        match self.step(&working, mutation, client, now) {
                            Step::Applied(entry) => {
                                working = Snapshot::after(&entry);
                                let reply = Reply::applied(&entry);
                                applied.push((entry, client));
                                reply
                            }
                            Step::Answered(reply) => reply,
                        }
                    }
                    Call::Value => Reply::value(&working),
                };
                replies.push(reply);
            }
        });
        if let Err(why) = outcome {
            self.tally.set(tally);
            if let Some(tree) = tree {
                self.ledger.adopt(tree);
            }
            let mut limiter = self.limiter.borrow_mut();
            for (entry, client) in &applied {
                if matches!(entry.operation, Operation::Increment | Operation::Decrement) {
                    limiter.forget(client, now);
                }
            }
            log_event("error", "batch commit failed", |w| {
                w.uint("calls", calls.len() as u64)
                    .string("error", &why.to_string());
            });
            return Err(Problem::Internal);
        }
        *self.current.borrow_mut() = Ok(working);
        for (entry, _) in &applied {
            sockets::broadcast(&self.state, &entry.update_message());
        }
        Ok(batch::encode_replies(&replies))
    }

    /// The answer for a key that is already stored: its original response (replay), or 422
    /// when it was used for something else. `None` if the key is new.
    fn seen_before(&self, m: &Mutation) -> Option<Reply> {
        let stored = match self.store.lookup(m.key.as_str()) {
            Ok(stored) => stored?,
            Err(e) => return Some(Reply::problem(&e.logged("key lookup failed"))),
        };
        // Past its retention a key is new again, even before the alarm removed its record.
        if stored.at < self.archive.settings.key_cutoff(now_ms()) {
            return None;
        }
        let fingerprint = stored.fingerprint();
        let response = stored.response_json();
        Some(
            match idempotency::judge(&m.fingerprint(), &fingerprint, &response) {
                Seen::Replay(body) => {
                    self.count(|t| t.replays += 1);
                    Reply::json(
                        body.to_owned(),
                        &[
                            ("idempotent-replayed", "true"),
                            ("etag", &format!("\"{}\"", stored.version)),
                        ],
                    )
                }
                Seen::Conflict => Reply::problem(&Problem::KeyReused {
                    key: m.key.as_str().to_owned(),
                }),
            },
        )
    }

    /// Removes the record of `m`'s key if its retention has passed; whether it did.
    fn forget_expired_key(&self, m: &Mutation) -> bool {
        let cutoff = self.archive.settings.key_cutoff(now_ms());
        match self.store.forget_key(m.key.as_str(), &cutoff) {
            Ok(forgotten) => forgotten,
            Err(e) => {
                e.log("forgetting an expired key failed");
                false
            }
        }
    }
}
