//! Where media bytes live: content-addressed by their sha256, so a file
//! sent twice is stored once and a stored file cannot change under its
//! name. A directory under `data_dir` by default; the trait is what an
//! S3-compatible store would implement (put by key, get, delete).

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A blob store. Keys are lower-case hex sha256 digests of the bytes.
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under their digest (a no-op if present); returns it.
    fn put(&self, bytes: &[u8]) -> std::io::Result<String>;
    fn get(&self, digest: &str) -> std::io::Result<Option<Vec<u8>>>;
    fn delete(&self, digest: &str) -> std::io::Result<()>;
}

pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Blobs as files `ab/cdef…` under a directory.
pub struct DirBlobs {
    root: PathBuf,
}

impl DirBlobs {
    pub fn new(root: &Path) -> DirBlobs {
        DirBlobs { root: root.to_path_buf() }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        // Only what `digest` produces names a file: never a path a caller
        // could steer elsewhere.
        let valid = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| self.root.join(&digest[..2]).join(&digest[2..]))
    }
}

impl BlobStore for DirBlobs {
    fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let digest = digest(bytes);
        let path = self.path(&digest).ok_or_else(|| std::io::Error::other("not a digest"))?;
        if path.exists() {
            return Ok(digest);
        }
        let dir = path.parent().ok_or_else(|| std::io::Error::other("no parent"))?;
        std::fs::create_dir_all(dir)?;
        // Written aside, synced, then renamed: a reader never sees half a
        // file, and a crash leaves at worst a stray temporary.
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(bytes)?;
        file.as_file().sync_all()?;
        file.persist(&path).map_err(|e| e.error)?;
        Ok(digest)
    }

    fn get(&self, digest: &str) -> std::io::Result<Option<Vec<u8>>> {
        let Some(path) = self.path(digest) else { return Ok(None) };
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn delete(&self, digest: &str) -> std::io::Result<()> {
        let Some(path) = self.path(digest) else { return Ok(()) };
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_are_one_blob_and_only_digests_name_files() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = DirBlobs::new(dir.path());
        let a = blobs.put(b"imagem").unwrap();
        assert_eq!(a, blobs.put(b"imagem").unwrap());
        // sha256("abc"), from FIPS 180-2's example.
        assert_eq!(digest(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(blobs.get(&a).unwrap().as_deref(), Some(&b"imagem"[..]));
        assert_eq!(blobs.get("../../etc/passwd").unwrap(), None);
        blobs.delete(&a).unwrap();
        assert_eq!(blobs.get(&a).unwrap(), None);
    }
}
