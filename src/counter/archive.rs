//! The counter's archival: moving audit entries beyond the hot window to R2, from the alarm.
//!
//! One step of the alarm ([`Archiver::step`]) archives at most one segment
//! ([`archive::SEGMENT_ENTRIES`] entries), in this order, each step durable before the next:
//! 1. **record** the segment (range, size, SHA-256 of its bytes) in `archive_segments` as
//!    pending — or, after a crash, find the pending record and rebuild the same bytes from the
//!    entries, which are still in SQLite;
//! 2. **write** it to R2 — unless an object of that name with exactly these bytes is already
//!    there (a crashed run's), which is adopted instead of written again;
//! 3. **read it back** and check it ([`archive::read_segment`]: size, hash, every line);
//! 4. **delete** its entries and mark the record archived in one transaction.
//!
//! A crash between any two steps leaves either the entries in SQLite (and perhaps a pending
//! record and an object in R2, both of which step 1 and 2 pick up again), or the entries in R2
//! and the record archived: never neither, never both. The mutation path never waits on any of
//! this: R2 calls are awaited inside the alarm, and the object's other events run meanwhile;
//! the only synchronous work is reading and deleting one segment's rows.
//!
//! A failing step is logged as an error on every run and retried by the alarm with a doubling
//! delay ([`archive::backoff_ms`]).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use crate::core::archive::{self, ProofPointer, ProofQuery, Segment, Settings};
use crate::core::time::rfc3339_millis;
use crate::error::{Error, Result};
use crate::http::now_ms;
use crate::log::log_event;
use worker::Bucket;

use super::store::Store;

/// What one archival step did.
pub enum Step {
    /// Nothing is due.
    Idle,
    /// One segment was archived; more may be due.
    Archived,
}

/// The outcome of the last run, for `/api/health`.
#[derive(Clone, Debug, Default)]
pub struct LastRun {
    pub at: String,
    pub outcome: String,
    pub error: Option<String>,
    pub failures: u32,
}

/// Archival state shared by the object and its alarm's future.
pub struct Archiver {
    pub settings: Settings,
    store: Store,
    bucket: Option<Bucket>,
    /// Every entry up to this version is in R2 (0: none).
    archived_through: Cell<u64>,
    /// Entries and segments in R2.
    archived_entries: Cell<u64>,
    archive_segments: Cell<u64>,
    last: RefCell<Option<LastRun>>,
    /// When the alarm is known to be set for (in memory: after a restart the first commit sets
    /// one, which at most moves it).
    alarm_at: Cell<Option<i64>>,
    /// The counter's version as last seen.
    version: Cell<u64>,
    /// A test hook (`ARCHIVE_TEST_PAUSE_MS`, only with `ADMIN_TEST_HOOKS=1`): how long a run
    /// waits right after writing a segment to R2, before reading it back and recording it, so
    /// that a test can kill the runtime in exactly that window. 0: no pause.
    pause_after_write_ms: u32,
    /// Every archived segment has its first entry's instant recorded (schema 6): known at load
    /// with one query, and true from then on once the alarm filled in the older ones (a
    /// segment archived later records it in the transaction that archives it).
    timed: Cell<bool>,
}

impl Archiver {
    /// Loads the archive's record from the object's database.
    pub fn load(
        store: Store,
        bucket: Option<Bucket>,
        settings: Settings,
        version: u64,
        pause_after_write_ms: u32,
    ) -> Rc<Archiver> {
        let a = Archiver {
            settings,
            store,
            bucket,
            archived_through: Cell::new(0),
            archived_entries: Cell::new(0),
            archive_segments: Cell::new(0),
            last: RefCell::new(None),
            alarm_at: Cell::new(None),
            version: Cell::new(version),
            pause_after_write_ms,
            timed: Cell::new(false),
        };
        if let Err(e) = a.reload() {
            e.log("reading the archive's record failed");
        }
        if let Ok(Some((at, outcome, error, failures))) = a.store.last_run() {
            *a.last.borrow_mut() = Some(LastRun {
                at,
                outcome,
                error,
                failures,
            });
        }
        // Segments archived before schema 6 have no instant yet: the alarm fills it in.
        if !a.all_timed() {
            a.set_alarm(now_ms() + archive::DELAY_MS);
        }
        Rc::new(a)
    }

    fn reload(&self) -> Result<()> {
        let (mut through, mut entries, mut count) = (0, 0, 0);
        for (seg, archived) in self.store.segments()? {
            if archived {
                through = through.max(seg.last);
                entries += seg.entries();
                count += 1;
            }
        }
        self.archived_through.set(through);
        self.archived_entries.set(entries);
        self.archive_segments.set(count);
        Ok(())
    }

    /// Every version up to this one is in R2 (0: none).
    pub fn archived_through(&self) -> u64 {
        self.archived_through.get()
    }

    /// `(entries, segments)` in R2.
    pub fn totals(&self) -> (u64, u64) {
        (self.archived_entries.get(), self.archive_segments.get())
    }

    /// The last run's outcome.
    pub fn last_run(&self) -> Option<LastRun> {
        self.last.borrow().clone()
    }

    /// The archived segment holding `version`, if any.
    pub fn segment_of(&self, version: u64) -> Result<Option<Segment>> {
        if version == 0 || version > self.archived_through.get() {
            return Ok(None);
        }
        Ok(self
            .store
            .segments()?
            .into_iter()
            .find(|(s, archived)| *archived && s.first <= version && version <= s.last)
            .map(|(s, _)| s))
    }

    /// The counter's version as last seen by [`Archiver::after_commit`].
    pub fn version(&self) -> u64 {
        self.version.get()
    }

    /// The pointer for a proof that needs hashes the object gave up with archived segments;
    /// `None` when it holds every hash the proof needs.
    pub fn proof_pointer(&self, q: ProofQuery) -> Result<Option<ProofPointer>> {
        let through = self.archived_through.get();
        let nodes = q.nodes();
        let blocks = archive::archived_blocks(&nodes, through);
        if blocks.is_empty() {
            return Ok(None);
        }
        let mut wanted = nodes;
        wanted.extend(blocks.iter().map(|j| archive::block_root(*j)));
        wanted.sort_unstable();
        wanted.dedup();
        let held = self.store.merkle_nodes(&wanted)?;
        let records = self.store.segments()?;
        let segments = blocks
            .iter()
            .map(|j| {
                let first = j * archive::SEGMENT_ENTRIES + 1;
                records
                    .iter()
                    .find(|(s, archived)| *archived && s.first == first)
                    .map(|(s, _)| s.clone())
                    .ok_or_else(|| Error::Corrupt(format!("no archived segment starts at {first}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(ProofPointer {
            query: q,
            segments,
            nodes: held,
        }))
    }

    /// After a commit reached `version`: makes sure an alarm comes soon when the window is
    /// exceeded, and that some alarm is set after a start (to expire keys). Costs a
    /// `setAlarm` only when one of those changes the alarm.
    pub fn after_commit(&self, version: u64) {
        self.version.set(version);
        let soon = now_ms() + archive::DELAY_MS;
        let exceeded = self.settings.archives()
            && version
                >= self.archived_through.get()
                    + archive::SEGMENT_ENTRIES
                    + self.settings.hot_entries;
        match self.alarm_at.get() {
            None => self.set_alarm(soon),
            Some(at) if exceeded && at > soon => self.set_alarm(soon),
            Some(_) => {}
        }
    }

    /// The alarm after an idle run: while keys are kept, one to expire them (and to archive by
    /// age); `None` when there is nothing to do until the next commit.
    pub fn idle_alarm(&self, now: i64) -> Option<i64> {
        let keys = self.store.oldest_key_at().map_or(true, |k| k.is_some());
        let period = (self.settings.retention_secs as i64 * 250).clamp(1_000, 60_000);
        (keys || self.settings.hot_hours > 0).then_some(now + period)
    }

    /// Sets the alarm `at` (ms since the epoch).
    pub fn set_alarm(&self, at: i64) {
        match self.store.set_alarm(at) {
            Ok(()) => self.alarm_at.set(Some(at)),
            Err(e) => e.log("set alarm failed"),
        }
    }

    /// The alarm fired: no alarm is set until [`Archiver::set_alarm`] again.
    pub fn alarm_fired(&self) {
        self.alarm_at.set(None);
    }

    /// Removes expired idempotency keys (a bounded amount); returns whether more may be
    /// expired already.
    pub fn expire_keys(&self) -> bool {
        let cutoff = self.settings.key_cutoff(now_ms());
        for _ in 0..10 {
            match self.store.expire_keys(&cutoff, archive::EXPIRE_CHUNK) {
                Ok(n) if n == archive::EXPIRE_CHUNK => continue,
                Ok(_) => return false,
                Err(e) => {
                    e.log("expiring idempotency keys failed");
                    return false;
                }
            }
        }
        true
    }

    /// Whether a segment is due for a counter at `version` (or an archived segment still
    /// needs its `first_at`).
    pub fn due(&self, version: u64) -> bool {
        !self.all_timed()
            || (self.settings.archives() && self.plan(version).ok().flatten().is_some())
    }

    /// Whether every archived segment has its first entry's instant (asks the database only
    /// until it does).
    fn all_timed(&self) -> bool {
        if !self.timed.get() && matches!(self.store.segment_without_first_at(), Ok(None)) {
            self.timed.set(true);
        }
        self.timed.get()
    }

    /// The archived segment that holds the value as of the instant `at`, when the hot entries
    /// do not (the oldest of them is after `at`): the last one whose first entry is at or
    /// before it; `None` when every entry is after it. `Err(None)` while a segment archived
    /// before schema 6 still lacks the instant of its first entry (the alarm is filling it in).
    pub fn segment_at(&self, at: &str) -> Result<Option<Segment>, Option<Error>> {
        if !self.all_timed() {
            return Err(None);
        }
        self.store.segment_at(at).map_err(Some)
    }

    /// Gives one segment archived before schema 6 the instant of its first entry, read back
    /// from R2 and checked against the record like every read. `false` when none lacks it.
    async fn fill_first_at(&self, bucket: &Bucket) -> Result<bool> {
        let Some(seg) = self.store.segment_without_first_at()? else {
            return Ok(false);
        };
        let name = seg.name();
        let bytes = crate::r2::read(bucket, &name)
            .await?
            .ok_or_else(|| Error::Archive(format!("{name} is missing from R2")))?;
        let entries = archive::read_segment(&seg, &bytes).map_err(Error::Archive)?;
        let first = entries
            .first()
            .ok_or_else(|| Error::Archive(format!("{name} is empty")))?;
        self.store.set_first_at(seg.first, &first.at)?;
        log_event("info", "archive segment indexed by time", |w| {
            w.string("segment", &name).string("first_at", &first.at);
        });
        Ok(true)
    }

    fn plan(&self, version: u64) -> Result<Option<(u64, u64)>> {
        if let Some((seg, _)) = self.store.segments()?.into_iter().find(|(_, a)| !a) {
            return Ok(Some((seg.first, seg.last)));
        }
        let through = self.archived_through.get();
        let aged = match self.settings.age_cutoff(now_ms()) {
            Some(cutoff) => self.store.aged_through(&cutoff, archive::SEGMENT_ENTRIES)?,
            None => 0,
        };
        let ready = self.store.merkle_size()?;
        Ok(archive::next_segment(
            &self.settings,
            through,
            version,
            aged,
            ready,
        ))
    }

    /// One archival step (see the module doc).
    pub async fn step(&self, version: u64) -> Result<Step> {
        let bucket = self
            .bucket
            .as_ref()
            .ok_or(Error::Unbound(crate::r2::BINDING))?;
        if self.fill_first_at(bucket).await? {
            return Ok(Step::Archived);
        }
        let Some((first, last)) = self.plan(version)? else {
            return Ok(Step::Idle);
        };
        // 1. Record (or find the record of) the segment.
        let entries = self.store.audit_range(first, last)?;
        if entries.len() as u64 != last + 1 - first {
            return Err(Error::Corrupt(format!(
                "entries {first}..={last}: {} of {} are in the object",
                entries.len(),
                last + 1 - first
            )));
        }
        let bytes = archive::segment_bytes(&entries);
        let seg = Segment::of(first, last, &bytes);
        let pending = self
            .store
            .segments()?
            .into_iter()
            .find(|(s, archived)| !archived && s.first == first)
            .map(|(s, _)| s);
        match pending {
            Some(p) if p == seg => {}
            Some(p) => {
                // Recorded by a release that wrote other bytes: its object, if any, is
                // replaced below; the record follows the bytes.
                log_event(
                    "warn",
                    "a pending segment record differs; recording it again",
                    |w| {
                        w.string("segment", &p.name());
                    },
                );
                self.store.drop_pending_segment(first)?;
                self.store.record_segment(&seg, &rfc3339_millis(now_ms()))?;
            }
            None => self.store.record_segment(&seg, &rfc3339_millis(now_ms()))?,
        }
        // 2. Write, or adopt what a crashed run already wrote.
        let name = seg.name();
        let existing = crate::r2::read(bucket, &name).await?;
        let adopted = existing.as_deref() == Some(bytes.as_slice());
        if adopted {
            log_event("info", "archive segment adopted", |w| {
                w.string("segment", &name);
            });
        } else {
            let digest = Sha256::digest(&bytes);
            crate::r2::write(bucket, &name, &bytes, &digest).await?;
            if self.pause_after_write_ms > 0 {
                log_event(
                    "warn",
                    "archive segment written; pausing (test hook)",
                    |w| {
                        w.string("segment", &name)
                            .uint("pause_ms", u64::from(self.pause_after_write_ms));
                    },
                );
                let pause = std::time::Duration::from_millis(u64::from(self.pause_after_write_ms));
                worker::Delay::from(pause).await;
            }
        }
        // 3. Read it back and check it against the record.
        let back = crate::r2::read(bucket, &name).await?.ok_or_else(|| {
            Error::Archive(format!("{name} is not in R2 right after it was written"))
        })?;
        archive::read_segment(&seg, &back).map_err(Error::Archive)?;
        // 4. Delete the entries and mark the record, in one transaction.
        self.store.complete_segment(&seg, &entries[0].at)?;
        self.archived_through.set(seg.last);
        self.archived_entries
            .set(self.archived_entries.get() + seg.entries());
        self.archive_segments.set(self.archive_segments.get() + 1);
        log_event("info", "archive segment written", |w| {
            w.string("segment", &name)
                .uint("entries", seg.entries())
                .uint("bytes", seg.bytes)
                .string("adopted", if adopted { "true" } else { "false" });
        });
        Ok(Step::Archived)
    }

    /// Records the outcome of a run (in memory and in the database) and logs a failure.
    pub fn finish_run(&self, result: &Result<u64>) -> u32 {
        let at = rfc3339_millis(now_ms());
        let failures = match result {
            Ok(_) => 0,
            Err(_) => self.last.borrow().as_ref().map_or(0, |l| l.failures) + 1,
        };
        let (outcome, error) = match result {
            Ok(0) => ("idle", None),
            Ok(_) => ("ok", None),
            Err(e) => ("failed", Some(e.to_string())),
        };
        if let Some(e) = &error {
            log_event("error", "archival failed", |w| {
                w.string("error", e).uint("failures", u64::from(failures));
            });
        }
        // An idle run after an earlier outcome keeps that outcome's record.
        if outcome != "idle" || self.last.borrow().is_none() {
            self.store
                .record_run(&at, outcome, error.as_deref(), failures);
            *self.last.borrow_mut() = Some(LastRun {
                at,
                outcome: outcome.to_owned(),
                error,
                failures,
            });
        }
        failures
    }
}
