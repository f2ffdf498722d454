//! Inbound media: each image, voice note or other audio, video, document
//! and sticker a contact sends is fetched from Meta off the ack path
//! (`download`), checked against Meta's checksum and size limits, kept in
//! a content-addressed blob store (`blobs`) for `media.retention`, and
//! served to API clients of the tenant. A failed download is visible on
//! its record and tried again with backoff; the message itself is never
//! held back or lost for it.

pub mod blobs;
pub mod download;
pub mod upload;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Millis;
use crate::crm::Message;
use crate::model::MessageKind;
use crate::store::{Batch, Result, Store, Tree, keys};
use blobs::BlobStore;

/// `tenant ␟ media id` → [`MediaRecord`].
const RECORDS: Tree = Tree("media.records");
/// `due at ␟ tenant ␟ media id`: downloads waiting for their time.
const DUE: Tree = Tree("media.due");
/// `stored at ␟ tenant ␟ media id`: what retention expires, oldest first.
const STORED: Tree = Tree("media.stored");
/// `blob digest ␟ tenant ␟ media id`: who holds a blob (one file sent
/// twice is one blob; it goes when its last holder expires).
const HOLDERS: Tree = Tree("media.blob_holders");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaState {
    /// Waiting for its (next) download.
    Pending,
    Stored,
    /// Given up after `media.max_attempts`, or refused for good (too
    /// large, no access token); `POST /v1/media/{id}/retry` tries again.
    Failed,
    /// Kept past `media.retention`: the bytes are gone.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MediaRecord {
    /// Meta's media id (the message's `image.id`, `audio.id`…).
    pub media_id: String,
    /// The message it came in (`wamid…`).
    pub message_id: String,
    pub conversation_id: String,
    /// `image`, `audio`, `video`, `document` or `sticker`.
    pub kind: String,
    pub mime_type: Option<String>,
    /// The checksum Meta gave in the webhook.
    pub sha256: Option<String>,
    pub filename: Option<String>,
    pub state: MediaState,
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub next_attempt_at: Option<Millis>,
    pub size: Option<u64>,
    /// The blob's digest (hex sha256) while stored.
    pub blob: Option<String>,
    pub received_at: Millis,
    pub stored_at: Option<Millis>,
}

/// The kinds whose files are fetched.
pub const KINDS: [MessageKind; 5] =
    [MessageKind::Image, MessageKind::Audio, MessageKind::Video, MessageKind::Document, MessageKind::Sticker];

/// Meta's size limits per kind ("Supported media types"): larger files
/// are refused rather than downloaded.
pub fn max_bytes(kind: &str) -> u64 {
    const MB: u64 = 1024 * 1024;
    match kind {
        "image" => 5 * MB,
        "audio" | "video" => 16 * MB,
        "sticker" => 500 * 1024,
        _ => 100 * MB,
    }
}

#[derive(Clone)]
pub struct Media {
    store: Store,
    blobs: Arc<dyn BlobStore>,
}

fn record_key(tenant: &str, media_id: &str) -> Vec<u8> {
    keys::join(&[tenant.as_bytes(), media_id.as_bytes()])
}

fn timed_key(at: Millis, tenant: &str, media_id: &str) -> Vec<u8> {
    keys::join(&[&keys::ts(at), tenant.as_bytes(), media_id.as_bytes()])
}

/// The tenant and media id of a [`timed_key`]. The time is eight raw
/// bytes, any of which may be the separator: it is skipped by length,
/// never split on.
fn after_time(key: &[u8]) -> Option<(String, String)> {
    let rest = key.get(9..)?;
    let (tenant, media_id) = rest.split_at(rest.iter().position(|b| *b == keys::SEP)?);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Some((text(tenant), text(media_id.get(1..)?)))
}

impl Media {
    pub fn new(store: Store, blobs: Arc<dyn BlobStore>) -> Media {
        Media { store, blobs }
    }

    /// Plans the download of `message`'s file, if it has one not already
    /// known; in the commit that records the message.
    pub fn expect(&self, batch: &mut Batch, tenant: &str, message: &Message, now: Millis) -> Result<bool> {
        if message.direction != crate::model::Direction::Inbound || !KINDS.contains(&message.kind) {
            return Ok(false);
        }
        let text = |k: &str| message.content.get(k).and_then(|v| v.as_str()).map(String::from);
        let Some(media_id) = text("id").filter(|id| !id.is_empty()) else { return Ok(false) };
        if self.get(tenant, &media_id)?.is_some() {
            return Ok(false);
        }
        let record = MediaRecord {
            message_id: message.id.clone(),
            conversation_id: message.conversation_id.clone(),
            kind: message.kind.as_str().to_string(),
            mime_type: text("mime_type"),
            sha256: text("sha256"),
            filename: text("filename"),
            state: MediaState::Pending,
            attempts: 0,
            last_error: None,
            next_attempt_at: Some(now),
            size: None,
            blob: None,
            received_at: now,
            stored_at: None,
            media_id,
        };
        batch.put(DUE, timed_key(now, tenant, &record.media_id), []);
        batch.put_json(RECORDS, record_key(tenant, &record.media_id), &record)?;
        Ok(true)
    }

    pub fn get(&self, tenant: &str, media_id: &str) -> Result<Option<MediaRecord>> {
        self.store.get_json(RECORDS, &record_key(tenant, media_id))
    }

    /// The records of the files these messages carry.
    pub fn of_messages(&self, tenant: &str, messages: &[Message]) -> Result<Vec<MediaRecord>> {
        let ids = messages.iter().filter_map(|m| m.content.get("id").and_then(|v| v.as_str()));
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.get(tenant, id)?);
        }
        Ok(out)
    }

    /// The stored file's record and bytes; `None` if the tenant has no
    /// such media.
    pub fn read(&self, tenant: &str, media_id: &str) -> Result<Option<(MediaRecord, Option<Vec<u8>>)>> {
        let Some(record) = self.get(tenant, media_id)? else { return Ok(None) };
        let bytes = match (&record.state, &record.blob) {
            (MediaState::Stored, Some(digest)) => {
                self.blobs.get(digest).map_err(|e| crate::store::StoreError::Engine(format!("media blob: {e}")))?
            }
            _ => None,
        };
        Ok(Some((record, bytes)))
    }

    /// Downloads due by `now`, oldest first.
    pub fn due(&self, now: Millis, limit: usize) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for key in self.store.range(DUE, &[], &keys::ts(now + 1))?.keys() {
            if let Some(job) = after_time(&key?) {
                out.push(job);
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// When the next download is due, if any is planned.
    pub fn next_due(&self) -> Result<Option<Millis>> {
        Ok(self.store.first(DUE)?.and_then(|(k, _)| keys::read_ts(&k)))
    }

    /// Writes `record` as it now is, moving its place in the queue.
    fn put(&self, tenant: &str, before: &MediaRecord, record: &MediaRecord) -> Result<()> {
        let mut batch = Batch::new();
        if let Some(at) = before.next_attempt_at {
            batch.delete(DUE, timed_key(at, tenant, &record.media_id));
        }
        if let Some(at) = record.next_attempt_at {
            batch.put(DUE, timed_key(at, tenant, &record.media_id), []);
        }
        if let (Some(at), Some(digest)) = (record.stored_at, &record.blob)
            && before.blob.is_none()
        {
            batch.put(STORED, timed_key(at, tenant, &record.media_id), []);
            batch.put(HOLDERS, keys::join(&[digest.as_bytes(), tenant.as_bytes(), record.media_id.as_bytes()]), []);
        }
        batch.put_json(RECORDS, record_key(tenant, &record.media_id), record)?;
        self.store.commit(batch)
    }

    /// Plans a failed download again, now.
    pub fn retry(&self, tenant: &str, media_id: &str, now: Millis) -> Result<Option<MediaRecord>> {
        let Some(before) = self.get(tenant, media_id)? else { return Ok(None) };
        if before.state != MediaState::Failed {
            return Ok(Some(before));
        }
        let record =
            MediaRecord { state: MediaState::Pending, attempts: 0, next_attempt_at: Some(now), ..before.clone() };
        self.put(tenant, &before, &record)?;
        Ok(Some(record))
    }

    /// Forgets the bytes of files stored before `before`; a blob goes
    /// when no record holds it any more. Returns how many expired.
    pub fn expire(&self, before: Millis) -> Result<usize> {
        let mut expired = 0;
        let old: Vec<Vec<u8>> = self.store.range(STORED, &[], &keys::ts(before))?.keys().collect::<Result<_>>()?;
        for key in old {
            let Some((tenant, media_id)) = after_time(&key) else { continue };
            let mut batch = Batch::new();
            batch.delete(STORED, key.clone());
            let mut freed = None;
            if let Some(mut r) = self.get(&tenant, &media_id)?.filter(|r| r.state == MediaState::Stored) {
                if let Some(digest) = r.blob.take() {
                    batch.delete(HOLDERS, keys::join(&[digest.as_bytes(), tenant.as_bytes(), media_id.as_bytes()]));
                    freed = Some(digest);
                }
                r.state = MediaState::Expired;
                batch.put_json(RECORDS, record_key(&tenant, &media_id), &r)?;
                expired += 1;
            }
            self.store.commit(batch)?;
            // The bytes go after the records stop naming them, and only
            // when no other record holds the same file.
            if let Some(digest) = freed
                && self.store.scan_prefix(HOLDERS, &keys::prefix(&[digest.as_bytes()]))?.next().is_none()
            {
                self.blobs.delete(&digest).map_err(|e| crate::store::StoreError::Engine(format!("media blob: {e}")))?;
            }
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Direction;

    fn image(id: &str, media_id: &str) -> Message {
        Message {
            id: id.into(),
            conversation_id: "cv_1".into(),
            direction: Direction::Inbound,
            kind: MessageKind::Image,
            content: serde_json::json!({ "id": media_id, "mime_type": "image/jpeg" }),
            ..Default::default()
        }
    }

    /// Two messages carrying the same file share one blob: it is deleted
    /// with the last record that holds it, not the first.
    #[test]
    fn retention_expires_records_and_a_shared_blob_goes_with_its_last_holder() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(blobs::DirBlobs::new(dir.path()));
        let media = Media::new(Store::in_memory(), blobs.clone());
        for (wamid, id) in [("wamid.1", "m1"), ("wamid.2", "m2")] {
            let mut batch = Batch::new();
            assert!(media.expect(&mut batch, "t", &image(wamid, id), 1_000).unwrap());
            media.store.commit(batch).unwrap();
        }
        assert_eq!(media.due(1_000, 10).unwrap().len(), 2);
        let digest = blobs.put(b"the same photo").unwrap();
        for (id, at) in [("m1", 2_000), ("m2", 5_000)] {
            let before = media.get("t", id).unwrap().unwrap();
            let after = MediaRecord {
                state: MediaState::Stored,
                blob: Some(digest.clone()),
                stored_at: Some(at),
                next_attempt_at: None,
                ..before.clone()
            };
            media.put("t", &before, &after).unwrap();
        }
        assert!(media.due(10_000, 10).unwrap().is_empty(), "stored files are not due");
        assert_eq!(media.expire(3_000).unwrap(), 1);
        assert_eq!(media.get("t", "m1").unwrap().unwrap().state, MediaState::Expired);
        assert!(media.read("t", "m2").unwrap().unwrap().1.is_some(), "m2 still holds the blob");
        assert_eq!(media.expire(6_000).unwrap(), 1);
        assert_eq!(blobs.get(&digest).unwrap(), None);
        assert_eq!(media.get("other", "m2").unwrap(), None, "records are the tenant's");
    }

    /// 1795453201951 ms is `…ae 1f` big-endian: its last byte is the key
    /// separator, and the download due then is found all the same.
    #[test]
    fn a_time_holding_the_separator_byte_still_names_its_download() {
        let media = Media::new(Store::in_memory(), Arc::new(blobs::DirBlobs::new(tempfile::tempdir().unwrap().path())));
        let at = 1_795_453_201_951;
        assert_eq!(keys::ts(at)[7], keys::SEP);
        let mut batch = Batch::new();
        media.expect(&mut batch, "t", &image("wamid.1", "m1"), at).unwrap();
        media.store.commit(batch).unwrap();
        assert_eq!(media.due(at, 10).unwrap(), vec![("t".to_string(), "m1".to_string())]);
    }
}
