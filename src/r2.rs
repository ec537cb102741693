//! The audit archive's bucket (`AUDIT_ARCHIVE`): whole segments read and written through the
//! `worker` crate's R2 binding. The counter writes segments (`counter/archive.rs`); the edge and
//! the counter read them back (`edge/archive.rs`), so it lives in neither.

use worker::{Bucket, Env};

use crate::error::{Error, Result};

/// The binding's name in wrangler.toml.
pub const BINDING: &str = "AUDIT_ARCHIVE";

/// The archive bucket, if it is bound.
pub fn bucket(env: &Env) -> Option<Bucket> {
    env.bucket(BINDING).ok()
}

/// The bytes of object `key`, `None` if there is none.
pub async fn read(bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>> {
    let fail = |cause| Error::R2 {
        op: "get",
        key: key.to_owned(),
        cause,
    };
    let Some(object) = bucket.get(key).execute().await.map_err(fail)? else {
        return Ok(None);
    };
    let body = object
        .body()
        .ok_or_else(|| Error::Archive(format!("R2 get of {key} returned no body")))?;
    body.bytes().await.map(Some).map_err(fail)
}

/// Stores `bytes` as object `key`; R2 checks them against `sha256` (32 bytes) on upload.
pub async fn write(bucket: &Bucket, key: &str, bytes: &[u8], sha256: &[u8]) -> Result<()> {
    bucket
        .put(key, bytes.to_vec())
        .sha256(sha256.to_vec())
        .execute()
        .await
        .map(|_| ())
        .map_err(|cause| Error::R2 {
            op: "put",
            key: key.to_owned(),
            cause,
        })
}
